// End-to-end tests of the labsubmit example handler (labsubmit/, a Go
// guest built with examples/go-handler/build.sh), written with the test
// kit (handlertest): real jobs through the engine, the modules registry and
// a fake GitLab, against a fake lab service. The handler's unit tests,
// through the SDK's fake host, are in labsubmit/handler_test.go.
package gohandler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/handlertest"
	"github.com/wasmrunner/wasmrunner/internal/runnertest"
)

// start runs labsubmit.wasm (built by build.sh) with manifest through the
// engine against a fake GitLab until the test ends. The compiled module
// stays in handlertest's cache: compiling this 4 MB guest takes a second
// (over ten with -race), loading it from the cache a few milliseconds.
func start(t *testing.T, manifest string) *handlertest.Runner {
	t.Helper()
	return handlertest.Load(t, "labsubmit.wasm", handlertest.Manifest(manifest))
}

// The fake lab service. A submitted job's input decides what it does:
// "fail ..." fails, "hang ..." never ends, anything else succeeds. It
// writes one log line per logStep.
const logStep = 100 * time.Millisecond

var (
	okLog   = []string{"lab: unpacking the submission", "lab: building", "lab: running 12 tests", "lab: 12 passed"}
	failLog = []string{"lab: unpacking the submission", "lab: building", "lab: test_io FAILED"}
	hangLog = []string{"lab: waiting for a free machine"}
)

type remoteJob struct {
	id      string
	input   []byte
	started time.Time
	lines   []string // its log
	end     string   // its status after its log: done, failed, or "" (never ends)
	deleted time.Time
	polls   int
}

// status returns the job's status and the log written so far.
func (j *remoteJob) status(now time.Time) (string, []byte) {
	if !j.deleted.IsZero() {
		return "canceled", logOf(j.lines[:min(len(j.lines), int(j.deleted.Sub(j.started)/logStep))])
	}
	n := int(now.Sub(j.started) / logStep)
	if n <= len(j.lines) || j.end == "" {
		return "running", logOf(j.lines[:min(n, len(j.lines))])
	}
	return j.end, logOf(j.lines)
}

func logOf(lines []string) []byte {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.Bytes()
}

type lab struct {
	*httptest.Server
	mu   sync.Mutex
	jobs map[string]*remoteJob
	seq  int
}

func newLab(t testing.TB) *lab {
	l := &lab{jobs: map[string]*remoteJob{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /jobs", func(w http.ResponseWriter, r *http.Request) {
		input, err := io.ReadAll(r.Body)
		if err != nil || len(input) == 0 {
			http.Error(w, "empty submission", http.StatusBadRequest)
			return
		}
		l.mu.Lock()
		l.seq++
		j := &remoteJob{id: "lab-" + strconv.Itoa(l.seq), input: input, started: time.Now(), lines: okLog, end: "done"}
		switch {
		case bytes.HasPrefix(input, []byte("fail")):
			j.lines, j.end = failLog, "failed"
		case bytes.HasPrefix(input, []byte("hang")):
			j.lines, j.end = hangLog, ""
		}
		l.jobs[j.id] = j
		l.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"id": j.id})
	})
	mux.HandleFunc("GET /jobs/{id}", l.withJob(func(w http.ResponseWriter, r *http.Request, j *remoteJob) {
		j.polls++
		st, _ := j.status(time.Now())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"id": j.id, "status": st})
	}))
	mux.HandleFunc("GET /jobs/{id}/log", l.withJob(func(w http.ResponseWriter, r *http.Request, j *remoteJob) {
		_, log := j.status(time.Now())
		off, err := strconv.Atoi(r.URL.Query().Get("offset"))
		if err != nil || off < 0 || off > len(log) {
			http.Error(w, "bad offset", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(log[off:])
	}))
	mux.HandleFunc("GET /jobs/{id}/result", l.withJob(func(w http.ResponseWriter, r *http.Request, j *remoteJob) {
		if st, _ := j.status(time.Now()); st != "done" {
			http.Error(w, "job is "+st, http.StatusConflict)
			return
		}
		_, _ = w.Write(resultOf(j.input))
	}))
	mux.HandleFunc("DELETE /jobs/{id}", l.withJob(func(w http.ResponseWriter, r *http.Request, j *remoteJob) {
		if j.deleted.IsZero() {
			j.deleted = time.Now()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	l.Server = httptest.NewServer(mux)
	t.Cleanup(l.Close)
	return l
}

func (l *lab) withJob(fn func(http.ResponseWriter, *http.Request, *remoteJob)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		defer l.mu.Unlock()
		j, ok := l.jobs[r.PathValue("id")]
		if !ok {
			http.Error(w, "no such job", http.StatusNotFound)
			return
		}
		fn(w, r, j)
	}
}

// job returns a copy of the remote job whose input is input, if submitted.
func (l *lab) job(input string) (remoteJob, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range l.jobs {
		if string(j.input) == input {
			return *j, true
		}
	}
	return remoteJob{}, false
}

// deletedWithin reports whether the remote job whose input is input is
// cancelled within d of since, waiting for it as long.
func (l *lab) deletedWithin(input string, since time.Time, d time.Duration) bool {
	for {
		if j, ok := l.job(input); ok && !j.deleted.IsZero() {
			return j.deleted.Sub(since) <= d
		}
		if time.Since(since) > d {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func resultOf(input []byte) []byte {
	return []byte(fmt.Sprintf("package built from %d bytes: %q\n", len(input), input))
}

// host returns the lab's host:port for a manifest.
func (l *lab) host(t testing.TB) string {
	u, err := url.Parse(l.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// submission returns a labsubmit job whose build dir holds pkg/input.txt
// (from a dependency's artifacts) with the given content.
func submission(l *lab, input string, script ...string) handlertest.Job {
	return handlertest.Job{
		Name:         "lab",
		Script:       script,
		Variables:    []handlertest.Variable{handlertest.Var("LAB_URL", l.URL+"/")},
		Dependencies: []handlertest.Dependency{{Name: "prepare", Files: map[string]string{"pkg/input.txt": input}}},
	}
}

func run(t *testing.T, r *handlertest.Runner, job handlertest.Job) *handlertest.Result {
	t.Helper()
	res, err := r.Run(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// inOrder reports whether s contains each of parts, in order.
func inOrder(s string, parts ...string) bool {
	for _, p := range parts {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// waitFor polls cond until it holds, failing the test after a minute (a
// generous bound: a loaded machine must not make the test flake).
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

// TestLabsubmit runs labsubmit jobs against the fake lab; the subtests
// share one registry (compiling a Go guest takes about a second).
func TestLabsubmit(t *testing.T) {
	l := newLab(t)
	r := start(t, fmt.Sprintf("[http]\nallow = [%q]\n", l.host(t)))
	for _, m := range r.Registry().Modules() {
		t.Logf("module %s compiled in %v", m.Name, m.CompileTime)
	}

	t.Run("remote job succeeds", func(t *testing.T) {
		t.Parallel()
		input := "ok: source package 1.0"
		res := run(t, r, submission(l, input, "submit pkg/input.txt", "wait", "fetch out/result.txt"))
		tr := res.Log
		if res.State != gitlab.StateSuccess {
			t.Fatalf("state %s (%s, exit %d):\n%s", res.State, res.FailureReason, res.ExitCode, tr)
		}
		if !inOrder(tr, append(append([]string{"submitted pkg/input.txt (22 bytes) as job lab-"}, okLog...), "is done", "fetched the result")...) {
			t.Errorf("trace lacks the remote log in order:\n%s", tr)
		}
		if n := strings.Count(tr, okLog[0]); n != 1 {
			t.Errorf("remote log line printed %d times:\n%s", n, tr)
		}
		if len(res.Artifacts) != 1 || !bytes.Equal(res.Artifacts["out/result.txt"], resultOf([]byte(input))) {
			t.Errorf("artifact files %q", res.Artifacts)
		}
		if j, _ := l.job(input); !j.deleted.IsZero() {
			t.Error("a finished remote job was cancelled")
		}
	})

	t.Run("remote job fails", func(t *testing.T) {
		t.Parallel()
		input := "fail: broken package"
		res := run(t, r, submission(l, input, "submit pkg/input.txt", "wait", "fetch out/result.txt"))
		tr := res.Log
		if res.State != gitlab.StateFailed || res.FailureReason != gitlab.ScriptFailure || res.ExitCode != 1 {
			t.Errorf("state %s reason %s exit %d, want failed script_failure 1", res.State, res.FailureReason, res.ExitCode)
		}
		if !inOrder(tr, append(failLog, "failed")...) || strings.Contains(tr, "fetched") {
			t.Errorf("trace:\n%s", tr)
		}
		if len(res.Artifacts) != 0 {
			t.Errorf("artifacts of a failed job: %d", len(res.Artifacts))
		}
	})

	t.Run("canceled job cancels the remote job", func(t *testing.T) {
		t.Parallel()
		input := "hang: needs hardware that never comes"
		j := r.Start(submission(l, input, "submit pkg/input.txt", "wait"))
		waitFor(t, func() bool { j, ok := l.job(input); return ok && j.polls >= 2 }, "the handler polls the remote job")
		canceled := time.Now()
		j.Cancel()
		if res, err := j.Wait(t.Context()); err != nil || res.State != gitlab.StateCanceled {
			t.Errorf("%v %v", res, err)
		}
		waitFor(t, func() bool { return r.Engine().Running() == 0 }, "the job's handler returns")
		if d := time.Since(canceled); d > time.Minute {
			t.Errorf("the job ended %v after the cancel", d)
		}
		// After a hard cancel the step's host calls end at once, but the
		// handler's Cleanup has host calls of its own: it cancels the
		// remote job there.
		if !l.deletedWithin(input, canceled, time.Minute) {
			t.Error("the remote job was not cancelled")
		}
	})

	t.Run("gracefully canceled job cancels the remote job", func(t *testing.T) {
		t.Parallel()
		input := "hang: waits for a graceful cancel"
		job := submission(l, input, "submit pkg/input.txt", "wait")
		job.AfterScript = []string{"noop"}
		j := r.Start(job)
		if err := j.WaitLog(t.Context(), hangLog[0]); err != nil {
			t.Fatal(err)
		}
		canceled := time.Now()
		j.CancelGracefully()
		if !l.deletedWithin(input, canceled, time.Minute) {
			t.Errorf("the lab received no DELETE within a minute of the cancel")
		}
		res, err := j.Wait(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if res.State != gitlab.StateCanceled || !inOrder(res.Log, hangLog[0], "canceling job lab-", "ok\n") {
			t.Errorf("state %s:\n%s", res.State, res.Log)
		}
	})

	t.Run("commands", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			script []string
			state  gitlab.JobState
			exit   int
			trace  string
		}{
			{[]string{"noop"}, gitlab.StateSuccess, 0, "ok\n"},
			{[]string{"noop", "deploy prod"}, gitlab.StateFailed, 127, `unknown command "deploy"`},
			{[]string{"wait"}, gitlab.StateFailed, 1, "nothing submitted"},
			{[]string{"submit pkg/missing.txt"}, gitlab.StateFailed, 1, "open pkg/missing.txt: No such file or directory"},
		}
		for _, tt := range tests {
			res := run(t, r, submission(l, "ok", tt.script...))
			if res.State != tt.state || res.ExitCode != tt.exit || !strings.Contains(res.Log, tt.trace) {
				t.Errorf("%q: state %s exit %d, want %s %d with %q:\n%s", tt.script, res.State, res.ExitCode, tt.state, tt.exit, tt.trace, res.Log)
			}
		}
	})
}

// TestLabsubmitNeedsManifest: without a manifest the handler may not reach
// the lab.
func TestLabsubmitNeedsManifest(t *testing.T) {
	l := newLab(t)
	r := start(t, "")
	res := run(t, r, submission(l, "ok", "submit pkg/input.txt"))
	if res.State != gitlab.StateFailed || !strings.Contains(res.Log, "wasmrunner: denied") {
		t.Errorf("state %s:\n%s", res.State, res.Log)
	}
	if _, ok := l.job("ok"); ok {
		t.Error("the lab received a submission")
	}
}

// BenchmarkGoGuestJob measures the cost of one-line jobs ("noop") run by
// the Go guest through the engine, the registry and a fake GitLab, at
// concurrency 1 and 8, its jobs starting from the handler's snapshot (the
// default) or each initializing its instance ([start] snapshot = false).
func BenchmarkGoGuestJob(b *testing.B) {
	wasm := runnertest.Module(b, "labsubmit.wasm", "bash examples/go-handler/build.sh")
	dir := runnertest.ModulesDir(b, map[string][]byte{"labsubmit": wasm, "initialize": wasm},
		map[string]string{"initialize": "[start]\nsnapshot = false\n"})
	reg, err := modules.Open(context.Background(), modules.Config{Dir: dir, CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close(context.Background())
	for _, image := range []string{"labsubmit", "initialize"} {
		for _, concurrency := range []int{1, 8} {
			name := "snapshot"
			if image == "initialize" {
				name = "initialize"
			}
			b.Run(name+"/c"+strconv.Itoa(concurrency), func(b *testing.B) {
				runnertest.BenchJobs(b, concurrency, reg.Factory(), func() *gitlabtest.JobBuilder {
					return gitlabtest.NewJob("noop").Image(image).Script("noop")
				})
			})
		}
	}
}
