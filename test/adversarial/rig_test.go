package adversarial_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/syncbuf"
)

// The child runner's resource caps. The address-space cap turns an
// unbounded allocation into a failed test (the Go runtime's "fatal error:
// out of memory") instead of an out-of-memory machine. Measured on the
// project's machine (TestBaselineFootprint logs it): an idle runner with
// both tenants holds about 1.75 GiB of address space, nearly all of it
// reserved and untouched (the Go runtime's heap and page-allocator
// reservations, glibc's malloc arenas); each live guest instance reserves
// its memory limit (128 MiB by default) more, up front; 8 ordinary jobs
// at once peak at about 2.9 GiB. 4 GiB leaves about 1 GiB above that for
// what the runner really allocates, far below what an unbounded table,
// stack or compilation asks for.
var (
	asLimitMiB = flag.Int("adversarial.as", 4096, "address-space cap of the child runner (ulimit -v), MiB")
	nofile     = flag.Int("adversarial.nofile", 4096, "descriptor cap of the child runner (ulimit -n)")
	keep       = flag.Bool("adversarial.keep", false, "keep the child runners' dirs and print their stderr")
)

// The built runner and the repository it was built from (TestMain).
var (
	binPath  string
	repoRoot string
)

func TestMain(m *testing.M) {
	flag.Parse()
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "adversarial:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	dir, err := os.MkdirTemp("", "wasmrunner-adversarial-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "wasmrunner")
	build := exec.Command("go", "build", "-o", binPath, "./cmd/wasmrunner")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("go build ./cmd/wasmrunner: %v\n%s", err, out)
	}
	return m.Run(), nil
}

// guest returns a test guest's bytes: testdata/hostile/NAME.wasm, or
// examples/modules/shell.wasm for "shell".
func guest(t *testing.T, name string) []byte {
	t.Helper()
	p := filepath.Join(repoRoot, "testdata", "hostile", name+".wasm")
	if name == "shell" {
		p = filepath.Join(repoRoot, "examples", "modules", "shell.wasm")
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%s missing: run scripts/build-guests (%v)", p, err)
	}
	return data
}

// tenant describes one [[runners]] entry.
type tenant struct {
	// modules: file name -> contents, written to its modules dir.
	modules map[string][]byte
	// policy: TOML lines of its [runners.policy] table.
	policy      string
	concurrency int
	outputLimit string
}

// rigConfig describes a child runner with two tenants.
type rigConfig struct {
	attacker tenant
	// canary defaults to the shell handler.
	canary tenant
	// concurrency is the process's (default 8).
	concurrency int
	// policy: TOML lines of the file's [policy] table.
	policy string
}

// rig is a child wasmrunner serving two tenants of one fake GitLab: the
// attacker, whose modules dir holds hostile guests, and the canary, whose
// jobs must be unaffected.
type rig struct {
	t   *testing.T
	srv *gitlabtest.Server
	// Runner tokens of the two tenants.
	attacker, canary string
	root             string // the rig's temp dir: everything of the child lives under it
	attackerDir      string // the attacker's modules dir
	buildsDir        string

	cmd     *exec.Cmd
	pid     int
	stderr  syncbuf.Buffer
	exited  chan struct{}
	waitErr error
	addr    string // metrics and health
	// goroutines is the runner's go_goroutines once ready, before any job.
	goroutines int
}

// startRig writes the modules dirs and the config file and starts the
// child runner under its caps; it returns once the runner is ready.
func startRig(t *testing.T, cfg rigConfig) *rig {
	t.Helper()
	r := &rig{t: t, srv: gitlabtest.NewServer(gitlabtest.WithTraceUpdateInterval(time.Second)), exited: make(chan struct{})}
	t.Cleanup(r.srv.Close)
	r.attacker, r.canary = r.srv.RunnerToken, r.srv.AddRunner()
	root, err := os.MkdirTemp("", "wasmrunner-adversarial-")
	if err != nil {
		t.Fatal(err)
	}
	r.root = root
	t.Cleanup(func() {
		if *keep {
			t.Logf("kept %s", root)
			return
		}
		os.RemoveAll(root)
	})
	if cfg.canary.modules == nil {
		cfg.canary.modules = map[string][]byte{"shell.wasm": guest(t, "shell")}
	}
	if cfg.concurrency == 0 {
		cfg.concurrency = 8
	}
	r.attackerDir = r.path("attacker-modules")
	canaryDir := r.path("canary-modules")
	r.buildsDir = r.path("builds")
	for _, d := range []string{r.attackerDir, canaryDir, r.buildsDir, r.path("home"), r.path("tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeModules := func(dir string, mods map[string][]byte) {
		for n, data := range mods {
			if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeModules(r.attackerDir, cfg.attacker.modules)
	writeModules(canaryDir, cfg.canary.modules)

	var c strings.Builder
	fmt.Fprintf(&c, "concurrency = %d\nlisten = \"127.0.0.1:0\"\nbuilds_dir = %q\nshutdown_timeout = \"20s\"\nreload_interval = \"300ms\"\n",
		cfg.concurrency, r.buildsDir)
	if cfg.policy != "" {
		fmt.Fprintf(&c, "\n[policy]\n%s\n", cfg.policy)
	}
	entry := func(name, token, dir string, tn tenant) {
		fmt.Fprintf(&c, "\n[[runners]]\nname = %q\nurl = %q\ntoken = %q\nmodules = %q\ncheck_interval = \"200ms\"\n", name, r.srv.URL, token, dir)
		if tn.concurrency > 0 {
			fmt.Fprintf(&c, "concurrency = %d\n", tn.concurrency)
		}
		if tn.outputLimit != "" {
			fmt.Fprintf(&c, "output_limit = %q\n", tn.outputLimit)
		}
		if tn.policy != "" {
			fmt.Fprintf(&c, "[runners.policy]\n%s\n", tn.policy)
		}
	}
	entry("attacker", r.attacker, r.attackerDir, cfg.attacker)
	entry("canary", r.canary, canaryDir, cfg.canary)
	cfgPath := r.path("wasmrunner.toml")
	if err := os.WriteFile(cfgPath, []byte(c.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// sh sets the caps, then execs the runner: the pid stays the runner's.
	script := fmt.Sprintf(`ulimit -v %d && ulimit -n %d && exec "$0" "$@"`, *asLimitMiB*1024, *nofile)
	r.cmd = exec.Command("/bin/sh", "-c", script, binPath, "--log-format", "json", "serve", "--config", cfgPath)
	r.cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + r.path("home"),
		"XDG_CACHE_HOME=" + r.path("home", ".cache"),
		"TMPDIR=" + r.path("tmp"),
	}
	r.cmd.Stdout = &r.stderr
	r.cmd.Stderr = &r.stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.pid = r.cmd.Process.Pid
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		if !r.dead() {
			_ = syscall.Kill(-r.pid, syscall.SIGKILL)
			<-r.exited
		}
		if *keep || t.Failed() {
			t.Logf("child runner's stderr (last 60 lines):\n%s", tail(r.stderr.String(), 60))
		}
	})

	// Ready: the health endpoint's address is logged once both runners
	// started (modules loaded).
	deadline := time.Now().Add(30 * time.Second)
	for r.addr == "" {
		for _, ev := range r.events() {
			if ev["msg"] == "metrics and health endpoints listening" {
				r.addr, _ = ev["addr"].(string)
			}
		}
		if r.addr != "" {
			break
		}
		if r.dead() || time.Now().After(deadline) {
			r.fatalf("the runner did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := r.health(); code != http.StatusOK {
		r.fatalf("/readyz answered %d", code)
	}
	if r.goroutines = r.metric("go_goroutines"); r.goroutines < 0 {
		r.fatalf("/metrics has no go_goroutines")
	}
	return r
}

// metric returns the value of an unlabelled metric from /metrics, or -1.
func (r *rig) metric(name string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + r.addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int(f)
		}
	}
	return -1
}

// goroutinesSettle checks that the runner's goroutines come back to
// about what it had before any job: no hostile job leaves host
// goroutines behind (idle connections to GitLab and to HTTP hosts a
// guest called account for the slack).
func (r *rig) goroutinesSettle() {
	r.t.Helper()
	const slack = 24
	n := -1
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n = r.metric("go_goroutines"); n >= 0 && n <= r.goroutines+slack {
			return
		}
	}
	r.errorf("the runner has %d goroutines after its jobs, %d before any: hostile jobs left host goroutines behind", n, r.goroutines)
}

func (r *rig) path(elem ...string) string { return filepath.Join(append([]string{r.root}, elem...)...) }

func (r *rig) dead() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// fatalf fails the test with the child's state and the end of its stderr.
func (r *rig) fatalf(format string, a ...any) {
	r.t.Helper()
	r.t.Fatalf("%s\n%s", fmt.Sprintf(format, a...), r.state())
}

func (r *rig) errorf(format string, a ...any) {
	r.t.Helper()
	r.t.Errorf("%s\n%s", fmt.Sprintf(format, a...), r.state())
}

// state describes the child: running, or how it ended, with the excerpt
// of its stderr that matters (a crash's first lines).
func (r *rig) state() string {
	s := r.stderr.String()
	if !r.dead() {
		return fmt.Sprintf("(runner pid %d still running; its stderr ends:\n%s)", r.pid, tail(s, 12))
	}
	return fmt.Sprintf("(runner pid %d EXITED: %v; its stderr:\n%s)", r.pid, r.waitErr, crashExcerpt(s))
}

// crashExcerpt returns the lines of a Go crash (fatal error, panic and
// the goroutine that did it), else the end of the output.
func crashExcerpt(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "fatal error") || strings.HasPrefix(l, "panic:") || strings.HasPrefix(l, "runtime: ") {
			lo := max(i-3, 0)
			return strings.Join(lines[lo:min(i+25, len(lines))], "\n")
		}
	}
	return tail(s, 15)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 600 {
			lines[i] = l[:600] + "..."
		}
	}
	return strings.Join(lines, "\n")
}

// events returns the child's operator log lines that are JSON records.
func (r *rig) events() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(r.stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvent waits for an operator log record for which match holds; it
// fails the test (and stops it) if none comes within d.
func (r *rig) waitEvent(d time.Duration, what string, match func(map[string]any) bool) map[string]any {
	r.t.Helper()
	ev := r.lookEvent(d, match)
	if ev == nil {
		r.fatalf("the runner's log has no %s", what)
	}
	return ev
}

// lookEvent waits up to d (or until the runner exits) for an operator log
// record for which match holds, and returns it, or nil.
func (r *rig) lookEvent(d time.Duration, match func(map[string]any) bool) map[string]any {
	deadline := time.Now().Add(d)
	for {
		for _, ev := range r.events() {
			if match(ev) {
				return ev
			}
		}
		if r.dead() || time.Now().After(deadline) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// health returns /readyz's status, or 0 when the runner does not answer.
//
// A runner is ready once it has reached GitLab, which may come a moment
// after it listens: health asks until /readyz answers 200, for up to
// 20 s, and returns the last answer.
func (r *rig) health() int {
	c := http.Client{Timeout: 5 * time.Second}
	code := 0
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := c.Get("http://" + r.addr + "/readyz"); err == nil {
			resp.Body.Close()
			code = resp.StatusCode
		}
		if code == http.StatusOK || r.dead() || time.Now().After(deadline) {
			return code
		}
	}
}

// job returns a job of the attacker tenant for the handler image.
func (r *rig) job(name, image string, script ...string) *gitlabtest.JobBuilder {
	return gitlabtest.NewJob(name).Image(image).Script(script...).ForRunner(r.attacker).Timeout(30 * time.Second)
}

// canaryJob enqueues a job of the canary tenant that writes files, reads
// them back and uploads one as an artifact; extra lines run before that.
func (r *rig) canaryJob(extra ...string) int64 {
	script := append(append([]string{}, extra...),
		`echo "canary says hello"`,
		"mkdir -p out",
		"echo canary-data-$CI_JOB_ID > out/c.txt",
		"cat out/c.txt",
		"artifact out/c.txt",
	)
	return r.srv.Enqueue(gitlabtest.NewJob("canary").Image("shell").Script(script...).ForRunner(r.canary).Timeout(60 * time.Second))
}

// wait waits until the job ended (or the runner died, or d passed) and
// returns its record.
func (r *rig) wait(id int64, d time.Duration) (gitlabtest.JobRecord, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	go func() {
		select {
		case <-r.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	rec, err := r.srv.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed, gitlab.StateCanceled)
	if err != nil && r.dead() {
		err = errors.New("the runner died")
	}
	return rec, err
}

// mustFinish waits for the job to end, failing the test if it does not.
func (r *rig) mustFinish(id int64, d time.Duration) gitlabtest.JobRecord {
	r.t.Helper()
	rec, err := r.wait(id, d)
	if err != nil {
		r.fatalf("job %d (%s) did not finish: %v; it is %s; its log:\n%s", id, rec.Name, err, rec.State, traceText(rec))
	}
	return rec
}

// checkCanary checks that a canary job succeeded with its output and
// artifact.
func (r *rig) checkCanary(id int64, d time.Duration) {
	r.t.Helper()
	rec, err := r.wait(id, d)
	if err != nil {
		r.errorf("canary job %d did not finish: %v (%s); its log:\n%s", id, err, rec.State, traceText(rec))
		return
	}
	want := fmt.Sprintf("canary-data-%d", id)
	if rec.State != gitlab.StateSuccess || !strings.Contains(traceText(rec), want) {
		r.errorf("canary job %d: %s (%s), want success with %q; its log:\n%s", id, rec.State, rec.FailureReason, want, traceText(rec))
		return
	}
	if files, err := archiveFiles(rec); err != nil || files["out/c.txt"] != want+"\n" {
		r.errorf("canary job %d: artifacts %q (%v), want out/c.txt = %q", id, files, err, want)
	}
}

// archiveFiles returns the files of a job's last archive upload.
func archiveFiles(rec gitlabtest.JobRecord) (map[string]string, error) {
	for i := len(rec.Artifacts) - 1; i >= 0; i-- {
		if rec.Artifacts[i].Type != "archive" {
			continue
		}
		files, err := rec.Artifacts[i].ZipFiles()
		out := map[string]string{}
		for k, v := range files {
			out[k] = string(v)
		}
		return out, err
	}
	return nil, errors.New("no archive uploaded")
}

// alive checks that the runner still runs and serves: it answers
// /readyz, and a new canary job succeeds.
func (r *rig) alive() {
	r.t.Helper()
	if r.dead() {
		r.fatalf("the runner is not alive")
	}
	if code := r.health(); code != http.StatusOK {
		r.errorf("/readyz answered %d", code)
	}
	r.checkCanary(r.canaryJob(), 60*time.Second)
}

// stop signals the runner and checks that it exits cleanly and never
// crashed.
func (r *rig) stop(sig syscall.Signal) {
	r.t.Helper()
	if r.dead() {
		r.fatalf("the runner had already exited before %v", sig)
	}
	r.goroutinesSettle()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-r.exited:
	case <-time.After(40 * time.Second):
		r.fatalf("the runner did not exit within 40s of %v", sig)
	}
	if r.waitErr != nil {
		r.errorf("after %v the runner exited with %v, want 0", sig, r.waitErr)
	}
	r.checkStderr()
}

// checkStderr fails the test if the runner's output holds a Go crash or
// goroutine dump.
func (r *rig) checkStderr() {
	r.t.Helper()
	s := r.stderr.String()
	for _, bad := range []string{"fatal error", "panic:", "goroutine "} {
		if strings.Contains(s, bad) {
			r.t.Errorf("the runner's stderr holds %q:\n%s", bad, crashExcerpt(s))
			return
		}
	}
}

// cpuTime returns the child's user+system CPU time.
func (r *rig) cpuTime() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may hold spaces) in ")".
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat %q", s)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// cpuSettles waits until the child's CPU time grows by less than limit
// over a window; it fails the test if that does not happen within d.
func (r *rig) cpuSettles(window, limit, d time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	var grew time.Duration
	for time.Now().Before(deadline) {
		a, err := r.cpuTime()
		if err != nil {
			r.fatalf("reading the runner's CPU time: %v", err)
		}
		time.Sleep(window)
		b, err := r.cpuTime()
		if err != nil {
			r.fatalf("reading the runner's CPU time: %v", err)
		}
		if grew = b - a; grew < limit {
			return
		}
	}
	r.errorf("the runner's CPU time still grows by %v every %v after %v: a guest is still spinning", grew, window, d)
}

// vmPeak returns the child's peak address space (VmPeak).
func (r *rig) vmPeak() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", r.pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmPeak:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmPeak")
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]|section_(start|end):[0-9]+:[^\r\n]*\r`)

// traceText returns a job's log without colours and section markers.
func traceText(rec gitlabtest.JobRecord) string {
	return ansi.ReplaceAllString(string(rec.Trace), "")
}

// runnerLine returns the first line of the job log that the runner wrote
// (not the guest: its lines start with "guest: ") and that matches every
// pattern (case-insensitive), or "".
func runnerLine(rec gitlabtest.JobRecord, patterns ...string) string {
	if ls := runnerLines(rec, patterns...); len(ls) > 0 {
		return ls[0]
	}
	return ""
}

// runnerLines returns the runner's job-log lines that match every
// pattern (case-insensitive).
func runnerLines(rec gitlabtest.JobRecord, patterns ...string) []string {
	var out []string
	for _, l := range strings.Split(traceText(rec), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "guest: ") || strings.HasPrefix(l, "$ ") {
			continue
		}
		ok := true
		for _, p := range patterns {
			if !regexp.MustCompile("(?i)" + p).MatchString(l) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

// guestLine returns the first guest line starting with prefix (after
// "guest: "), or "".
func guestLine(rec gitlabtest.JobRecord, prefix string) string {
	for _, l := range strings.Split(traceText(rec), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "guest: "); ok && strings.HasPrefix(rest, prefix) {
			return rest
		}
	}
	return ""
}

// expect is what a hostile job must end as.
type expect struct {
	state  gitlab.JobState
	reason gitlab.FailureReason // for a failed job; "" : any
	// denied: the patterns of the runner's job-log line that names what
	// was denied and why (all must match one line).
	denied []string
}

// check compares a hostile job's record with e.
func (r *rig) check(rec gitlabtest.JobRecord, e expect) {
	r.t.Helper()
	bad := false
	if rec.State != e.state || (e.reason != "" && rec.FailureReason != e.reason) {
		r.t.Errorf("hostile job %d (%s): %s (%s), want %s (%s)", rec.ID, rec.Name, rec.State, rec.FailureReason, e.state, e.reason)
		bad = true
	}
	if len(e.denied) > 0 && runnerLine(rec, e.denied...) == "" {
		r.t.Errorf("hostile job %d (%s): no job-log line of the runner matches %q (one that names what was denied and why)", rec.ID, rec.Name, e.denied)
		bad = true
	}
	if bad {
		r.t.Logf("its log:\n%s", limitText(traceText(rec), 6000))
	}
}

func limitText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/2] + fmt.Sprintf("\n[... %d bytes ...]\n", len(s)-n) + s[len(s)-n/2:]
}

// attack runs hostile jobs of the attacker tenant together with a canary
// job of the other tenant: it enqueues them all at once, waits for each
// (within d) and returns the hostile jobs' records in order. The canary
// must succeed; the runner must then still be alive and serving.
func (r *rig) attack(d time.Duration, jobs ...*gitlabtest.JobBuilder) []gitlabtest.JobRecord {
	r.t.Helper()
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = r.srv.Enqueue(j)
	}
	canary := r.canaryJob()
	recs := make([]gitlabtest.JobRecord, len(ids))
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs[i], errs[i] = r.wait(id, d)
		}()
	}
	r.checkCanary(canary, d)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			r.fatalf("hostile job %d (%s) did not finish: %v; it is %s; its log:\n%s", ids[i], recs[i].Name, err, recs[i].State, limitText(traceText(recs[i]), 4000))
		}
	}
	return recs
}

// zipOf returns a zip archive of files (name -> contents), stored
// deflated.
func zipOf(files map[string][]byte) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		if err != nil {
			panic(err)
		}
		if _, err := w.Write(data); err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}
