package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/fleet"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/syncbuf"
)

// tenants serves two runner entries from one config file, team-a with
// modsA and team-b with modsB, until the test stops it with a signal.
type tenants struct {
	a, b *gitlabtest.Server
	sigs chan os.Signal
	done chan error
	log  *syncbuf.Buffer
	cfg  string
}

func startTenants(t *testing.T, modsA, modsB, global string, base serveOptions) *tenants {
	t.Helper()
	ts := &tenants{a: gitlabtest.NewServer(), b: gitlabtest.NewServer(), sigs: make(chan os.Signal, 4), done: make(chan error, 1), log: &syncbuf.Buffer{}}
	t.Cleanup(ts.a.Close)
	t.Cleanup(ts.b.Close)
	entry := func(name string, s *gitlabtest.Server, mods string) string {
		return fmt.Sprintf("[[runners]]\nname = %q\nurl = %q\ntoken = %q\nmodules = %q\ncheck_interval = \"20ms\"\n", name, s.URL, s.RunnerToken, mods)
	}
	ts.cfg = filepath.Join(t.TempDir(), "wasmrunner.toml")
	os.WriteFile(ts.cfg, []byte(global+entry("team-a", ts.a, modsA)+entry("team-b", ts.b, modsB)), 0o600)
	base.buildsDir, base.concurrency, base.checkInterval = t.TempDir(), 2, 20*time.Millisecond
	base.shutdownTimeout, base.reloadInterval, base.outputLimit, base.updateInterval = 10*time.Second, time.Second, 1<<20, 50*time.Millisecond
	logger := slog.New(slog.NewJSONHandler(ts.log, nil))
	go func() { ts.done <- serveSet(context.Background(), configSet(ts.cfg, base), logger, ts.sigs) }()
	return ts
}

// wait waits for a job's end.
func (ts *tenants) wait(t *testing.T, s *gitlabtest.Server, id int64, within time.Duration) gitlabtest.JobRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	rec, err := s.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed)
	if err != nil {
		t.Fatalf("job %d: %v\ntrace:\n%s\nlog:\n%s", id, err, rec.Trace, ts.log.String())
	}
	return rec
}

// stop sends sig and fails unless serve returns within limit.
func (ts *tenants) stop(t *testing.T, sig os.Signal, limit time.Duration) {
	t.Helper()
	start := time.Now()
	ts.sigs <- sig
	select {
	case err := <-ts.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
		t.Logf("stopped %v after %v", sig, time.Since(start).Round(time.Millisecond))
	case <-time.After(limit):
		t.Fatalf("serve did not stop within %v of %v\n%s", limit, sig, ts.log.String())
	}
}

// TestServeTenantsLoadIndependently: whatever hostile file team-a's modules
// dir holds, team-b's runner starts and its jobs succeed, team-a's good
// handler works, jobs routed to the hostile one fail with a short reason,
// and SIGTERM stops everything at once.
func TestServeTenantsLoadIndependently(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"FIFO", func(t *testing.T, dir string) {
			if err := unix.Mkfifo(filepath.Join(dir, "evil.wasm"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "evil.wasm is a named pipe (FIFO), not a regular file; refused"},
		{"FIFO manifest", func(t *testing.T, dir string) {
			data, _ := os.ReadFile(filepath.Join(dir, "probe.wasm"))
			os.WriteFile(filepath.Join(dir, "evil.wasm"), data, 0o644)
			if err := unix.Mkfifo(filepath.Join(dir, "evil.toml"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "manifest: evil.toml is a named pipe (FIFO), not a regular file; refused"},
		{"link to /dev/zero", func(t *testing.T, dir string) {
			if err := os.Symlink("/dev/zero", filepath.Join(dir, "evil.wasm")); err != nil {
				t.Fatal(err)
			}
		}, "evil.wasm is a link that leads out of the modules dir; refused unread"},
		{"huge module", func(t *testing.T, dir string) {
			writeManyFunctions(t, filepath.Join(dir, "evil.wasm"), 100<<20)
		}, "evil.wasm is 100.0MiB, more than the limit of 32MiB; refused unread"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			modsA, modsB := guestsDir(t, "probe"), guestsDir(t, "probe")
			tc.setup(t, modsA)
			ts := startTenants(t, modsA, modsB, "", serveOptions{})
			if rec := ts.wait(t, ts.b, ts.b.Enqueue(gitlabtest.NewJob("b").Image("probe").Script("e team b runs")), 30*time.Second); rec.State != gitlab.StateSuccess {
				t.Errorf("team-b: %s\n%s", rec.State, rec.Trace)
			}
			if rec := ts.wait(t, ts.a, ts.a.Enqueue(gitlabtest.NewJob("a").Image("probe").Script("e team a runs")), 30*time.Second); rec.State != gitlab.StateSuccess {
				t.Errorf("team-a: %s\n%s", rec.State, rec.Trace)
			}
			rec := ts.wait(t, ts.a, ts.a.Enqueue(gitlabtest.NewJob("evil").Image("evil").Script("e x")), 30*time.Second)
			if rec.State != gitlab.StateFailed || !strings.Contains(string(rec.Trace), "evil.wasm failed to load: "+tc.want) {
				t.Errorf("job routed to the hostile module: %s\n%s", rec.State, rec.Trace)
			}
			ts.stop(t, syscall.SIGTERM, 10*time.Second)
			if !strings.Contains(ts.log.String(), tc.want) {
				t.Errorf("the operator log lacks %q", tc.want)
			}
		})
	}
}

// TestServeSignalDuringSlowLoad: while team-a's handlers are still
// compiling (a module that takes a minute), team-b (its handler already
// compiled in its cache) serves, and SIGTERM ends serve at once.
func TestServeSignalDuringSlowLoad(t *testing.T) {
	compiled := t.TempDir()
	modsA, modsB := guestsDir(t, "probe"), guestsDir(t, "probe")
	os.WriteFile(filepath.Join(modsA, "slow.wasm"), slowToCompile(1<<20), 0o644)
	// team-b's handler was compiled by an earlier run.
	compiler, err := modules.SelfCompiler()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := modules.Open(context.Background(), modules.Config{Dir: modsB, CacheDir: filepath.Join(compiled, "team-b"), Compiler: compiler})
	if err != nil || len(reg.Problems()) > 0 {
		t.Fatalf("warming team-b's cache: %v %v", err, reg.Problems())
	}
	reg.Close(context.Background())

	ts := startTenants(t, modsA, modsB, "", serveOptions{compiledDir: compiled})
	if rec := ts.wait(t, ts.b, ts.b.Enqueue(gitlabtest.NewJob("b").Image("probe").Script("e team b runs")), 20*time.Second); rec.State != gitlab.StateSuccess {
		t.Errorf("team-b: %s\n%s", rec.State, rec.Trace)
	}
	if serving(ts.log.String(), "team-a") {
		t.Fatal("team-a started: its slow module did not slow its load")
	}
	ts.stop(t, syscall.SIGTERM, 5*time.Second)
}

// TestServeLoadTimeout: a runner whose handlers take longer to load than
// load_timeout starts with those loaded by then; the rest keep loading.
func TestServeLoadTimeout(t *testing.T) {
	modsA, modsB := guestsDir(t, "probe"), guestsDir(t, "probe")
	os.WriteFile(filepath.Join(modsA, "slow.wasm"), slowToCompile(1<<20), 0o644)
	ts := startTenants(t, modsA, modsB, "load_timeout = \"5s\"\n", serveOptions{})
	if rec := ts.wait(t, ts.a, ts.a.Enqueue(gitlabtest.NewJob("a").Image("probe").Script("e team a runs")), 30*time.Second); rec.State != gitlab.StateSuccess {
		t.Errorf("team-a: %s\n%s", rec.State, rec.Trace)
	}
	rec := ts.wait(t, ts.a, ts.a.Enqueue(gitlabtest.NewJob("slow").Image("slow").Script("e x")), 30*time.Second)
	if rec.State != gitlab.StateFailed || !strings.Contains(string(rec.Trace), "slow.wasm failed to load: ") {
		t.Errorf("slow: %s\n%s", rec.State, rec.Trace)
	}
	// The slow module is compiling again (reload) when the signal comes.
	ts.stop(t, syscall.SIGTERM, 5*time.Second)
}

// serving reports whether the JSON log says runner started serving.
func serving(log, runner string) bool {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"msg":"wasmrunner serving"`) && strings.Contains(sc.Text(), `"runner":"`+runner+`"`) {
			return true
		}
	}
	return false
}

// TestCompileCacheMetric: each runner's compilation cache size is a metric.
func TestCompileCacheMetric(t *testing.T) {
	m := newMetrics(1)
	m.forRunner("team-a").CacheSize(12345)
	rec := httptest.NewRecorder()
	m.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `wasmrunner_compile_cache_bytes{runner="team-a"} 12345`) {
		t.Errorf("metrics:\n%s", rec.Body.String())
	}
}

// A small builder of WebAssembly binaries.

func leb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func section(id byte, body []byte) []byte {
	return append(leb([]byte{id}, uint64(len(body))), body...)
}

var preamble = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

// slowToCompile is a valid module of about size bytes that takes wazero's
// compiler about a minute per MB: one function of branches over 64 locals.
func slowToCompile(size int) []byte {
	const nl = 64
	b := []byte{1, nl, 0x7f}
	for k := 0; len(b) < size; k++ {
		a, c, d := byte(k%(nl+1)), byte((k*7+3)%(nl+1)), byte((k*13+5)%nl+1)
		b = append(b, 0x20, a, 0x04, 0x40, 0x20, a, 0x20, c, 0x6a, 0x21, d, 0x05, 0x20, c, 0x41)
		b = sleb(b, int64(k))
		b = append(b, 0x6c, 0x21, d, 0x0b)
	}
	b = append(b, 0x20, 1, 0x0b)
	out := append([]byte{}, preamble...)
	out = append(out, section(1, []byte{1, 0x60, 1, 0x7f, 1, 0x7f})...)
	out = append(out, section(3, []byte{1, 0})...)
	return append(out, section(10, append(leb([]byte{1}, uint64(len(b))), b...))...)
}

// writeManyFunctions writes a valid module of about size bytes: functions
// of 10 KB each, written as it goes.
func writeManyFunctions(t *testing.T, path string, size int) {
	t.Helper()
	var body []byte
	body = append(body, 0) // no locals
	for len(body) < 10<<10 {
		body = append(body, 0x41, 1, 0x1a) // i32.const 1; drop
	}
	body = append(body, 0x0b)
	fn := leb(nil, uint64(len(body)))
	fn = append(fn, body...)
	n := size / len(fn)
	funcs := leb(nil, uint64(n))
	funcs = append(funcs, make([]byte, n)...) // all of type 0
	code := leb(nil, uint64(n))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	w.Write(preamble)
	w.Write(section(1, []byte{1, 0x60, 0, 0}))
	w.Write(section(3, funcs))
	w.Write(leb([]byte{10}, uint64(len(code)+n*len(fn))))
	w.Write(code)
	for range n {
		w.Write(fn)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestCompileSettings: the loading bounds come from flags, then the config
// file; bad values are usage errors.
func TestCompileSettings(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(cfg, []byte(`max_module_size = "8MiB"
compile_memory = "512MiB"
compile_timeout = "20s"
compile_cache_size = "100MiB"
load_timeout = "7s"
[[runners]]
name = "x/y"
url = "http://127.0.0.1:1"
token = "t"
modules = "."
`), 0o600)
	global, runners, err := configSet(cfg, serveOptions{compile: resourceDefaults(), cacheMax: 1 << 30, loadTimeout: time.Minute})()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []serveOptions{global, runners[0]} {
		if o.compile.MaxModuleSize != 8<<20 || o.compile.Memory != 512<<20 || o.compile.Timeout != 20*time.Second || o.cacheMax != 100<<20 || o.loadTimeout != 7*time.Second {
			t.Errorf("options: %+v %d %v", o.compile, o.cacheMax, o.loadTimeout)
		}
	}
	if n := fleet.CacheName(runners[0].name); strings.ContainsAny(n, "/") || n == fleet.CacheName("x_y") {
		t.Errorf("cache dir name %q", n)
	}
	for _, args := range [][]string{
		{"--compile-memory", "lots"}, {"--max-module-size", "0"}, {"--compile-cache-size", "-1"}, {"--compile-timeout", "0s"},
	} {
		code, _, errOut := runCLI(t, context.Background(), append([]string{"serve", "--url", "http://127.0.0.1:1", "--token", "x", "--modules", "."}, args...)...)
		if code != exitUsage || !strings.Contains(errOut, strings.TrimPrefix(args[0], "--")) {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}

func resourceDefaults() resource.CompileLimits { return resource.CompileLimits{}.WithDefaults() }

// TestSaturationMetric: wasmrunner_saturation_ratio is running jobs over
// concurrency, as jobs start and finish.
func TestSaturationMetric(t *testing.T) {
	tests := []struct {
		concurrency, started, finished int
		want                           string
	}{
		{4, 0, 0, "wasmrunner_saturation_ratio 0\n"},
		{4, 1, 0, "wasmrunner_saturation_ratio 0.25\n"},
		{4, 4, 0, "wasmrunner_saturation_ratio 1\n"},
		{4, 4, 2, "wasmrunner_saturation_ratio 0.5\n"},
		{0, 1, 0, "wasmrunner_saturation_ratio 0\n"},
	}
	for _, tt := range tests {
		m := newMetrics(tt.concurrency)
		for range tt.started {
			m.forRunner("default").JobStarted(engine.JobEvent{})
		}
		for range tt.finished {
			m.forRunner("default").JobFinished(engine.JobEvent{State: gitlab.StateSuccess})
		}
		rec := httptest.NewRecorder()
		m.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("concurrency %d, %d started, %d finished: metrics lack %q", tt.concurrency, tt.started, tt.finished, tt.want)
		}
	}
}
