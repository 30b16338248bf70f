package adversarial_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// Each test below starts its own child runner (so that one that crashes
// it fails alone), with two tenants: "attacker", whose modules dir holds
// the hostile guests of testdata/hostile, and "canary", running the shell
// handler. Each runs its attacks together with a canary job, checks how
// each attack ended and the runner's job-log line naming what was denied,
// then that the runner is still alive and serving, then stops it with a
// signal and checks a clean exit.

const minute = time.Minute

func mods(kv ...any) map[string][]byte {
	m := map[string][]byte{}
	for i := 0; i < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case string:
			m[kv[i].(string)] = []byte(v)
		case []byte:
			m[kv[i].(string)] = v
		}
	}
	return m
}

const (
	failed  = gitlab.StateFailed
	success = gitlab.StateSuccess
)

// numberAfter returns the integer following prefix in s, or -1.
func numberAfter(s, prefix string) int64 {
	i := strings.Index(s, prefix)
	if i < 0 {
		return -1
	}
	m := regexp.MustCompile(`^-?[0-9]+`).FindString(s[i+len(prefix):])
	n, err := strconv.ParseInt(m, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// Linear memory: a guest mallocs until refused, then traps.
func TestLinearMemory(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods(
		"hostile.wasm", guest(t, "hostile"),
		"hostile.toml", "[limits]\nmemory = \"32MiB\"\n")}})
	recs := r.attack(minute, r.job("mem", "hostile", "grow 65536", "mem 1024", "trap"))
	r.check(recs[0], expect{state: failed, reason: gitlab.ScriptFailure, denied: []string{`memory limit of 32MiB`, `limits\.memory`}})
	if l := guestLine(recs[0], "mem:"); numberAfter(l, "refused after ") > 32<<10 || l == "" {
		t.Errorf("the guest got more than its 32MiB: %q", l)
	}
	if l := guestLine(recs[0], "grow:"); !strings.HasSuffix(l, "= -1") {
		t.Errorf("memory.grow(65536) was not refused: %q", l)
	}
	r.alive()
	r.stop(syscall.SIGTERM)
}

// Tables: table.grow by 2^31-1 elements on a table without a maximum.
func TestTableGrow(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods("tablegrow.wasm", guest(t, "tablegrow"))}})
	recs := r.attack(minute, r.job("tablegrow", "tablegrow", "grow"))
	r.check(recs[0], expect{state: success, denied: []string{`table`, `limit|maximum|cap|refus|denied`}})
	if guestLine(recs[0], "table.grow refused") == "" {
		t.Errorf("table.grow was not refused")
	}
	r.alive()
	r.stop(syscall.SIGQUIT)
}

// Tables: a table declaring a maximum of 2^32-1 elements: refused at load,
// or its growth refused.
func TestTableAbsurdMax(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods("tablemax.wasm", guest(t, "tablemax"))}})
	recs := r.attack(minute, r.job("tablemax", "tablemax", "grow"))
	if recs[0].State == failed {
		r.check(recs[0], expect{state: failed, denied: []string{`not loaded`, `table`}})
	} else {
		r.check(recs[0], expect{state: success, denied: []string{`table`, `limit|maximum|cap|refus|denied`}})
		if guestLine(recs[0], "table.grow refused") == "" {
			t.Errorf("table.grow to 2^32-1 elements was not refused")
		}
	}
	r.alive()
	r.stop(syscall.SIGTERM)
}

// wazero's stack: recursion without end, one job, then four at once.
func TestStackOverflow(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods("recurse.wasm", guest(t, "recurse")), concurrency: 4}, concurrency: 6})
	want := expect{state: failed, reason: gitlab.ScriptFailure, denied: []string{`stack overflow`}}
	for _, rec := range r.attack(minute, r.job("recurse", "recurse", "go")) {
		r.check(rec, want)
	}
	var jobs []*gitlabtest.JobBuilder
	for i := range 4 {
		jobs = append(jobs, r.job(fmt.Sprintf("recurse-%d", i), "recurse", "go"))
	}
	for _, rec := range r.attack(2*minute, jobs...) {
		r.check(rec, want)
	}
	r.alive()
	r.stop(syscall.SIGQUIT)
}

// CPU: a tight loop past the job's timeout, and past the handler's
// [limits] timeout, and a tree of calls without a loop: reported timed
// out, and the core is freed.
func TestCPUSpin(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods(
		"spin.wasm", guest(t, "spin"),
		"spinlimit.wasm", guest(t, "spin"),
		"spinlimit.toml", "[limits]\ntimeout = \"2s\"\n",
		// No loop: 2^62 calls. Unchecked, it would also hold up every
		// goroutine of the runner at the next garbage collection.
		"calltree.wasm", callTreeModule(62))}})
	recs := r.attack(minute,
		r.job("spin", "spin", "go").Timeout(3*time.Second),
		r.job("spinlimit", "spinlimit", "go"),
		r.job("calltree", "calltree", "go").Timeout(3*time.Second))
	r.check(recs[0], expect{state: failed, reason: gitlab.JobExecutionTimeout, denied: []string{`took longer than|timed out|timeout`}})
	r.check(recs[1], expect{state: failed, reason: gitlab.JobExecutionTimeout, denied: []string{`limits\.timeout`}})
	r.check(recs[2], expect{state: failed, reason: gitlab.JobExecutionTimeout, denied: []string{`took longer than|timed out|timeout`}})
	r.cpuSettles(2*time.Second, 300*time.Millisecond, 30*time.Second)
	r.alive()
	r.stop(syscall.SIGTERM)
}

// Wall time: sleeps that ignore the cancel, and a guest that returns 0
// after its [limits] timeout (a timeout, not a success).
func TestWallTime(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods(
		"hostile.wasm", guest(t, "hostile"),
		"slowpoke.wasm", guest(t, "hostile"),
		"slowpoke.toml", "[limits]\ntimeout = \"2s\"\n"), concurrency: 4}})
	recs := r.attack(minute,
		r.job("sleepwasi", "hostile", "sleepwasi 60000").Timeout(3*time.Second),
		r.job("sleeploop", "hostile", "sleeploop 100 1000").Timeout(3*time.Second),
		r.job("returns-0-after-limit", "slowpoke", "sleepms 60000", "echo returned 0 anyway"),
		r.job("wasi-sleep-past-limit", "slowpoke", "sleepwasi 5000", "echo returned 0 anyway"))
	jobTimeout := expect{state: failed, reason: gitlab.JobExecutionTimeout, denied: []string{`took longer than|timed out|timeout`}}
	r.check(recs[0], jobTimeout)
	r.check(recs[1], jobTimeout)
	handlerTimeout := expect{state: failed, reason: gitlab.JobExecutionTimeout, denied: []string{`limits\.timeout`}}
	r.check(recs[2], handlerTimeout)
	r.check(recs[3], handlerTimeout)
	r.alive()
	r.stop(syscall.SIGQUIT)
}

// dropModule writes a module into the attacker's dir while the runner
// runs (as a team would), with a canary job running meanwhile, and waits
// for the runner's verdict on it: it returns the operator log record.
func (r *rig) dropModule(name string, data []byte) map[string]any {
	r.t.Helper()
	tmp := filepath.Join(r.attackerDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(r.attackerDir, name+".wasm")); err != nil {
		r.t.Fatal(err)
	}
	canary := r.canaryJob()
	ev := r.waitEvent(2*minute, fmt.Sprintf("verdict on module %s", name), func(ev map[string]any) bool {
		return ev["module"] == name && (ev["msg"] == "handler not loaded" || ev["msg"] == "handler loaded")
	})
	r.checkCanary(canary, minute)
	return ev
}

// notLoaded checks that the attacker's job for a module the runner
// refused fails with a clear "not loaded" error.
func (r *rig) notLoaded(name string, why ...string) {
	r.t.Helper()
	recs := r.attack(minute, r.job(name, name, "go"))
	r.check(recs[0], expect{state: failed, denied: append([]string{`not loaded`, name}, why...)})
}

// Compile: a module of tens of MB, dropped in while the runner runs, is
// refused at load without taking the runner's memory.
func TestCompileHugeModule(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods("hostile.wasm", guest(t, "hostile"))}})
	ev := r.dropModule("huge", hugeModule(32<<20))
	if ev["msg"] != "handler not loaded" {
		r.errorf("a 32 MB module was compiled and loaded: %v", ev)
	}
	r.notLoaded("huge")
	r.alive()
	r.stop(syscall.SIGTERM)
}

// Compile: a function declaring 4,000,000,000 locals.
func TestCompileAbsurdLocals(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods("hostile.wasm", guest(t, "hostile"))}})
	ev := r.dropModule("locals", absurdLocalsModule())
	if ev["msg"] != "handler not loaded" {
		r.errorf("a function of 4,000,000,000 locals was compiled and loaded: %v", ev)
	}
	r.notLoaded("locals", `local`)
	r.alive()
	r.stop(syscall.SIGQUIT)
}

// Open files: a guest opens files until refused and keeps them open,
// while a canary writes files and uploads artifacts.
func TestOpenFiles(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods("hostile.wasm", guest(t, "hostile"))}})
	id := r.srv.Enqueue(r.job("openfiles", "hostile", "openfiles", "sleepms 6000", "echo done"))
	deadline := time.Now().Add(minute)
	for !strings.Contains(string(r.srv.Job(id).Trace), "guest: openfiles:") {
		if r.dead() || time.Now().After(deadline) {
			r.fatalf("the guest did not report its open files; its log:\n%s", traceText(r.srv.Job(id)))
		}
		time.Sleep(100 * time.Millisecond)
	}
	var extra []string
	for i := range 20 {
		extra = append(extra, fmt.Sprintf("echo file %d > f%d.txt", i, i), fmt.Sprintf("cat f%d.txt", i))
	}
	r.checkCanary(r.canaryJob(extra...), minute)
	rec := r.mustFinish(id, minute)
	r.check(rec, expect{state: success, denied: []string{`open files`, `limits\.open_files`}})
	if n := numberAfter(guestLine(rec, "openfiles:"), "openfiles: "); n < 0 || n > 256 {
		t.Errorf("the guest held %d open files, more than the default limit of 256", n)
	}
	r.alive()
	r.stop(syscall.SIGTERM)
}

// Disk bytes and entries: the guest's writes, artifact_add_data, and the
// dependency artifacts extracted for it.
func TestDisk(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods(
		"hostile.wasm", guest(t, "hostile"),
		"hostile.toml", "[limits]\ndisk = \"8MiB\"\nfiles = 200\n"), concurrency: 6}})
	bigDep := r.srv.AddFinishedJob("big-dep", zipOf(map[string][]byte{"big.bin": make([]byte, 20<<20)}))
	many := map[string][]byte{}
	for i := range 300 {
		many[fmt.Sprintf("d/%d.txt", i)] = []byte("x")
	}
	manyDep := r.srv.AddFinishedJob("many-dep", zipOf(many))
	recs := r.attack(2*minute,
		r.job("write", "hostile", "write big.bin 100000000"),
		r.job("entries", "hostile", "entries 100000"),
		r.job("artdata-bytes", "hostile", "artdata blob 1048576 100"),
		r.job("artdata-entries", "hostile", "artdata small 10 1000"),
		r.job("dep-bytes", "hostile", "echo the dependency was extracted").DependsOn(bigDep),
		r.job("dep-entries", "hostile", "echo the dependency was extracted").DependsOn(manyDep))
	diskLine := []string{`disk limit of 8MiB`, `limits\.disk`}
	filesLine := []string{`200 files`, `limits\.files`}
	r.check(recs[0], expect{state: success, denied: diskLine})
	if n := numberAfter(guestLine(recs[0], "write"), "wrote "); n < 0 || n > 8<<20 {
		t.Errorf("the guest wrote %d bytes past its 8MiB disk limit", n)
	}
	r.check(recs[1], expect{state: success, denied: filesLine})
	if n := numberAfter(guestLine(recs[1], "entries:"), "created "); n < 0 || n > 200 {
		t.Errorf("the guest created %d entries, more than its limit of 200", n)
	}
	r.check(recs[2], expect{state: success, denied: diskLine})
	if n := numberAfter(guestLine(recs[2], "artdata:"), "added "); n < 0 || n > 8 {
		t.Errorf("artifact_add_data took %d MiB past the 8MiB disk limit", n)
	}
	r.check(recs[3], expect{state: success, denied: filesLine})
	if n := numberAfter(guestLine(recs[3], "artdata:"), "added "); n < 0 || n > 200 {
		t.Errorf("artifact_add_data made %d files past the limit of 200", n)
	}
	r.check(recs[4], expect{state: failed, denied: []string{`limits\.disk|disk limit`}})
	r.check(recs[5], expect{state: failed, denied: []string{`limits\.files|200 files`}})
	for _, rec := range recs[4:] {
		if strings.Contains(traceText(rec), "guest: the dependency was extracted") {
			t.Errorf("job %s ran its script after an extraction past its limits", rec.Name)
		}
	}
	r.alive()
	r.stop(syscall.SIGQUIT)
}

// secret is a masked variable's value; no prefix of it may reach a log.
const secret = "Xq7Zr2Kp9Wm4Vt6Ny3Bs8Hd5"

// leaksSecret reports the longest prefix (4 bytes or more) of the secret
// found in the job log.
func leaksSecret(rec gitlabtest.JobRecord) string {
	s := string(rec.Trace)
	for n := len(secret); n >= 4; n-- {
		if strings.Contains(s, secret[:n]) {
			return secret[:n]
		}
	}
	return ""
}

// Log bytes: a flood of log, of sections with big headers, and a masked
// secret written a byte at a time across the handler's log limit and the
// runner's output limit.
func TestLogLimits(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods(
		"hostile.wasm", guest(t, "hostile"),
		"hostile.toml", "[limits]\nlog = \"64KiB\"\n",
		"chatty.wasm", guest(t, "hostile")), outputLimit: "256KiB"}})
	recs := r.attack(2*minute,
		r.job("flood", "hostile", "log 20000000"),
		r.job("sections", "hostile", "sections 10000 16384"),
		r.job("secret-handler-limit", "hostile", "secret MY_SECRET 60000 1 2000").MaskedVar("MY_SECRET", secret),
		r.job("secret-output-limit", "chatty", "secret MY_SECRET 250000 3 3000").MaskedVar("MY_SECRET", secret))
	handlerLimit := expect{state: success, denied: []string{`log limit of 64KiB`, `limits\.log`}}
	for _, rec := range recs[:3] {
		r.check(rec, handlerLimit)
		if n := len(rec.Trace); n > 64<<10+16<<10 {
			t.Errorf("job %s: a log of %d bytes, past the 64KiB limit", rec.Name, n)
		}
	}
	r.check(recs[3], expect{state: success, denied: []string{`exceeded limit of 262144 bytes`}})
	if n := len(recs[3].Trace); n > 256<<10+4<<10 {
		t.Errorf("job %s: a log of %d bytes, past the 256KiB output limit", recs[3].Name, n)
	}
	for _, rec := range recs[2:] {
		if p := leaksSecret(rec); p != "" {
			t.Errorf("job %s: the log holds %q, a prefix of the masked secret", rec.Name, p)
		}
	}
	r.alive()
	r.stop(syscall.SIGTERM)
}

// HTTP: a name allowed in the manifest that resolves to loopback is
// denied; a header bomb from an allowed address with max_body = "1KiB" is
// refused.
func TestHTTP(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "hello-from-loopback")
	}))
	defer plain.Close()
	bomb := headerBomb(t)
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())
	r := startRig(t, rigConfig{attacker: tenant{modules: mods(
		"byname.wasm", guest(t, "hostile"),
		"byname.toml", "[http]\nallow = [\"localhost\"]\n",
		"bomb.wasm", guest(t, "hostile"),
		"bomb.toml", fmt.Sprintf("[http]\nallow = [%q]\nmax_body = \"1KiB\"\ntimeout = \"10s\"\n", bomb))}})
	recs := r.attack(minute,
		r.job("loopback-by-name", "byname", "http GET http://localhost:"+plainPort+"/"),
		r.job("header-bomb", "bomb", "http GET http://"+bomb+"/"))
	r.check(recs[0], expect{state: success, denied: []string{`denied`, `localhost`, `loopback`}})
	if l := guestLine(recs[0], "http "); !strings.Contains(l, "rc -6") || hits.Load() != 0 {
		t.Errorf("a request to localhost was not denied: %q, %d requests reached the server", l, hits.Load())
	}
	// max_body counts headers: the bomb is "too large" (-2) as soon as it
	// passes 1KiB, not read on to the HTTP client's own header limit.
	r.check(recs[1], expect{state: success, denied: []string{`max_body`}})
	if l := guestLine(recs[1], "http "); !strings.HasSuffix(l, "rc -2") {
		t.Errorf("the header bomb was not refused as too large (-2): %q", l)
	}
	r.alive()
	r.stop(syscall.SIGQUIT)
}

// headerBomb serves, on 127.0.0.1, a response whose headers go on for up
// to 64 MiB (or until the client hangs up); it returns its host:port.
func headerBomb(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				buf := make([]byte, 4096)
				_, _ = c.Read(buf)
				if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\n")); err != nil {
					return
				}
				line := []byte("X-Bomb: " + strings.Repeat("b", 1000) + "\r\n")
				for sent := 0; sent < 64<<20; sent += len(line) {
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// Instances: more hostile jobs at once than the handler's [limits]
// instances: the canary still runs, before any of them ends.
func TestInstances(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{
		attacker: tenant{modules: mods(
			"hostile.wasm", guest(t, "hostile"),
			"hostile.toml", "[limits]\ninstances = 1\n"), concurrency: 4},
		canary:      tenant{concurrency: 2},
		concurrency: 4,
	})
	var ids []int64
	for i := range 4 {
		ids = append(ids, r.srv.Enqueue(r.job(fmt.Sprintf("sleeper-%d", i), "hostile", "sleepms 10000")))
	}
	// Let the attacker take its jobs first.
	deadline := time.Now().Add(minute)
	for {
		running := 0
		for _, id := range ids {
			if r.srv.Job(id).State == gitlab.StateRunning {
				running++
			}
		}
		if running == len(ids) {
			break
		}
		if r.dead() || time.Now().After(deadline) {
			r.fatalf("the attacker's jobs did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	canary := r.canaryJob()
	r.checkCanary(canary, 2*minute)
	for _, id := range ids {
		if rec := r.srv.Job(id); rec.State != gitlab.StateRunning {
			t.Errorf("the canary ran only after hostile job %s ended (%s): jobs waiting for an instance of their handler held the process's job slots", rec.Name, rec.State)
			break
		}
	}
	for _, id := range ids {
		r.srv.Cancel(id)
	}
	for _, id := range ids {
		r.mustFinish(id, minute)
	}
	r.alive()
	r.stop(syscall.SIGTERM)
}

// File variables: a denied one is not readable, an allowed one is
// read-only, and no host path reaches the guest.
func TestFileVariables(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods(
		"hostile.wasm", guest(t, "hostile"),
		"hostile.toml", "[variables]\ndeny = [\"DENIED_*\"]\n")}})
	const fv = "/run/wasmrunner/file-variables/"
	cfgPath := r.path("wasmrunner.toml")
	recs := r.attack(minute, r.job("filevars", "hostile",
		"read "+fv+"ALLOWED_FILE",
		"read "+fv+"DENIED_FILE",
		"writefile "+fv+"ALLOWED_FILE",
		"read "+fv+"ALLOWED_FILE",
		"read /etc/passwd",
		"read ../x",
		"read /../../../../etc/hostname",
		"read "+cfgPath,
		"env",
		"pwd").
		FileVar("ALLOWED_FILE", "allowed-content-7f3a").
		FileVar("DENIED_FILE", "denied-content-9c1b").
		Var("PLAIN_VAR", "plain"))
	rec := recs[0]
	r.check(rec, expect{state: success})
	text := traceText(rec)
	var reads []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "guest: read "+fv+"ALLOWED_FILE") {
			reads = append(reads, l)
		}
	}
	if len(reads) != 2 || !strings.HasSuffix(reads[0], "allowed-content-7f3a") || reads[0] != reads[1] {
		t.Errorf("the allowed file variable, read before and after a write: %q", reads)
	}
	if l := guestLine(rec, "writefile"); !strings.Contains(l, "errno") {
		t.Errorf("the file variable was writable: %q", l)
	}
	for _, bad := range []string{"denied-content-9c1b", "root:x:0:0", r.attacker, r.canary, "[[runners]]"} {
		if strings.Contains(text, bad) {
			t.Errorf("the job log holds %q", bad)
		}
	}
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "guest: env:") && !strings.HasPrefix(l, "guest: var:") && !strings.HasPrefix(l, "guest: pwd:") {
			continue
		}
		for _, host := range []string{r.root, repoRoot, filepath.Dir(binPath), os.TempDir() + "/"} {
			if strings.Contains(l, host) {
				t.Errorf("a host path (%s) reached the guest: %q", host, l)
			}
		}
		if strings.Contains(l, "DENIED_FILE") {
			t.Errorf("the denied variable is visible: %q", l)
		}
	}
	if l := guestLine(rec, "pwd:"); l != "pwd: /" {
		t.Errorf("pwd: %q, want /", l)
	}
	r.alive()
	r.stop(syscall.SIGQUIT)
}

// Operator policy: what a manifest asks beyond the tenant's policy is cut,
// with one job-log line, and the cut holds.
func TestOperatorPolicy(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "hello")
	}))
	defer plain.Close()
	r := startRig(t, rigConfig{attacker: tenant{modules: mods(
		"spinner.wasm", guest(t, "spin"),
		"spinner.toml", "[limits]\ncpu = \"uninterrupted\"\n",
		"wide.wasm", guest(t, "hostile"),
		"wide.toml", "[http]\nallow = [\"*\"]\n",
		"greedy.wasm", guest(t, "hostile"),
		"greedy.toml", "[limits]\nmemory = \"1GiB\"\n"),
		policy: "memory = \"16MiB\""}})
	recs := r.attack(minute,
		r.job("uninterrupted", "spinner", "go").Timeout(3*time.Second),
		r.job("allow-star", "wide", "http GET "+plain.URL+"/"),
		r.job("memory-ceiling", "greedy", "mem 1024", "trap"))
	r.check(recs[0], expect{state: failed, reason: gitlab.JobExecutionTimeout, denied: []string{`limits\.cpu`, `uninterrupted`, `interrupt`}})
	r.check(recs[1], expect{state: success, denied: []string{`http\.allow`, `\*`}})
	for i, cut := range [][]string{{`limits\.cpu`, `uninterrupted`}, {`http\.allow`, `\*`}, {`limits\.memory`, `1GiB`}} {
		if n := len(runnerLines(recs[i], cut...)); n != 1 {
			t.Errorf("job %s: %d job-log lines about the cut of %s, want one", recs[i].Name, n, cut[0])
		}
	}
	if l := guestLine(recs[1], "http "); !strings.Contains(l, "rc -6") || hits.Load() != 0 {
		t.Errorf("allow = [\"*\"] reached a host: %q, %d requests", l, hits.Load())
	}
	r.check(recs[2], expect{state: failed, reason: gitlab.ScriptFailure, denied: []string{`limits\.memory`, `1GiB`, `16MiB`}})
	if n := numberAfter(guestLine(recs[2], "mem:"), "refused after "); n < 0 || n > 16<<10 {
		t.Errorf("the guest got %d KiB, past the policy's 16MiB", n)
	}
	r.cpuSettles(2*time.Second, 300*time.Millisecond, 30*time.Second)
	r.alive()
	r.stop(syscall.SIGTERM)
}

// modulesDirAttack plants something in the attacker's modules dir while
// the runner runs: the canary keeps running jobs, the runner logs the
// problem naming it, its job fails with "not loaded", the dir is still
// watched (a module added afterwards loads and runs), and SIGTERM works.
func modulesDirAttack(t *testing.T, module, file string, plant func(dir string) error) *rig {
	r := startRig(t, rigConfig{attacker: tenant{modules: mods("hostile.wasm", guest(t, "hostile"))}})
	if err := plant(r.attackerDir); err != nil {
		t.Fatal(err)
	}
	canary := r.canaryJob()
	// Not fatal: the checks after it (the canary, the dir still watched,
	// SIGTERM) say more about how the runner copes.
	ev := r.lookEvent(20*time.Second, func(ev map[string]any) bool {
		if ev["level"] != "ERROR" && ev["level"] != "WARN" {
			return false
		}
		for k, v := range ev {
			if s, ok := v.(string); ok && k != "msg" && strings.Contains(s, file) {
				return true
			}
		}
		// The registry's "handler not loaded" names the module.
		return ev["msg"] == "handler not loaded" && ev["module"] == module && file == module+".wasm"
	})
	if ev == nil {
		r.errorf("within 20s of planting %s the runner logged no error or warning naming it", file)
	}
	r.checkCanary(canary, minute)
	r.checkCanary(r.canaryJob(), minute)
	return r
}

// stillWatched checks that the modules dir is still watched after an
// attack (a module added now loads and runs), that the runner serves, and
// that SIGTERM stops it.
func (r *rig) stillWatched() {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.attackerDir, "fresh.wasm"), guest(r.t, "hostile"), 0o644); err != nil {
		r.t.Fatal(err)
	}
	fresh := r.lookEvent(20*time.Second, func(ev map[string]any) bool {
		return ev["module"] == "fresh" && ev["msg"] == "handler loaded"
	})
	if fresh == nil {
		r.errorf("fresh.wasm, added after the attack, was not loaded within 20s: the modules dir is no longer watched")
	} else {
		recs := r.attack(minute, r.job("fresh", "fresh", "echo fresh module runs"))
		r.check(recs[0], expect{state: success})
	}
	r.alive()
	r.stop(syscall.SIGTERM)
}

func TestModulesDirDevZero(t *testing.T) {
	t.Parallel()
	r := modulesDirAttack(t, "x", "x.wasm", func(dir string) error { return os.Symlink("/dev/zero", filepath.Join(dir, "x.wasm")) })
	r.notLoaded("x")
	r.stillWatched()
}

func TestModulesDirFIFO(t *testing.T) {
	t.Parallel()
	r := modulesDirAttack(t, "y", "y.wasm", func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, "y.wasm"), 0o644) })
	r.notLoaded("y")
	r.stillWatched()
}

// A manifest that is a symlink to a file outside the dir is not read: the
// runner says so, and the module is refused, or loaded without it (it
// never gets the outside file's settings).
func TestModulesDirManifestSymlink(t *testing.T) {
	t.Parallel()
	r := modulesDirAttack(t, "z", "z.toml", func(dir string) error {
		outside := filepath.Join(filepath.Dir(dir), "outside.toml")
		if err := os.WriteFile(outside, []byte("[limits]\nmemory = \"1GiB\"\n"), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "z.wasm"), guest(t, "hostile"), 0o644); err != nil {
			return err
		}
		return os.Symlink(outside, filepath.Join(dir, "z.toml"))
	})
	recs := r.attack(minute, r.job("z", "z", "echo z runs"))
	switch rec := recs[0]; {
	case strings.Contains(traceText(rec), "1GiB"):
		t.Errorf("the runner applied the manifest outside the modules dir:\n%s", traceText(rec))
	case rec.State == failed:
		r.check(rec, expect{state: failed, denied: []string{`not loaded`, `z`}})
	default:
		r.check(rec, expect{state: success})
	}
	r.stillWatched()
}

func TestModulesDirOversize(t *testing.T) {
	t.Parallel()
	r := modulesDirAttack(t, "w", "w.wasm", func(dir string) error {
		// Sparse: past the 256 MiB module cap without using the disk.
		f, err := os.Create(filepath.Join(dir, "w.wasm"))
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.Write([]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}); err != nil {
			return err
		}
		return f.Truncate(256<<20 + 1)
	})
	r.notLoaded("w")
	r.stillWatched()
}
