// Package load_test holds benchmarks of a whole runner: the built
// wasmrunner binary serving the fake GitLab (gitlab/gitlabtest), which
// runs in the benchmark's own process, so runner and GitLab are separate
// processes as in production. They are benchmarks, never tests: run them
// on a quiet machine,
//
//	go test -run XXX -bench . -benchtime 2000x ./test/load/
//	go test -run XXX -bench WaitingJobs -benchtime 1x ./test/load/ -load.waiting 10000
//
// and keep the figures in docs/benchmarks.md. -load.profile DIR saves the
// runner's CPU profile (trivial jobs) or heap and goroutine profiles
// (waiting jobs) there, taken through serve's --pprof endpoint.
package load_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

var (
	waiting     = flag.Int("load.waiting", 1000, "jobs held waiting at once by BenchmarkWaitingJobs")
	concurrency = flag.Int("load.concurrency", 8, "concurrency of the runner in BenchmarkServeTrivialJobs")
	profileDir  = flag.String("load.profile", "", "directory for the runner's profiles (empty: none)")
)

var (
	buildOnce sync.Once
	binPath   string
	repoRoot  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// binary builds the runner once per test process (removed by TestMain).
func binary(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		wd, err := os.Getwd()
		if err != nil {
			buildErr = err
			return
		}
		repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
		dir, err := os.MkdirTemp("", "wasmrunner-load-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wasmrunner")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/wasmrunner")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binPath
}

// runner is a child `wasmrunner serve` with the shell handler.
type runner struct {
	b      *testing.B
	cmd    *exec.Cmd
	addr   string
	stderr syncbuf.Buffer
}

func startRunner(b *testing.B, srv *gitlabtest.Server, concurrency int) *runner {
	b.Helper()
	bin := binary(b)
	root := b.TempDir()
	mods := filepath.Join(root, "modules")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		b.Fatal(err)
	}
	shell, err := os.ReadFile(filepath.Join(repoRoot, "examples", "modules", "shell.wasm"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mods, "shell.wasm"), shell, 0o644); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &runner{b: b, addr: addr}
	// Thousands of jobs hold thousands of descriptors (see
	// resource.FilesFor): raise the limit where allowed (as root).
	r.cmd = exec.Command("/bin/sh", "-c", `ulimit -n 65536 2>/dev/null; exec "$0" "$@"`, bin, "--log-level", "warn", "serve", "--url", srv.URL, "--token", srv.RunnerToken,
		"--modules", mods, "--builds-dir", filepath.Join(root, "builds"), "--listen", addr, "--pprof",
		"--concurrency", strconv.Itoa(concurrency), "--check-interval", "100ms")
	r.cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(root, "cache"))
	r.cmd.Stdout, r.cmd.Stderr = &r.stderr, &r.stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = r.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = r.cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("the runner did not become ready:\n%s", r.stderr.String())
		}
	}
}

// get fetches a path of the runner's listen address.
func (r *runner) get(path string) ([]byte, error) {
	resp, err := http.Get("http://" + r.addr + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// metric returns a metric of /metrics (all its series added up), or -1.
func (r *runner) metric(name string) float64 {
	data, err := r.get("/metrics")
	if err != nil {
		return -1
	}
	// The sum of the series of name: gitlab_runner_jobs has one per
	// runner ({runner="default"}).
	sum, found := 0.0, false
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			if f, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				sum, found = sum+f, true
			}
		}
	}
	if !found {
		return -1
	}
	return sum
}

// memory returns the runner's resident memory: rss counts a page of a
// file mapped in several places (a snapshot image every instance maps
// copy-on-write) once per mapping, pss once in all (the memory the
// machine, and the container's cgroup, pays), private the pages mapped
// once.
func (r *runner) memory() (rss, pss, private int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", r.cmd.Process.Pid))
	if err != nil {
		r.b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			rss = n << 10
		case "Pss:":
			pss = n << 10
		case "Private_Clean:", "Private_Dirty:":
			private += n << 10
		}
	}
	return rss, pss, private
}

// cpu returns the CPU time the runner has used so far.
func (r *runner) cpu() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.cmd.Process.Pid))
	if err != nil {
		r.b.Fatal(err)
	}
	// Fields after the command's closing parenthesis: utime and stime
	// are the 12th and 13th, in clock ticks (100 per second on Linux).
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// selfCPU returns the CPU time this process (the fake GitLab, mostly)
// has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// saveProfile stores a pprof endpoint's answer under -load.profile.
func (r *runner) saveProfile(path, name string) {
	if *profileDir == "" {
		return
	}
	data, err := r.get(path)
	if err != nil {
		r.b.Logf("profile %s: %v", path, err)
		return
	}
	if err := os.MkdirAll(*profileDir, 0o755); err != nil {
		r.b.Fatal(err)
	}
	p := filepath.Join(*profileDir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		r.b.Fatal(err)
	}
	r.b.Logf("saved %s", p)
}

// BenchmarkServeTrivialJobs measures trivial shell jobs end to end: from
// queued in GitLab to their final state there, b.N of them, at
// -load.concurrency. Reports jobs/s and the CPU time the runner and the
// fake GitLab (this process) spent per job.
func BenchmarkServeTrivialJobs(b *testing.B) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	r := startRunner(b, srv, *concurrency)
	// Warm up: the first job compiles nothing (the cache is warm from
	// start-up) but fills the runner's pools.
	warm := srv.Enqueue(gitlabtest.NewJob("warm").Image("shell").Script("true"))
	waitFinal(b, srv, []int64{warm}, time.Minute)

	ids := make([]int64, b.N)
	for i := range ids {
		ids[i] = srv.Enqueue(gitlabtest.NewJob(fmt.Sprintf("job %d", i)).Image("shell").Script("echo hello"))
	}
	var profiled chan struct{}
	if *profileDir != "" {
		profiled = make(chan struct{})
		go func() { defer close(profiled); r.saveProfile("/debug/pprof/profile?seconds=5", "cpu.pprof") }()
	}
	b.ResetTimer()
	start, runnerCPU, gitlabCPU := time.Now(), r.cpu(), selfCPU()
	waitFinal(b, srv, ids, 10*time.Minute)
	elapsed := time.Since(start)
	runnerCPU, gitlabCPU = r.cpu()-runnerCPU, selfCPU()-gitlabCPU
	b.StopTimer()
	if profiled != nil {
		<-profiled
	}
	r.saveProfile("/debug/pprof/allocs", "allocs.pprof")
	for _, id := range ids {
		if rec := srv.Job(id); rec.State != gitlab.StateSuccess {
			b.Fatalf("job %d: %s %s\n%s", id, rec.State, rec.FailureReason, rec.Trace)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	// CPU per job says what a quiet machine can do whatever else this
	// one is doing: jobs/s <= cores / (runner + GitLab CPU per job).
	b.ReportMetric(float64(runnerCPU.Microseconds())/float64(b.N), "µs-cpu-runner/job")
	b.ReportMetric(float64(gitlabCPU.Microseconds())/float64(b.N), "µs-cpu-gitlab/job")
	b.ReportMetric(float64(len(srv.Requests()))/float64(b.N+1), "requests/job")
}

// waitFinal waits for every job of ids to reach a final state.
func waitFinal(b *testing.B, srv *gitlabtest.Server, ids []int64, d time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for _, id := range ids {
		if rec, err := srv.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed, gitlab.StateCanceled); err != nil {
			b.Fatalf("job %d: %v (%s)", id, err, rec.State)
		}
	}
}

// BenchmarkWaitingJobs holds -load.waiting shell jobs sleeping at once
// (as jobs waiting on a hardware lab or a build service do) and reports
// what each costs the runner: resident, proportional and private memory, Go heap and
// goroutines per waiting job, above an idle runner's; the rest of the
// resident memory is mostly the guests' linear memory and wazero's. b.N is ignored:
// run it with -benchtime 1x.
func BenchmarkWaitingJobs(b *testing.B) {
	n := *waiting
	srv := gitlabtest.NewServer(gitlabtest.WithTraceUpdateInterval(3 * time.Second))
	defer srv.Close()
	r := startRunner(b, srv, n)
	// An idle runner that ran one job, for the baseline.
	warm := srv.Enqueue(gitlabtest.NewJob("warm").Image("shell").Script("true"))
	waitFinal(b, srv, []int64{warm}, time.Minute)
	_, _ = r.get("/debug/pprof/heap?gc=1")
	baseRSS, basePSS, basePriv := r.memory()
	baseHeap, baseG := r.metric("go_memstats_heap_inuse_bytes"), r.metric("go_goroutines")
	baseStack, baseFDs := r.metric("go_memstats_stack_inuse_bytes"), r.metric("process_open_fds")

	b.ResetTimer()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = srv.Enqueue(gitlabtest.NewJob(fmt.Sprintf("waiting %d", i)).Image("shell").
			Script("echo waiting", "sleep 100000").Timeout(24 * time.Hour))
	}
	for deadline := time.Now().Add(30 * time.Minute); ; time.Sleep(time.Second) {
		if int(r.metric("wasmrunner_job_slots_used")) >= n && strings.Contains(string(srv.Job(ids[n-1]).Trace), "waiting") {
			break
		}
		for _, id := range ids {
			if rec := srv.Job(id); rec.State == gitlab.StateFailed {
				b.Fatalf("job %d failed (%s):\n%s", id, rec.FailureReason, rec.Trace)
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %v of %d jobs running", r.metric("wasmrunner_job_slots_used"), n)
		}
	}
	// Let every job's first log patch and keep-alive go out, then collect
	// garbage so the heap is what the jobs hold.
	time.Sleep(5 * time.Second)
	_, _ = r.get("/debug/pprof/heap?gc=1")
	rss, pss, priv := r.memory()
	heap, g := r.metric("go_memstats_heap_inuse_bytes"), r.metric("go_goroutines")
	stack, fds := r.metric("go_memstats_stack_inuse_bytes"), r.metric("process_open_fds")
	b.StopTimer()
	r.saveProfile("/debug/pprof/heap", "heap.pprof")
	r.saveProfile("/debug/pprof/goroutine", "goroutine.pprof")
	r.saveProfile("/debug/pprof/goroutine?debug=1", "goroutine.txt")

	per := func(v, base float64) float64 { return (v - base) / float64(n) }
	b.ReportMetric(per(float64(rss), float64(baseRSS))/1024, "KiB-rss/job")
	b.ReportMetric(per(float64(pss), float64(basePSS))/1024, "KiB-pss/job")
	b.ReportMetric(per(float64(priv), float64(basePriv))/1024, "KiB-private/job")
	b.ReportMetric(per(heap, baseHeap)/1024, "KiB-heap/job")
	b.ReportMetric(per(stack, baseStack)/1024, "KiB-stacks/job")
	b.ReportMetric(per(g, baseG), "goroutines/job")
	b.ReportMetric(per(fds, baseFDs), "fds/job")
	b.ReportMetric(float64(rss)/(1<<20), "MiB-rss-total")
	b.ReportMetric(float64(pss)/(1<<20), "MiB-pss-total")
	for _, id := range ids {
		srv.Cancel(id)
	}
}
