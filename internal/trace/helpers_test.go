package trace_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/syncbuf"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/trace"
)

// Intervals of the tests: fast, and capped below the fake's 1 s minimum.
const (
	testInterval    = 20 * time.Millisecond
	testMinInterval = 10 * time.Millisecond
	testMaxInterval = 40 * time.Millisecond
)

// fastRetry keeps the client's own retries short.
var fastRetry = gitlab.RetryPolicy{
	MaxAttempts:     4,
	MaxElapsed:      5 * time.Second,
	InitialInterval: time.Millisecond,
	MaxInterval:     10 * time.Millisecond,
	AttemptTimeout:  10 * time.Second,
}

// env is a fake GitLab with one running job and a real client for it.
type env struct {
	srv    *gitlabtest.Server
	client *gitlab.Client
	id     int64
	token  string
}

func newEnv(tb testing.TB, opts ...gitlabtest.Option) *env {
	tb.Helper()
	e, closeEnv := openEnv(tb, opts...)
	tb.Cleanup(closeEnv)
	return e
}

// openEnv is newEnv for callers that close the env themselves.
func openEnv(tb testing.TB, opts ...gitlabtest.Option) (*env, func()) {
	tb.Helper()
	srv := gitlabtest.NewServer(opts...)
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	closeEnv := func() {
		srv.Close()
		tr.CloseIdleConnections()
	}
	client, err := gitlab.New(srv.URL, gitlab.WithHTTPClient(&http.Client{Transport: tr}), gitlab.WithRetryPolicy(fastRetry))
	if err != nil {
		closeEnv()
		tb.Fatal(err)
	}
	srv.Enqueue(gitlabtest.NewJob("trace"))
	res, err := client.RequestJob(context.Background(), gitlab.JobRequest{
		Token: srv.RunnerToken,
		Info:  gitlab.RunnerMeta{Name: "trace-test", Features: gitlab.DefaultFeatures()},
	})
	if err != nil || res.Job == nil {
		closeEnv()
		tb.Fatalf("request job: %v (job %v)", err, res.Job)
	}
	return &env{srv: srv, client: client, id: res.Job.ID, token: res.Job.Token}, closeEnv
}

// config is a fast configuration for the env's job.
func (e *env) config() trace.Config {
	return trace.Config{
		JobID:          e.id,
		Token:          e.token,
		UpdateInterval: testInterval,
		MinInterval:    testMinInterval,
		MaxInterval:    testMaxInterval,
		KeepAlive:      testInterval,
	}
}

// start creates and starts a trace; cleanup stops it if the test did not
// finish it.
func (e *env) start(t *testing.T, cfg trace.Config) *trace.Trace {
	t.Helper()
	tr := trace.New(e.client, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		_ = tr.Finish(ctx, trace.Final{State: gitlab.StateFailed})
	})
	tr.Start(ctx)
	return tr
}

// requests returns the logged requests to ep.
func (e *env) requests(ep gitlabtest.Endpoint) []gitlabtest.Request {
	var out []gitlabtest.Request
	for _, r := range e.srv.Requests() {
		if r.Endpoint == ep {
			out = append(out, r)
		}
	}
	return out
}

// finalUpdates returns the job's final updates (state success or failed).
func finalUpdates(rec gitlabtest.JobRecord) []gitlab.UpdateJobRequest {
	var out []gitlab.UpdateJobRequest
	for _, u := range rec.Updates {
		if u.State != gitlab.StateRunning {
			out = append(out, u)
		}
	}
	return out
}

// checkFinished checks that GitLab holds exactly want, finished in state,
// with the right checksum and size, and saw no protocol violations.
func (e *env) checkFinished(t *testing.T, want []byte, state gitlab.JobState) gitlabtest.JobRecord {
	t.Helper()
	rec := e.srv.Job(e.id)
	if !bytes.Equal(rec.Trace, want) {
		t.Errorf("GitLab's trace (%d bytes) differs from the written one (%d bytes)\n got %.200q\nwant %.200q",
			len(rec.Trace), len(want), rec.Trace, want)
	}
	if rec.State != state {
		t.Errorf("job state %s, want %s", rec.State, state)
	}
	finals := finalUpdates(rec)
	if len(finals) == 0 {
		t.Fatal("no final update")
	}
	last := finals[len(finals)-1]
	wantOut := gitlab.NewJobOutput(crcOf(want), int64(len(want)))
	if last.Output == nil || *last.Output != *wantOut || last.Checksum != wantOut.Checksum {
		t.Errorf("final update output %+v checksum %q, want %+v", last.Output, last.Checksum, wantOut)
	}
	var joined []byte
	for _, p := range rec.Patches {
		if len(p.Data) > gitlab.MaxPatchSize {
			t.Errorf("patch at %d has %d bytes, more than %d", p.Offset, len(p.Data), gitlab.MaxPatchSize)
		}
		if p.Offset == 0 {
			joined = joined[:0]
		}
		joined = append(joined, p.Data...)
	}
	if !bytes.Equal(joined, want) {
		t.Errorf("patches since the last reset join to %d bytes, want %d", len(joined), len(want))
	}
	if v := e.srv.Violations(); len(v) != 0 {
		t.Errorf("protocol violations: %q", v)
	}
	return rec
}

// eventually polls cond until it holds, failing the test after a minute
// (a generous bound: a loaded machine must not make the test flake).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after a minute waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// statusRecorder collects OnStatus calls.
type statusRecorder struct {
	mu     sync.Mutex
	states []gitlab.JobState
	ch     chan gitlab.JobState
}

func newStatusRecorder() *statusRecorder {
	return &statusRecorder{ch: make(chan gitlab.JobState, 16)}
}

func (r *statusRecorder) OnStatus(s gitlab.JobState) {
	r.mu.Lock()
	r.states = append(r.states, s)
	r.mu.Unlock()
	r.ch <- s
}

func (r *statusRecorder) all() []gitlab.JobState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gitlab.JobState(nil), r.states...)
}

// wait returns the next reported state, or fails after a minute.
func (r *statusRecorder) wait(t *testing.T) gitlab.JobState {
	t.Helper()
	select {
	case s := <-r.ch:
		return s
	case <-time.After(time.Minute):
		t.Fatalf("no job status reported within a minute")
		return ""
	}
}

// logBuffer is a logger whose output the test can read.
type logBuffer struct{ syncbuf.Buffer }

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// senders counts the goroutines running a trace's sender loop.
func senders() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		// The sender is a timer: a goroutine exists only while a tick
		// runs.
		if strings.Contains(g, "internal/trace.(*Trace).fire(") {
			n++
		}
	}
	return n
}

// waitNoSenders fails when ticks are still running.
func waitNoSenders(t *testing.T) {
	t.Helper()
	eventually(t, "sender goroutines to exit", func() bool { return senders() == 0 })
}

// stubClient is a Client without a network, for the tests of logic alone.
type stubClient struct {
	mu      sync.Mutex
	patches int
	updates []gitlab.UpdateJobRequest
	patch   func(offset int64, content []byte) (gitlab.PatchResult, error)
	update  func(req gitlab.UpdateJobRequest) (gitlab.UpdateResult, error)
}

func (c *stubClient) PatchTrace(_ context.Context, _ int64, _ string, offset int64, content []byte) (gitlab.PatchResult, error) {
	c.mu.Lock()
	c.patches++
	f := c.patch
	c.mu.Unlock()
	if f == nil {
		return gitlab.PatchResult{Accepted: true, Offset: offset + int64(len(content))}, nil
	}
	return f(offset, content)
}

func (c *stubClient) UpdateJob(_ context.Context, _ int64, req gitlab.UpdateJobRequest) (gitlab.UpdateResult, error) {
	c.mu.Lock()
	c.updates = append(c.updates, req)
	f := c.update
	c.mu.Unlock()
	if f == nil {
		return gitlab.UpdateResult{StatusCode: http.StatusOK}, nil
	}
	return f(req)
}

func (c *stubClient) counts() (patches, updates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.patches, len(c.updates)
}
