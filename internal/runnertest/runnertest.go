// Package runnertest holds the repository's helpers for end-to-end tests
// of the engine and its modules: Start runs a modules dir through the
// public test kit (handlertest) with the settings these tests expect,
// BenchJobs measures jobs per second. Handler authors use handlertest.
package runnertest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/handlertest"
)

// Module returns a built module read from path. When it is missing the
// test is skipped, or failed under CI (CI set), where the build must have
// run first; build names the command that builds it.
func Module(t testing.TB, path, build string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: %s must run before the tests (%v)", path, build, err)
		}
		t.Skipf("%s is missing: run %s (%v)", path, build, err)
	}
	return data
}

// ModulesDir writes a modules dir: NAME.wasm for each module and NAME.toml
// for each manifest.
func ModulesDir(t testing.TB, wasm map[string][]byte, manifests map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range wasm {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, m := range manifests {
		if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// LogWriter sends an operator log to the test's log.
type LogWriter struct{ T testing.TB }

func (w LogWriter) Write(p []byte) (int, error) {
	w.T.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// FastRetry is a GitLab client retry policy for tests.
func FastRetry() gitlab.RetryPolicy {
	return gitlab.RetryPolicy{
		MaxAttempts: 5, MaxElapsed: 10 * time.Second, InitialInterval: time.Millisecond,
		MaxInterval: 20 * time.Millisecond, AttemptTimeout: 10 * time.Second,
	}
}

// TestStop are short stop timings for tests: guests are interrupted 300 ms
// after their step ends, and abandoned after 5 s.
var TestStop = resource.Stop{Interrupt: 300 * time.Millisecond, Abandon: 5 * time.Second}

// Env is a running engine with the modules of a dir and its fake GitLab.
type Env struct {
	Srv       *gitlabtest.Server
	Registry  *modules.Registry
	Runner    *engine.Runner
	BuildsDir string
}

// Start runs an engine with the modules of dir against a new fake GitLab
// (handlertest.LoadDir, without a compilation cache), with short
// intervals, stop timings TestStop and a debug log in the test's log;
// configure may change either config before use. Modules that fail to
// load are no error (see Registry.Problems). Everything stops when the
// test ends.
func Start(t *testing.T, dir string, configure func(*modules.Config, *engine.Config)) *Env {
	t.Helper()
	var buildsDir string
	r := handlertest.LoadDir(t, dir, handlertest.CacheDir(""), handlertest.Configure(func(m *modules.Config, c *engine.Config) {
		logger := slog.New(slog.NewTextHandler(LogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		m.Logger, c.Logger = logger, logger
		if configure != nil {
			configure(m, c)
		}
		if c.Process == nil {
			c.Process = resource.NewProcess(resource.ProcessConfig{Jobs: c.Concurrency, Stop: TestStop})
		}
		buildsDir = c.BuildsDir
	}))
	return &Env{Srv: r.Server(), Registry: r.Registry(), Runner: r.Engine(), BuildsDir: buildsDir}
}

// Wait waits up to 20 s for a job to end and returns it.
func (e *Env) Wait(t testing.TB, id int64) gitlabtest.JobRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec, err := e.Srv.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed, gitlab.StateCanceled)
	if err != nil {
		t.Fatalf("%v\ntrace:\n%s", err, rec.Trace)
	}
	return rec
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchJobs runs b.N jobs made by job through an engine with factory at
// the given concurrency against a new fake GitLab, and reports jobs/s. The
// timer covers the whole loop, fake GitLab included. configure, if given,
// may change the engine's config.
func BenchJobs(b *testing.B, concurrency int, factory engine.HandlerFactory, job func() *gitlabtest.JobBuilder, configure ...func(*engine.Config)) {
	b.Helper()
	srv := gitlabtest.NewServer()
	defer srv.Close()
	client, err := gitlab.New(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	cfg := engine.Config{
		Client: client, Token: srv.RunnerToken, BuildsDir: b.TempDir(), Handler: factory,
		Concurrency: concurrency, CheckInterval: time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	}
	for _, c := range configure {
		c(&cfg)
	}
	r, err := engine.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, b.N)
	for i := range ids {
		ids[i] = srv.Enqueue(job())
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	for _, id := range ids {
		rec, err := srv.WaitForState(context.Background(), id, gitlab.StateSuccess, gitlab.StateFailed)
		if err != nil || rec.State != gitlab.StateSuccess {
			b.Fatalf("job %d: %s %v\n%s", id, rec.State, err, rec.Trace)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = r.Shutdown(context.Background())
	<-done
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
}
