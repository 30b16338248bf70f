package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// funcHandler is a Handler made of functions.
type funcHandler struct {
	job     *engine.Job
	step    func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error
	cleanup func()
}

func (h *funcHandler) Step(ctx context.Context, script []string, phase engine.Phase) error {
	if h.step == nil {
		for _, l := range script {
			h.job.Println(l)
		}
		return nil
	}
	return h.step(ctx, h.job, script, phase)
}

func (h *funcHandler) Cleanup(context.Context) {
	if h.cleanup != nil {
		h.cleanup()
	}
}

// stepFunc returns a factory for handlers running step.
func stepFunc(step func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error) engine.HandlerFactory {
	return func(_ context.Context, job *engine.Job) (engine.Handler, error) {
		return &funcHandler{job: job, step: step}, nil
	}
}

type harness struct {
	t      *testing.T
	srv    *gitlabtest.Server
	runner *engine.Runner
	cfg    engine.Config
	done   chan error
}

func newHarness(t *testing.T, factory engine.HandlerFactory, mod func(*engine.Config)) *harness {
	t.Helper()
	srv := gitlabtest.NewServer(gitlabtest.WithTraceUpdateInterval(time.Second))
	t.Cleanup(srv.Close)
	client, err := gitlab.New(srv.URL, gitlab.WithRetryPolicy(gitlab.RetryPolicy{
		MaxAttempts: 5, MaxElapsed: 10 * time.Second, InitialInterval: time.Millisecond,
		MaxInterval: 20 * time.Millisecond, AttemptTimeout: 10 * time.Second,
	}))
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.Config{
		Client:            client,
		Token:             srv.RunnerToken,
		SystemID:          "s_000000000000",
		Handler:           factory,
		BuildsDir:         t.TempDir(),
		Concurrency:       2,
		CheckInterval:     20 * time.Millisecond,
		UpdateInterval:    20 * time.Millisecond,
		MaxUpdateInterval: 50 * time.Millisecond,
		KeepAlive:         50 * time.Millisecond,
		Process:           resource.NewProcess(resource.ProcessConfig{Jobs: 2, Stop: resource.Stop{Abandon: 2 * time.Second}}),
		Logger:            slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, runner: r, cfg: cfg, done: make(chan error, 1)}
	return h
}

func (h *harness) start() {
	go func() { h.done <- h.runner.Run(context.Background()) }()
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.runner.Shutdown(ctx); err != nil {
			h.t.Errorf("shutdown: %v", err)
		}
		<-h.done
	})
}

// wait waits for a job to reach one of states.
func (h *harness) wait(id int64, states ...gitlab.JobState) gitlabtest.JobRecord {
	h.t.Helper()
	if len(states) == 0 {
		states = []gitlab.JobState{gitlab.StateSuccess, gitlab.StateFailed, gitlab.StateCanceled}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rec, err := h.srv.WaitForState(ctx, id, states...)
	if err != nil {
		h.t.Fatalf("%v\ntrace:\n%s", err, rec.Trace)
	}
	return rec
}

// testWriter sends the operator log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestJobSucceeds(t *testing.T) {
	var buildDir string
	var cleaned atomic.Bool
	factory := func(_ context.Context, job *engine.Job) (engine.Handler, error) {
		return &funcHandler{job: job, cleanup: func() { cleaned.Store(true) }, step: func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
			buildDir = job.BuildDir()
			if fi, err := os.Stat(buildDir); err != nil || !fi.IsDir() {
				return fmt.Errorf("build dir missing: %v", err)
			}
			if v, _ := job.Variable("CI_PROJECT_DIR"); v.Value != buildDir {
				return fmt.Errorf("CI_PROJECT_DIR = %q", v.Value)
			}
			for _, l := range script {
				job.Printf("ran %s", l)
			}
			return nil
		}}, nil
	}
	h := newHarness(t, factory, nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("ok").Script("first", "second"))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s, trace:\n%s", rec.State, rec.Trace)
	}
	if !strings.Contains(string(rec.Trace), "ran first\nran second\n") || !strings.Contains(string(rec.Trace), "Job succeeded") {
		t.Errorf("trace:\n%s", rec.Trace)
	}
	last := rec.Updates[len(rec.Updates)-1]
	if last.Output == nil || last.Output.Checksum != gitlab.ChecksumOf(rec.Trace) || last.Output.Bytesize != int64(len(rec.Trace)) {
		t.Errorf("final update %+v does not describe the trace", last)
	}
	if !cleaned.Load() {
		t.Error("Cleanup not called")
	}
	waitFor(t, func() bool { _, err := os.Stat(buildDir); return os.IsNotExist(err) }, "build dir removed")
	if v := h.srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %q", v)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJobFailures(t *testing.T) {
	tests := []struct {
		name      string
		factory   engine.HandlerFactory
		reason    gitlab.FailureReason
		exitCode  int
		traceLine string
	}{
		{"exit code", stepFunc(func(context.Context, *engine.Job, []string, engine.Phase) error { return engine.Exit(3) }),
			gitlab.ScriptFailure, 3, "ERROR: Job failed: exit code 3"},
		{"plain error", stepFunc(func(context.Context, *engine.Job, []string, engine.Phase) error { return errors.New("boom") }),
			gitlab.ScriptFailure, 0, "ERROR: Job failed: boom"},
		{"job error", stepFunc(func(context.Context, *engine.Job, []string, engine.Phase) error {
			return engine.NewJobError(gitlab.RunnerSystemFailure, errors.New("lab offline"))
		}), gitlab.RunnerSystemFailure, 0, "ERROR: Job failed (system failure): lab offline"},
		{"factory error", func(context.Context, *engine.Job) (engine.Handler, error) { return nil, errors.New("no such handler") },
			gitlab.RunnerSystemFailure, 0, "creating the handler: no such handler"},
		{"factory panic", func(context.Context, *engine.Job) (engine.Handler, error) { panic("factory exploded") },
			gitlab.RunnerSystemFailure, 0, "handler panicked: factory exploded"},
		{"step panic", stepFunc(func(context.Context, *engine.Job, []string, engine.Phase) error { panic("step exploded") }),
			gitlab.RunnerSystemFailure, 0, "handler panicked: step exploded"},
		{"step panic, StepAbandoner", abandoning(func(context.Context, *engine.Job, []string, engine.Phase) error { panic("step exploded") }),
			gitlab.RunnerSystemFailure, 0, "handler panicked: step exploded"},
		{"exit code, StepAbandoner", abandoning(func(context.Context, *engine.Job, []string, engine.Phase) error { return engine.Exit(3) }),
			gitlab.ScriptFailure, 3, "ERROR: Job failed: exit code 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.factory, nil)
			id := h.srv.Enqueue(gitlabtest.NewJob("bad"))
			next := h.srv.Enqueue(gitlabtest.NewJob("next"))
			h.start()
			rec := h.wait(id)
			if rec.State != gitlab.StateFailed || rec.FailureReason != tt.reason || rec.ExitCode != tt.exitCode {
				t.Errorf("state %s reason %s exit %d; want failed %s %d", rec.State, rec.FailureReason, rec.ExitCode, tt.reason, tt.exitCode)
			}
			if !strings.Contains(string(rec.Trace), tt.traceLine) {
				t.Errorf("trace lacks %q:\n%s", tt.traceLine, rec.Trace)
			}
			// The runner goes on.
			if rec := h.wait(next); rec.State == gitlab.StateRunning {
				t.Error("next job not run")
			}
		})
	}
}

// abandoningHandler is a funcHandler that says it abandons its own steps.
type abandoningHandler struct{ funcHandler }

func (*abandoningHandler) AbandonsStep() {}

var _ engine.StepAbandoner = (*abandoningHandler)(nil)

func abandoning(step func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error) engine.HandlerFactory {
	return func(_ context.Context, job *engine.Job) (engine.Handler, error) {
		return &abandoningHandler{funcHandler{job: job, step: step}}, nil
	}
}

// A StepAbandoner's step runs on the job's goroutine: a cancel reaches it
// through its context and the job is reported once it returns.
func TestStepAbandonerCanceled(t *testing.T) {
	started := make(chan struct{})
	var stacks atomic.Value
	h := newHarness(t, abandoning(func(ctx context.Context, job *engine.Job, _ []string, _ engine.Phase) error {
		buf := make([]byte, 64<<10)
		stacks.Store(string(buf[:runtime.Stack(buf, false)]))
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}), nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("wait"))
	h.start()
	<-started
	h.srv.Cancel(id)
	if rec := h.wait(id); rec.State != gitlab.StateCanceled && rec.State != gitlab.StateFailed {
		t.Errorf("state %s", rec.State)
	}
	if st := stacks.Load().(string); !strings.Contains(st, "engine.(*Runner).runJob") {
		t.Errorf("the step did not run on the job's goroutine:\n%s", st)
	}
}

func TestLogIsExactAndOrdered(t *testing.T) {
	chunks := []string{"plain line\n", "no newline yet", " ... done\n", "\x1b[31mred\x1b[0m\n", "üñíçødé\n", strings.Repeat("x", 70000) + "\n"}
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		for _, c := range chunks {
			job.Writer().Write([]byte(c))
		}
		job.StartSection("my section!", "A header")
		job.Println("inside")
		job.EndSection("my section!")
		return nil
	}), nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("log"))
	h.start()
	rec := h.wait(id)
	tr := string(rec.Trace)
	if !strings.Contains(tr, strings.Join(chunks, "")) {
		t.Errorf("the written bytes are not in the trace, in order")
	}
	if !strings.Contains(tr, ":my_section_\r\x1b[0K\x1b[36;1mA header\x1b[0;m\ninside\nsection_end:") {
		t.Errorf("section markup wrong:\n%q", tr[len(tr)-300:])
	}
}

func TestScriptAndAfterScript(t *testing.T) {
	var mu sync.Mutex
	got := map[engine.Phase][]string{}
	var status string
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		mu.Lock()
		defer mu.Unlock()
		got[phase] = script
		if phase == engine.AfterScript {
			v, _ := job.Variable("CI_JOB_STATUS")
			status = v.Value
			return errors.New("after_script failures do not change the result")
		}
		return engine.Exit(2)
	}), nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("steps").Script("a", "b").AfterScript("c"))
	h.start()
	rec := h.wait(id)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got[engine.Script], ",") != "a,b" || strings.Join(got[engine.AfterScript], ",") != "c" {
		t.Errorf("scripts = %q", got)
	}
	if status != "failed" || rec.State != gitlab.StateFailed || rec.ExitCode != 2 {
		t.Errorf("CI_JOB_STATUS %q, state %s exit %d", status, rec.State, rec.ExitCode)
	}
	if !strings.Contains(string(rec.Trace), "WARNING: after_script failed") {
		t.Errorf("trace:\n%s", rec.Trace)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	const jobs, limit = 32, 4
	var cur, peak atomic.Int64
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		// Finish in an order other than the start order.
		time.Sleep(time.Duration(job.ID()%5) * 7 * time.Millisecond)
		job.Println("done", job.ID())
		return nil
	}), func(c *engine.Config) { c.Concurrency = limit })
	var ids []int64
	for i := range jobs {
		ids = append(ids, h.srv.Enqueue(gitlabtest.NewJob(fmt.Sprint("j", i))))
	}
	h.start()
	for _, id := range ids {
		if rec := h.wait(id); rec.State != gitlab.StateSuccess {
			t.Errorf("job %d: %s", id, rec.State)
		}
	}
	if p := peak.Load(); p > limit || p < 2 {
		t.Errorf("peak concurrency %d, limit %d", p, limit)
	}
}

func TestPolling(t *testing.T) {
	h := newHarness(t, stepFunc(nil), func(c *engine.Config) { c.CheckInterval = 100 * time.Millisecond })
	h.start()
	time.Sleep(350 * time.Millisecond)
	idle := 0
	for _, r := range h.srv.Requests() {
		if r.Endpoint == gitlabtest.EndpointRequestJob {
			idle++
		}
	}
	// About one request per check interval while idle, not a busy loop.
	if idle < 2 || idle > 6 {
		t.Errorf("%d job requests in 350 ms with a 100 ms check interval", idle)
	}
	// Jobs that arrive together are taken without waiting an interval.
	a := h.srv.Enqueue(gitlabtest.NewJob("a"))
	b := h.srv.Enqueue(gitlabtest.NewJob("b"))
	h.wait(a)
	h.wait(b)
	var times []time.Time
	for _, r := range h.srv.Requests() {
		if r.Endpoint == gitlabtest.EndpointRequestJob && r.Status == 201 {
			times = append(times, r.Time)
		}
	}
	if len(times) != 2 || times[1].Sub(times[0]) > 80*time.Millisecond {
		t.Errorf("second job requested %v after the first", times[1].Sub(times[0]))
	}
	// last_update is echoed.
	if h.srv.LastJobRequest().LastUpdate == "" {
		t.Error("last_update not echoed")
	}
}

func TestMasking(t *testing.T) {
	const secret = "s3cr3t-p4ssw0rd-value"
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		v, _ := job.Variable("PASSWORD")
		if !v.Masked || v.Value != secret {
			return fmt.Errorf("PASSWORD = %+v", v)
		}
		job.Printf("value: %s", v.Value)
		w := job.Writer()
		for i := range len(secret) { // one byte at a time
			w.Write([]byte{secret[i]})
		}
		w.Write([]byte("\ntoken glpat-abcdefghijklmnop end\n"))
		w.Write([]byte(secret[:7]))
		return nil
	}), nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("mask").MaskedVar("PASSWORD", secret))
	h.start()
	rec := h.wait(id)
	tr := string(rec.Trace)
	if strings.Contains(tr, secret) || strings.Contains(tr, "abcdefghijklmnop") {
		t.Errorf("secret in trace:\n%s", tr)
	}
	if !strings.Contains(tr, "value: [MASKED]\n[MASKED]\ntoken glpat-[MASKED] end\n") {
		t.Errorf("masked output wrong:\n%s", tr)
	}
}

func TestOutputLimit(t *testing.T) {
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		for range 100 {
			job.Println(strings.Repeat("y", 99))
		}
		return nil
	}), func(c *engine.Config) { c.OutputLimit = 2000 })
	id := h.srv.Enqueue(gitlabtest.NewJob("big"))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateSuccess {
		t.Errorf("state %s", rec.State)
	}
	if len(rec.Trace) > 2300 || !strings.Contains(string(rec.Trace), "exceeded limit of 2000 bytes") {
		t.Errorf("trace of %d bytes:\n%s", len(rec.Trace), rec.Trace)
	}
}

func TestArtifacts(t *testing.T) {
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		files := map[string]string{
			"out/a.txt": "a", "out/sub/b.txt": "b", "out/skip.tmp": "tmp", "top.log": "log",
			"report.xml": "<testsuite/>", "other/c.txt": "c",
		}
		for name, content := range files {
			p := filepath.Join(job.BuildDir(), name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
		return job.AddArtifactData("extra/generated.txt", []byte("from the handler"))
	}), nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("art").
		Artifacts(gitlab.ArtifactSpec{Name: "out", Paths: []string{"out/", "*.log", "../escape"}, Exclude: []string{"out/*.tmp"}, ExpireIn: "1 week"}).
		Artifacts(gitlab.ArtifactSpec{Name: "junit", Paths: []string{"report.xml"}, Type: "junit", Format: gitlab.FormatGzip, When: gitlab.ArtifactsAlways}).
		Artifacts(gitlab.ArtifactSpec{Name: "failure-only", Paths: []string{"other/"}, When: gitlab.ArtifactsOnFailure}).
		Artifacts(gitlab.ArtifactSpec{Name: "nothing", Paths: []string{"missing/"}}))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s:\n%s", rec.State, rec.Trace)
	}
	if len(rec.Artifacts) != 2 {
		t.Fatalf("%d artifacts uploaded: %+v", len(rec.Artifacts), rec.Artifacts)
	}
	files, err := rec.Artifacts[0].ZipFiles()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	want := "extra/generated.txt,out/a.txt,out/sub/b.txt,top.log"
	if got := strings.Join(sortStrings(names), ","); got != want {
		t.Errorf("archive holds %s, want %s", got, want)
	}
	if a := rec.Artifacts[0]; a.ExpireIn != "1 week" || a.Filename != "out.zip" {
		t.Errorf("archive upload %s %q", a.Filename, a.ExpireIn)
	}
	if a := rec.Artifacts[1]; a.Format != "gzip" || a.Type != "junit" || a.Filename != "junit.gz" {
		t.Errorf("junit upload %+v", a)
	}
	if !strings.Contains(string(rec.Trace), "WARNING: nothing: no files to upload matched") {
		t.Errorf("trace lacks the warning for an empty match:\n%s", rec.Trace)
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestDependencies(t *testing.T) {
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		data, err := os.ReadFile(filepath.Join(job.BuildDir(), "dist", "app.bin"))
		if err != nil || string(data) != "binary" {
			return fmt.Errorf("extracted file: %q, %v", data, err)
		}
		deps := job.Dependencies()
		if len(deps) != 1 || deps[0].Name != "build" {
			return fmt.Errorf("deps = %+v", deps)
		}
		a, err := deps[0].Artifacts(ctx)
		if err != nil {
			return err
		}
		b, err := a.ReadFile("notes.txt")
		if err != nil {
			return err
		}
		job.Printf("notes: %s; files: %v", b, a.Files())
		return nil
	}), nil)
	build := h.srv.AddFinishedJob("build", gitlabtest.Zip(map[string]string{"dist/app.bin": "binary", "notes.txt": "hi"}))
	h.srv.FailNext(gitlabtest.EndpointDownload, 500, 2)
	id := h.srv.Enqueue(gitlabtest.NewJob("test").DependsOn(build))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateSuccess || !strings.Contains(string(rec.Trace), "notes: hi") {
		t.Fatalf("state %s:\n%s", rec.State, rec.Trace)
	}
	downloads := 0
	for _, r := range h.srv.Requests() {
		if r.Endpoint == gitlabtest.EndpointDownload {
			downloads++
		}
	}
	if downloads != 3 { // two failures, then one download reused by the handler
		t.Errorf("%d download requests, want 3", downloads)
	}
}

func TestHostileDependency(t *testing.T) {
	outside := t.TempDir()
	h := newHarness(t, stepFunc(func(context.Context, *engine.Job, []string, engine.Phase) error {
		return errors.New("the script must not run")
	}), nil)
	evil := gitlabtest.Zip(map[string]string{"../../../../../../" + outside + "/pwned": "x"})
	dep := h.srv.AddFinishedJob("evil", evil)
	id := h.srv.Enqueue(gitlabtest.NewJob("victim").DependsOn(dep))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.RunnerSystemFailure {
		t.Errorf("state %s reason %s", rec.State, rec.FailureReason)
	}
	if !strings.Contains(string(rec.Trace), "extracting artifacts of evil") {
		t.Errorf("trace:\n%s", rec.Trace)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("files written outside: %v", ents)
	}
}

// blocker is a step that waits for its context and reports how it ended.
func blocker(started chan<- int64, ended chan<- error) engine.HandlerFactory {
	return func(_ context.Context, job *engine.Job) (engine.Handler, error) {
		return &funcHandler{job: job, step: func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
			if phase == engine.AfterScript {
				v, _ := job.Variable("CI_JOB_STATUS")
				job.Printf("after_script ran with CI_JOB_STATUS=%s", v.Value)
				return nil
			}
			started <- job.ID()
			<-ctx.Done()
			if ended != nil {
				ended <- context.Cause(ctx)
			}
			return ctx.Err()
		}}, nil
	}
}

func TestCancel(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		t.Run(fmt.Sprint("graceful=", graceful), func(t *testing.T) {
			started := make(chan int64, 1)
			h := newHarness(t, blocker(started, nil), nil)
			id := h.srv.Enqueue(gitlabtest.NewJob("cancel").AfterScript("echo after"))
			h.start()
			<-started
			time.Sleep(60 * time.Millisecond) // the job prints nothing
			if graceful {
				h.srv.CancelGracefully(id)
			} else {
				h.srv.Cancel(id)
			}
			start := time.Now()
			rec := h.wait(id, gitlab.StateCanceled)
			waitFor(t, func() bool { return h.runner.Running() == 0 }, "job ended")
			if d := time.Since(start); d > time.Minute {
				t.Errorf("cancel noticed after %v", d)
			}
			tr := string(h.srv.Job(id).Trace)
			if graceful {
				if !strings.Contains(tr, "after_script ran with CI_JOB_STATUS=canceled") {
					t.Errorf("after_script did not run on graceful cancel:\n%s", tr)
				}
				if rec.FailureReason != gitlab.JobCanceled {
					t.Errorf("failure reason %s", rec.FailureReason)
				}
			} else if strings.Contains(tr, "after_script ran") {
				t.Errorf("after_script ran after a hard cancel:\n%s", tr)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	started := make(chan int64, 1)
	ended := make(chan error, 1)
	h := newHarness(t, blocker(started, ended), nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("slow").Timeout(time.Second).AfterScript("echo after"))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.JobExecutionTimeout {
		t.Errorf("state %s reason %s", rec.State, rec.FailureReason)
	}
	if err := <-ended; !errors.Is(err, engine.ErrTimeout) {
		t.Errorf("step context cause %v", err)
	}
	tr := string(rec.Trace)
	if !strings.Contains(tr, "execution took longer than 1s") || strings.Contains(tr, "after_script ran") {
		t.Errorf("trace:\n%s", tr)
	}
}

func TestFaultsDoNotLoseTheTrace(t *testing.T) {
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		for i := range 50 {
			job.Printf("line %d", i)
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}), nil)
	h.srv.DropNextPatches(2)
	h.srv.FailNext(gitlabtest.EndpointTrace, 502, 2)
	h.srv.ResetNext(gitlabtest.EndpointTrace, 1)
	h.srv.AcceptNextFinalUpdates(1)
	h.srv.FailNext(gitlabtest.EndpointUpdate, 500, 2)
	id := h.srv.Enqueue(gitlabtest.NewJob("faulty"))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s", rec.State)
	}
	tr := string(rec.Trace)
	for i := range 50 {
		if !strings.Contains(tr, fmt.Sprintf("line %d\n", i)) {
			t.Fatalf("line %d lost:\n%s", i, tr)
		}
	}
}

func TestShutdown(t *testing.T) {
	t.Run("graceful", func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan int64, 2)
		h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
			started <- job.ID()
			<-release
			return nil
		}), nil)
		a := h.srv.Enqueue(gitlabtest.NewJob("a"))
		b := h.srv.Enqueue(gitlabtest.NewJob("b"))
		h.start()
		<-started
		<-started
		late := h.srv.Enqueue(gitlabtest.NewJob("late"))
		done := make(chan error, 1)
		go func() { done <- h.runner.Shutdown(context.Background()) }()
		time.Sleep(50 * time.Millisecond)
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for _, id := range []int64{a, b} {
			if rec := h.srv.Job(id); rec.State != gitlab.StateSuccess {
				t.Errorf("job %d %s", id, rec.State)
			}
		}
		if rec := h.srv.Job(late); rec.State != gitlab.StatePending {
			t.Errorf("a job was taken while draining: %s", rec.State)
		}
	})
	t.Run("forced by timeout", func(t *testing.T) {
		started := make(chan int64, 2)
		h := newHarness(t, blocker(started, nil), nil)
		a := h.srv.Enqueue(gitlabtest.NewJob("a"))
		b := h.srv.Enqueue(gitlabtest.NewJob("b"))
		h.start()
		<-started
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := h.runner.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v", err)
		}
		for _, id := range []int64{a, b} {
			rec := h.srv.Job(id)
			if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.RunnerSystemFailure {
				t.Errorf("job %d %s %s", id, rec.State, rec.FailureReason)
			}
			if !strings.Contains(string(rec.Trace), "the runner is shutting down") {
				t.Errorf("trace:\n%s", rec.Trace)
			}
		}
	})
}

func TestStaleBuildDirIsReplaced(t *testing.T) {
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		if _, err := os.Stat(filepath.Join(job.BuildDir(), "stale.txt")); !os.IsNotExist(err) {
			return fmt.Errorf("stale file still there: %v", err)
		}
		return nil
	}), nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("stale"))
	stale := filepath.Join(h.cfg.BuildsDir, fmt.Sprint(id))
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(stale, "stale.txt"), []byte("old"), 0o644)
	h.start()
	if rec := h.wait(id); rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s:\n%s", rec.State, rec.Trace)
	}
}

// A handler that ignores its context cannot keep a job from being reported.
func TestStuckHandlerIsAbandoned(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		<-release // ignores ctx
		return nil
	}), func(c *engine.Config) { c.Process.Stop.Abandon = 100 * time.Millisecond })
	id := h.srv.Enqueue(gitlabtest.NewJob("stuck").Timeout(time.Second))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.JobExecutionTimeout {
		t.Errorf("state %s reason %s", rec.State, rec.FailureReason)
	}
	if !strings.Contains(string(rec.Trace), "the handler did not stop within 100ms") {
		t.Errorf("trace:\n%s", rec.Trace)
	}
}

// File variables reach the handler as paths to files holding their values,
// outside the build dir; masked contents stay masked in the log.
func TestFileVariables(t *testing.T) {
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		v, _ := job.Variable("KUBECONFIG")
		if !strings.HasPrefix(v.Value, job.FileVariablesDir()) || strings.HasPrefix(v.Value, job.BuildDir()) {
			return fmt.Errorf("KUBECONFIG = %q (dir %q)", v.Value, job.FileVariablesDir())
		}
		data, err := os.ReadFile(v.Value)
		if err != nil {
			return err
		}
		job.Printf("config: %s", data)
		return nil
	}), nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("files").Variable(gitlab.Variable{Key: "KUBECONFIG", Value: "apiVersion: v1 secret-token-123", File: true, Masked: true}))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateSuccess || !strings.Contains(string(rec.Trace), "config: [MASKED]") {
		t.Errorf("state %s:\n%s", rec.State, rec.Trace)
	}
}

func TestUnknownStepsAreReported(t *testing.T) {
	h := newHarness(t, stepFunc(nil), nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("release").Script("echo ok").
		Step(gitlab.Step{Name: "release", Script: []string{"release-cli create"}, When: gitlab.StepWhenOnSuccess}))
	h.start()
	rec := h.wait(id)
	if rec.State != gitlab.StateSuccess || !strings.Contains(string(rec.Trace), `WARNING: step "release" is not supported by wasmrunner; skipped`) {
		t.Errorf("state %s:\n%s", rec.State, rec.Trace)
	}
}
