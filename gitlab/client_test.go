package gitlab_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/syncbuf"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// fastRetry keeps retries quick in tests.
var fastRetry = gitlab.RetryPolicy{
	MaxAttempts:     4,
	MaxElapsed:      10 * time.Second,
	InitialInterval: time.Millisecond,
	MaxInterval:     10 * time.Millisecond,
	AttemptTimeout:  5 * time.Second,
}

type env struct {
	srv    *gitlabtest.Server
	client *gitlab.Client
	log    *syncbuf.Buffer
}

func newEnv(t *testing.T, opts ...gitlabtest.Option) *env {
	t.Helper()
	srv := gitlabtest.NewServer(opts...)
	t.Cleanup(srv.Close)
	log := &syncbuf.Buffer{}
	c, err := gitlab.New(srv.URL,
		gitlab.WithRetryPolicy(fastRetry),
		gitlab.WithLogger(slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, client: c, log: log}
	t.Cleanup(func() {
		// No token may ever reach the operator log.
		e.noLeak(t, errors.New(log.String()))
	})
	return e
}

// noLeak fails the test if err mentions any token the fake knows.
func (e *env) noLeak(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	secrets := []string{e.srv.RunnerToken, e.srv.RegistrationToken(), e.srv.AccessToken()}
	for _, j := range e.srv.Jobs() {
		secrets = append(secrets, j.Token)
		for _, v := range j.Payload.Variables {
			if v.Masked {
				secrets = append(secrets, v.Value)
			}
		}
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("a token leaked into %q", err)
		}
	}
}

func (e *env) runnerRequest() gitlab.JobRequest {
	return gitlab.JobRequest{
		Token:    e.srv.RunnerToken,
		SystemID: "s_0123456789ab",
		Info: gitlab.RunnerMeta{
			Name: "wasmrunner", Version: "test", Platform: "linux", Architecture: "amd64",
			Executor: "wasm", Features: gitlab.DefaultFeatures(),
		},
	}
}

// startJob enqueues a job and takes it as the runner.
func (e *env) startJob(t *testing.T, b *gitlabtest.JobBuilder) *gitlab.Job {
	t.Helper()
	id := e.srv.Enqueue(b)
	res, err := e.client.RequestJob(context.Background(), e.runnerRequest())
	if err != nil {
		t.Fatal(err)
	}
	if res.Job == nil || res.Job.ID != id {
		t.Fatalf("got job %+v, want %d", res.Job, id)
	}
	return res.Job
}

func (e *env) countRequests(ep gitlabtest.Endpoint) int {
	n := 0
	for _, r := range e.srv.Requests() {
		if r.Endpoint == ep {
			n++
		}
	}
	return n
}

func TestRequestJob(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(e *env) gitlab.JobRequest
		wantJob  bool
		wantErr  error
		requests int
	}{
		{
			name:     "201 job",
			setup:    func(e *env) gitlab.JobRequest { e.srv.Enqueue(gitlabtest.NewJob("a")); return e.runnerRequest() },
			wantJob:  true,
			requests: 1,
		},
		{
			name:     "204 no job",
			setup:    func(e *env) gitlab.JobRequest { return e.runnerRequest() },
			requests: 1,
		},
		{
			name: "403 bad runner token",
			setup: func(e *env) gitlab.JobRequest {
				r := e.runnerRequest()
				r.Token = "glrt-not-a-valid-token"
				return r
			},
			wantErr:  gitlab.ErrForbidden,
			requests: 1,
		},
		{
			name: "409 conflict is reported, not retried",
			setup: func(e *env) gitlab.JobRequest {
				e.srv.FailNext(gitlabtest.EndpointRequestJob, 409, 1)
				return e.runnerRequest()
			},
			wantErr:  gitlab.ErrConflict,
			requests: 1,
		},
		{
			name: "5xx retried then job",
			setup: func(e *env) gitlab.JobRequest {
				e.srv.Enqueue(gitlabtest.NewJob("a"))
				e.srv.FailNext(gitlabtest.EndpointRequestJob, 500, 1)
				e.srv.FailNext(gitlabtest.EndpointRequestJob, 502, 1)
				return e.runnerRequest()
			},
			wantJob:  true,
			requests: 3,
		},
		{
			name: "503 until retries run out",
			setup: func(e *env) gitlab.JobRequest {
				e.srv.FailNext(gitlabtest.EndpointRequestJob, 503, 10)
				return e.runnerRequest()
			},
			wantErr:  gitlab.ErrServer,
			requests: fastRetry.MaxAttempts,
		},
		{
			name: "408 and 429 retried",
			setup: func(e *env) gitlab.JobRequest {
				e.srv.FailNext(gitlabtest.EndpointRequestJob, 408, 1)
				e.srv.FailNextRetryAfter(gitlabtest.EndpointRequestJob, 429, time.Second, 1)
				return e.runnerRequest()
			},
			requests: 3,
		},
		{
			name: "connection reset retried",
			setup: func(e *env) gitlab.JobRequest {
				e.srv.Enqueue(gitlabtest.NewJob("a"))
				e.srv.ResetNext(gitlabtest.EndpointRequestJob, 2)
				return e.runnerRequest()
			},
			wantJob:  true,
			requests: 3,
		},
		{
			name: "connection resets until retries run out",
			setup: func(e *env) gitlab.JobRequest {
				e.srv.ResetNext(gitlabtest.EndpointRequestJob, 10)
				return e.runnerRequest()
			},
			wantErr:  gitlab.ErrTransport,
			requests: fastRetry.MaxAttempts,
		},
		{
			name: "malformed payload",
			setup: func(e *env) gitlab.JobRequest {
				e.srv.Enqueue(gitlabtest.NewJob("a").RawJSON([]byte(`{"id": "not a number", "token": "glcbt-zzzzzzzzzzzz"}`)))
				return e.runnerRequest()
			},
			wantErr:  gitlab.ErrBadPayload,
			requests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			req := tt.setup(e)
			start := time.Now()
			res, err := e.client.RequestJob(context.Background(), req)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			e.noLeak(t, err)
			if (res.Job != nil) != tt.wantJob {
				t.Errorf("job = %+v, want job: %v", res.Job, tt.wantJob)
			}
			if got := e.countRequests(gitlabtest.EndpointRequestJob); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			if tt.name == "408 and 429 retried" && time.Since(start) < time.Second {
				t.Errorf("Retry-After: 1 not honoured (took %v)", time.Since(start))
			}
			if err == nil && res.LastUpdate == "" {
				t.Error("no X-GitLab-Last-Update reported")
			}
		})
	}
}

func TestRequestJobSendsRunnerInfoAndEchoesLastUpdate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	res, err := e.client.RequestJob(ctx, e.runnerRequest())
	if err != nil {
		t.Fatal(err)
	}
	got := e.srv.LastJobRequest()
	if got.SystemID != "s_0123456789ab" || got.Info.Executor != "wasm" || !got.Info.Features.Refspecs ||
		!got.Info.Features.Masking || !got.Info.Features.TraceChecksum || got.Info.Features.Services {
		t.Errorf("request body = %+v", got)
	}
	req := e.runnerRequest()
	req.LastUpdate = res.LastUpdate
	if _, err := e.client.RequestJob(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.LastJobRequest().LastUpdate; got != res.LastUpdate {
		t.Errorf("last_update = %q, want %q", got, res.LastUpdate)
	}
}

func TestRequestJobLongPoll(t *testing.T) {
	e := newEnv(t, gitlabtest.WithLongPoll(5*time.Second))
	go func() {
		time.Sleep(50 * time.Millisecond)
		e.srv.Enqueue(gitlabtest.NewJob("late"))
	}()
	res, err := e.client.RequestJob(context.Background(), e.runnerRequest())
	if err != nil || res.Job == nil || res.Job.JobInfo.Name != "late" {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
}

func TestRequestJobPayload(t *testing.T) {
	e := newEnv(t)
	job := e.startJob(t, gitlabtest.NewJob("build").Stage("compile").
		Var("GREETING", "hi").MaskedVar("PASSWORD", "p4ssw0rd-long").
		Script("echo one", "echo two").AfterScript("echo after").
		Image("shell").Timeout(90*time.Second).
		Artifacts(gitlab.ArtifactSpec{Name: "out", Paths: []string{"out/"}, Exclude: []string{"out/*.tmp"}, When: gitlab.ArtifactsAlways}))
	if job.JobInfo.Name != "build" || job.JobInfo.Stage != "compile" || job.Image.Name != "shell" || job.Timeout() != 90*time.Second {
		t.Errorf("job = %+v", job)
	}
	if v, ok := job.Variables.Get("PASSWORD"); !ok || !v.Masked || v.Value != "p4ssw0rd-long" {
		t.Errorf("PASSWORD = %+v", v)
	}
	for _, k := range []string{"CI", "GITLAB_CI", "CI_JOB_ID", "CI_JOB_TOKEN", "CI_PROJECT_ID", "CI_SERVER_URL", "CI_COMMIT_SHA"} {
		if _, ok := job.Variables.Get(k); !ok {
			t.Errorf("predefined variable %s missing", k)
		}
	}
	if s, _ := job.Step(gitlab.StepScript); strings.Join(s.Script, ";") != "echo one;echo two" {
		t.Errorf("script = %+v", s)
	}
	if s, _ := job.Step(gitlab.StepAfterScript); s.When != gitlab.StepWhenAlways || s.Script[0] != "echo after" {
		t.Errorf("after_script = %+v", s)
	}
	if a := job.Artifacts[0]; a.When != gitlab.ArtifactsAlways || a.Exclude[0] != "out/*.tmp" || a.Format != gitlab.FormatZip {
		t.Errorf("artifacts = %+v", a)
	}
}

func TestPatchTrace(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		act        func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error)
		want       gitlab.PatchResult
		wantErr    error
		wantTrace  string
		checkRange bool
	}{
		{
			name: "202 accepted",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				return e.client.PatchTrace(ctx, job.ID, job.Token, 0, []byte("hello\n"))
			},
			want:      gitlab.PatchResult{Accepted: true, Offset: 6, UpdateInterval: 7 * time.Second, JobStatus: gitlab.StateRunning},
			wantTrace: "hello\n",
		},
		{
			name: "contiguous patches",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				if _, err := e.client.PatchTrace(ctx, job.ID, job.Token, 0, []byte("ab")); err != nil {
					t.Fatal(err)
				}
				return e.client.PatchTrace(ctx, job.ID, job.Token, 2, []byte("cd"))
			},
			want:      gitlab.PatchResult{Accepted: true, Offset: 4, UpdateInterval: 7 * time.Second, JobStatus: gitlab.StateRunning},
			wantTrace: "abcd",
		},
		{
			name: "416 reports where to resume",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				if _, err := e.client.PatchTrace(ctx, job.ID, job.Token, 0, []byte("abc")); err != nil {
					t.Fatal(err)
				}
				return e.client.PatchTrace(ctx, job.ID, job.Token, 10, []byte("xyz"))
			},
			want:      gitlab.PatchResult{Accepted: false, Offset: 3},
			wantTrace: "abc",
		},
		{
			name: "dropped patch shows up as 416 on the next one",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				e.srv.DropNextPatches(1)
				if _, err := e.client.PatchTrace(ctx, job.ID, job.Token, 0, []byte("lost")); err != nil {
					t.Fatal(err)
				}
				return e.client.PatchTrace(ctx, job.ID, job.Token, 4, []byte("next"))
			},
			want:      gitlab.PatchResult{Accepted: false, Offset: 0},
			wantTrace: "",
		},
		{
			name: "canceling is reported",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				e.srv.CancelGracefully(job.ID)
				return e.client.PatchTrace(ctx, job.ID, job.Token, 0, []byte("x"))
			},
			want:      gitlab.PatchResult{Accepted: true, Offset: 1, UpdateInterval: 7 * time.Second, JobStatus: gitlab.StateCanceling},
			wantTrace: "x",
		},
		{
			name: "403 canceled job",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				e.srv.Cancel(job.ID)
				return e.client.PatchTrace(ctx, job.ID, job.Token, 0, []byte("x"))
			},
			want:    gitlab.PatchResult{JobStatus: gitlab.StateCanceled},
			wantErr: gitlab.ErrForbidden,
		},
		{
			name: "403 wrong job token",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				return e.client.PatchTrace(ctx, job.ID, "glcbt-wrongwrongwrong", 0, []byte("x"))
			},
			wantErr: gitlab.ErrForbidden,
		},
		{
			name: "404 unknown job",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				return e.client.PatchTrace(ctx, 999999, job.Token, 0, []byte("x"))
			},
			wantErr: gitlab.ErrNotFound,
		},
		{
			name: "5xx and resets retried",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				e.srv.FailNext(gitlabtest.EndpointTrace, 503, 1)
				e.srv.ResetNext(gitlabtest.EndpointTrace, 1)
				return e.client.PatchTrace(ctx, job.ID, job.Token, 0, []byte("ok"))
			},
			want:      gitlab.PatchResult{Accepted: true, Offset: 2, UpdateInterval: 7 * time.Second, JobStatus: gitlab.StateRunning},
			wantTrace: "ok",
		},
		{
			name: "empty content sends nothing",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.PatchResult, error) {
				return e.client.PatchTrace(ctx, job.ID, job.Token, 0, nil)
			},
			want: gitlab.PatchResult{Accepted: true, Offset: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gitlabtest.WithTraceUpdateInterval(7*time.Second))
			job := e.startJob(t, gitlabtest.NewJob("trace"))
			got, err := tt.act(t, e, job)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			e.noLeak(t, err)
			if got != tt.want {
				t.Errorf("result = %+v, want %+v", got, tt.want)
			}
			if tr := string(e.srv.Job(job.ID).Trace); tr != tt.wantTrace {
				t.Errorf("stored trace = %q, want %q", tr, tt.wantTrace)
			}
			if v := e.srv.Violations(); len(v) > 0 {
				t.Errorf("protocol violations: %q", v)
			}
		})
	}
}

func TestPatchTraceHeaders(t *testing.T) {
	e := newEnv(t)
	job := e.startJob(t, gitlabtest.NewJob("h"))
	if _, err := e.client.PatchTrace(context.Background(), job.ID, job.Token, 0, []byte("12345")); err != nil {
		t.Fatal(err)
	}
	p := e.srv.Job(job.ID).Patches
	if len(p) != 1 || p[0].ContentRange != "0-4" || p[0].Offset != 0 || string(p[0].Data) != "12345" {
		t.Errorf("patches = %+v", p)
	}
	if _, err := e.client.PatchTrace(context.Background(), job.ID, job.Token, 0, make([]byte, gitlab.MaxPatchSize+1)); err == nil {
		t.Error("an oversize patch was accepted")
	}
}

func TestUpdateJob(t *testing.T) {
	ctx := context.Background()
	trace := []byte("line one\nline two\n")
	final := func(job *gitlab.Job, state gitlab.JobState) gitlab.UpdateJobRequest {
		return gitlab.UpdateJobRequest{Token: job.Token, State: state, Output: &gitlab.JobOutput{Checksum: gitlab.ChecksumOf(trace), Bytesize: int64(len(trace))}}
	}
	tests := []struct {
		name      string
		act       func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error)
		wantCode  int
		wantErr   error
		wantState gitlab.JobState
	}{
		{
			name: "keep-alive",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				return e.client.UpdateJob(ctx, job.ID, gitlab.UpdateJobRequest{Token: job.Token, State: gitlab.StateRunning})
			},
			wantCode: 200, wantState: gitlab.StateRunning,
		},
		{
			name: "success",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				return e.client.UpdateJob(ctx, job.ID, final(job, gitlab.StateSuccess))
			},
			wantCode: 200, wantState: gitlab.StateSuccess,
		},
		{
			name: "failed with reason and exit code",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				r := final(job, gitlab.StateFailed)
				r.FailureReason, r.ExitCode = gitlab.ScriptFailure, 3
				res, err := e.client.UpdateJob(ctx, job.ID, r)
				if rec := e.srv.Job(job.ID); rec.FailureReason != gitlab.ScriptFailure || rec.ExitCode != 3 {
					t.Errorf("record = %+v", rec)
				}
				return res, err
			},
			wantCode: 200, wantState: gitlab.StateFailed,
		},
		{
			name: "412 checksum mismatch",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				r := final(job, gitlab.StateSuccess)
				r.Output = gitlab.NewJobOutput(12345, int64(len(trace)))
				return e.client.UpdateJob(ctx, job.ID, r)
			},
			wantCode: 412, wantState: gitlab.StateRunning,
		},
		{
			name: "412 size mismatch",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				r := final(job, gitlab.StateSuccess)
				r.Output.Bytesize++
				return e.client.UpdateJob(ctx, job.ID, r)
			},
			wantCode: 412, wantState: gitlab.StateRunning,
		},
		{
			name: "202 then 200",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				e.srv.AcceptNextFinalUpdates(1)
				res, err := e.client.UpdateJob(ctx, job.ID, final(job, gitlab.StateSuccess))
				if err != nil || !res.Pending() || res.UpdateInterval != 2*time.Second {
					t.Fatalf("first = %+v, %v", res, err)
				}
				return e.client.UpdateJob(ctx, job.ID, final(job, gitlab.StateSuccess))
			},
			wantCode: 200, wantState: gitlab.StateSuccess,
		},
		{
			name: "graceful cancel ends canceled",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				e.srv.CancelGracefully(job.ID)
				res, err := e.client.UpdateJob(ctx, job.ID, gitlab.UpdateJobRequest{Token: job.Token, State: gitlab.StateRunning})
				if err != nil || res.JobStatus != gitlab.StateCanceling {
					t.Fatalf("keep-alive = %+v, %v", res, err)
				}
				r := final(job, gitlab.StateFailed)
				r.FailureReason = gitlab.JobCanceled
				return e.client.UpdateJob(ctx, job.ID, r)
			},
			wantCode: 200, wantState: gitlab.StateCanceled,
		},
		{
			name: "403 after the job ended",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				if _, err := e.client.UpdateJob(ctx, job.ID, final(job, gitlab.StateSuccess)); err != nil {
					t.Fatal(err)
				}
				return e.client.UpdateJob(ctx, job.ID, final(job, gitlab.StateSuccess))
			},
			wantCode: 403, wantErr: gitlab.ErrForbidden, wantState: gitlab.StateSuccess,
		},
		{
			name: "403 canceled job",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				e.srv.Cancel(job.ID)
				res, err := e.client.UpdateJob(ctx, job.ID, final(job, gitlab.StateSuccess))
				if !gitlab.JobGone(err) || res.JobStatus != gitlab.StateCanceled {
					t.Errorf("JobGone = %v, status %q", gitlab.JobGone(err), res.JobStatus)
				}
				return res, err
			},
			wantCode: 403, wantErr: gitlab.ErrForbidden, wantState: gitlab.StateCanceled,
		},
		{
			name: "404 unknown job",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				return e.client.UpdateJob(ctx, 424242, final(job, gitlab.StateSuccess))
			},
			wantCode: 404, wantErr: gitlab.ErrNotFound, wantState: gitlab.StateRunning,
		},
		{
			name: "5xx and resets retried",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				e.srv.FailNext(gitlabtest.EndpointUpdate, 500, 2)
				e.srv.ResetNext(gitlabtest.EndpointUpdate, 1)
				return e.client.UpdateJob(ctx, job.ID, final(job, gitlab.StateSuccess))
			},
			wantCode: 200, wantState: gitlab.StateSuccess,
		},
		{
			name: "400 unknown failure reason",
			act: func(t *testing.T, e *env, job *gitlab.Job) (gitlab.UpdateResult, error) {
				r := final(job, gitlab.StateFailed)
				r.FailureReason = "made_up_reason"
				return e.client.UpdateJob(ctx, job.ID, r)
			},
			wantCode: 400, wantErr: gitlab.ErrUnexpectedReply, wantState: gitlab.StateRunning,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, gitlabtest.WithTraceUpdateInterval(2*time.Second))
			job := e.startJob(t, gitlabtest.NewJob("update"))
			if _, err := e.client.PatchTrace(ctx, job.ID, job.Token, 0, trace); err != nil {
				t.Fatal(err)
			}
			res, err := tt.act(t, e, job)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			e.noLeak(t, err)
			var se *gitlab.StatusError
			code := res.StatusCode
			if errors.As(err, &se) {
				code = se.StatusCode
			}
			if code != tt.wantCode {
				t.Errorf("status = %d, want %d", code, tt.wantCode)
			}
			if st := e.srv.Job(job.ID).State; st != tt.wantState {
				t.Errorf("state = %s, want %s", st, tt.wantState)
			}
		})
	}
}

func TestUpdateJobSendsChecksum(t *testing.T) {
	e := newEnv(t)
	job := e.startJob(t, gitlabtest.NewJob("sum"))
	out := gitlab.NewJobOutput(0xdeadbeef, 9)
	// The fake answers 412 (the trace is empty); what matters is the body.
	if _, err := e.client.UpdateJob(context.Background(), job.ID, gitlab.UpdateJobRequest{Token: job.Token, State: gitlab.StateSuccess, Output: out}); err != nil {
		t.Fatal(err)
	}
	u := e.srv.Job(job.ID).Updates
	if len(u) != 1 || u[0].Checksum != "crc32:deadbeef" || u[0].Output == nil || u[0].Output.Checksum != "crc32:deadbeef" || u[0].Output.Bytesize != 9 {
		t.Errorf("updates = %+v", u)
	}
}

func TestUploadArtifact(t *testing.T) {
	ctx := context.Background()
	archive := gitlabtest.Zip(map[string]string{"out/a.txt": "alpha", "out/b.txt": "beta"})
	tests := []struct {
		name     string
		opts     []gitlabtest.Option
		act      func(t *testing.T, e *env, job *gitlab.Job) error
		wantErr  error
		uploads  int
		requests int
	}{
		{
			name: "201 stored",
			act: func(t *testing.T, e *env, job *gitlab.Job) error {
				return e.client.UploadArtifact(ctx, job.ID, job.Token, gitlab.ArtifactUpload{Name: "out", ExpireIn: "1 day"}, bytes.NewReader(archive), int64(len(archive)))
			},
			uploads: 1, requests: 1,
		},
		{
			name: "307 followed",
			act: func(t *testing.T, e *env, job *gitlab.Job) error {
				e.srv.RedirectNextUploads(1)
				return e.client.UploadArtifact(ctx, job.ID, job.Token, gitlab.ArtifactUpload{Name: "out", ExpireIn: "1 day"}, bytes.NewReader(archive), int64(len(archive)))
			},
			uploads: 1, requests: 2,
		},
		{
			name: "5xx and resets retried with the whole body",
			act: func(t *testing.T, e *env, job *gitlab.Job) error {
				e.srv.FailNext(gitlabtest.EndpointUpload, 502, 1)
				e.srv.ResetNext(gitlabtest.EndpointUpload, 1)
				return e.client.UploadArtifact(ctx, job.ID, job.Token, gitlab.ArtifactUpload{Name: "out", ExpireIn: "1 day"}, bytes.NewReader(archive), int64(len(archive)))
			},
			uploads: 1, requests: 3,
		},
		{
			name: "413 final",
			opts: []gitlabtest.Option{gitlabtest.WithMaxArtifactSize(100)},
			act: func(t *testing.T, e *env, job *gitlab.Job) error {
				return e.client.UploadArtifact(ctx, job.ID, job.Token, gitlab.ArtifactUpload{Name: "out"}, bytes.NewReader(archive), int64(len(archive)))
			},
			wantErr: gitlab.ErrTooLarge, requests: 1,
		},
		{
			name: "403 final",
			act: func(t *testing.T, e *env, job *gitlab.Job) error {
				return e.client.UploadArtifact(ctx, job.ID, "glcbt-wrongwrongwrong", gitlab.ArtifactUpload{Name: "out"}, bytes.NewReader(archive), int64(len(archive)))
			},
			wantErr: gitlab.ErrForbidden, requests: 1,
		},
		{
			name: "broken zip rejected",
			act: func(t *testing.T, e *env, job *gitlab.Job) error {
				junk := []byte("this is not a zip archive")
				return e.client.UploadArtifact(ctx, job.ID, job.Token, gitlab.ArtifactUpload{Name: "out"}, bytes.NewReader(junk), int64(len(junk)))
			},
			wantErr: gitlab.ErrUnexpectedReply, requests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			job := e.startJob(t, gitlabtest.NewJob("upload"))
			err := tt.act(t, e, job)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			e.noLeak(t, err)
			if got := e.countRequests(gitlabtest.EndpointUpload); got != tt.requests {
				t.Errorf("%d upload requests, want %d", got, tt.requests)
			}
			arts := e.srv.Job(job.ID).Artifacts
			if len(arts) != tt.uploads {
				t.Fatalf("%d artifacts stored, want %d", len(arts), tt.uploads)
			}
			if tt.uploads == 0 {
				return
			}
			a := arts[0]
			if a.Filename != "out.zip" || a.Format != "zip" || a.Type != "archive" || a.ExpireIn != "1 day" {
				t.Errorf("artifact = %s %s %s %q", a.Filename, a.Format, a.Type, a.ExpireIn)
			}
			files, err := a.ZipFiles()
			if err != nil || files["out/a.txt"] == nil || string(files["out/b.txt"]) != "beta" {
				t.Errorf("files = %v, %v", files, err)
			}
		})
	}
}

func TestUploadArtifactFormats(t *testing.T) {
	e := newEnv(t)
	job := e.startJob(t, gitlabtest.NewJob("junit"))
	data := []byte("\x1f\x8b gzip-ish report")
	err := e.client.UploadArtifact(context.Background(), job.ID, job.Token,
		gitlab.ArtifactUpload{Name: "junit", Format: gitlab.FormatGzip, Type: "junit"}, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	a := e.srv.Job(job.ID).Artifacts[0]
	if a.Filename != "junit.gz" || a.Format != "gzip" || a.Type != "junit" || !bytes.Equal(a.Data, data) {
		t.Errorf("artifact = %+v", a)
	}
}

func TestDownloadArtifact(t *testing.T) {
	ctx := context.Background()
	archive := gitlabtest.Zip(map[string]string{"dep.txt": "from the dependency"})
	tests := []struct {
		name    string
		opts    []gitlabtest.Option
		act     func(t *testing.T, e *env, job *gitlab.Job, dep gitlab.Dependency) ([]byte, error)
		wantErr error
	}{
		{
			name: "200",
			act: func(t *testing.T, e *env, job *gitlab.Job, dep gitlab.Dependency) ([]byte, error) {
				var buf bytes.Buffer
				_, err := e.client.DownloadArtifact(ctx, dep.ID, dep.Token, &buf)
				return buf.Bytes(), err
			},
		},
		{
			name: "redirect to storage without the token",
			opts: []gitlabtest.Option{gitlabtest.WithArtifactRedirect()},
			act: func(t *testing.T, e *env, job *gitlab.Job, dep gitlab.Dependency) ([]byte, error) {
				var buf bytes.Buffer
				_, err := e.client.DownloadArtifact(ctx, dep.ID, dep.Token, &buf)
				return buf.Bytes(), err
			},
		},
		{
			name: "5xx and resets retried",
			act: func(t *testing.T, e *env, job *gitlab.Job, dep gitlab.Dependency) ([]byte, error) {
				e.srv.FailNext(gitlabtest.EndpointDownload, 500, 1)
				e.srv.ResetNext(gitlabtest.EndpointDownload, 1)
				var buf bytes.Buffer
				_, err := e.client.DownloadArtifact(ctx, dep.ID, dep.Token, &buf)
				return buf.Bytes(), err
			},
		},
		{
			name: "to file",
			act: func(t *testing.T, e *env, job *gitlab.Job, dep gitlab.Dependency) ([]byte, error) {
				path := filepath.Join(t.TempDir(), "dep.zip")
				if _, err := e.client.DownloadArtifactToFile(ctx, dep.ID, dep.Token, path, 0); err != nil {
					return nil, err
				}
				return os.ReadFile(path)
			},
		},
		{
			name: "403 wrong token",
			act: func(t *testing.T, e *env, job *gitlab.Job, dep gitlab.Dependency) ([]byte, error) {
				_, err := e.client.DownloadArtifact(ctx, dep.ID, "glcbt-wrongwrongwrong", &bytes.Buffer{})
				return nil, err
			},
			wantErr: gitlab.ErrForbidden,
		},
		{
			name: "401 no token",
			act: func(t *testing.T, e *env, job *gitlab.Job, dep gitlab.Dependency) ([]byte, error) {
				_, err := e.client.DownloadArtifact(ctx, dep.ID, "", &bytes.Buffer{})
				return nil, err
			},
			wantErr: gitlab.ErrUnauthorized,
		},
		{
			name: "over the size limit leaves no file",
			act: func(t *testing.T, e *env, job *gitlab.Job, dep gitlab.Dependency) ([]byte, error) {
				dir := t.TempDir()
				_, err := e.client.DownloadArtifactToFile(ctx, dep.ID, dep.Token, filepath.Join(dir, "x.zip"), 10)
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("files left behind: %v", ents)
				}
				return nil, err
			},
			wantErr: gitlab.ErrTooLarge,
		},
		{
			name: "404 leaves no file",
			act: func(t *testing.T, e *env, job *gitlab.Job, dep gitlab.Dependency) ([]byte, error) {
				dir := t.TempDir()
				_, err := e.client.DownloadArtifactToFile(ctx, 987654, dep.Token, filepath.Join(dir, "x.zip"), 0)
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Errorf("files left behind: %v", ents)
				}
				return nil, err
			},
			wantErr: gitlab.ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts...)
			prep := e.srv.AddFinishedJob("prep", archive)
			job := e.startJob(t, gitlabtest.NewJob("consumer").DependsOn(prep))
			if len(job.Dependencies) != 1 || job.Dependencies[0].ArtifactsFile == nil {
				t.Fatalf("dependencies = %+v", job.Dependencies)
			}
			got, err := tt.act(t, e, job, job.Dependencies[0])
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			e.noLeak(t, err)
			if tt.wantErr == nil && !bytes.Equal(got, archive) {
				t.Errorf("downloaded %d bytes, want the %d-byte archive", len(got), len(archive))
			}
			if v := e.srv.Violations(); len(v) > 0 {
				t.Errorf("protocol violations: %q", v)
			}
		})
	}
}

func TestRunners(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		act     func(e *env) (gitlab.RunnerCredentials, error)
		wantErr error
		wantTok bool
	}{
		{"verify 200", func(e *env) (gitlab.RunnerCredentials, error) {
			return e.client.VerifyRunner(ctx, e.srv.RunnerToken, "s_0123456789ab")
		}, nil, false},
		{"verify 403", func(e *env) (gitlab.RunnerCredentials, error) {
			return e.client.VerifyRunner(ctx, "glrt-bogusbogusbogus", "")
		}, gitlab.ErrForbidden, false},
		{"verify 5xx retried", func(e *env) (gitlab.RunnerCredentials, error) {
			e.srv.FailNext(gitlabtest.EndpointVerify, 500, 2)
			return e.client.VerifyRunner(ctx, e.srv.RunnerToken, "")
		}, nil, false},
		{"register 201", func(e *env) (gitlab.RunnerCredentials, error) {
			return e.client.RegisterRunner(ctx, gitlab.RegisterRunnerRequest{Token: e.srv.RegistrationToken(), Description: "r1", TagList: "wasm,lab"})
		}, nil, true},
		{"register 403", func(e *env) (gitlab.RunnerCredentials, error) {
			return e.client.RegisterRunner(ctx, gitlab.RegisterRunnerRequest{Token: "GR1348941wrongwrong"})
		}, gitlab.ErrForbidden, false},
		{"register 503 retried", func(e *env) (gitlab.RunnerCredentials, error) {
			e.srv.FailNext(gitlabtest.EndpointRegister, 503, 1)
			return e.client.RegisterRunner(ctx, gitlab.RegisterRunnerRequest{Token: e.srv.RegistrationToken()})
		}, nil, true},
		{"register 500 not retried", func(e *env) (gitlab.RunnerCredentials, error) {
			e.srv.FailNext(gitlabtest.EndpointRegister, 500, 1)
			return e.client.RegisterRunner(ctx, gitlab.RegisterRunnerRequest{Token: e.srv.RegistrationToken()})
		}, gitlab.ErrServer, false},
		{"create 201", func(e *env) (gitlab.RunnerCredentials, error) {
			return e.client.CreateRunner(ctx, e.srv.AccessToken(), gitlab.CreateRunnerRequest{RunnerType: gitlab.InstanceRunner, Description: "r2"})
		}, nil, true},
		{"create 401", func(e *env) (gitlab.RunnerCredentials, error) {
			return e.client.CreateRunner(ctx, "glpat-nopenopenope", gitlab.CreateRunnerRequest{RunnerType: gitlab.InstanceRunner})
		}, gitlab.ErrUnauthorized, false},
		{"create 400", func(e *env) (gitlab.RunnerCredentials, error) {
			return e.client.CreateRunner(ctx, e.srv.AccessToken(), gitlab.CreateRunnerRequest{RunnerType: gitlab.ProjectRunner})
		}, gitlab.ErrUnexpectedReply, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			rc, err := tt.act(e)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			e.noLeak(t, err)
			if tt.wantTok {
				if !strings.HasPrefix(rc.Token, "glrt-") {
					t.Fatalf("token = %q", rc.Token)
				}
				// The new token works.
				if _, err := e.client.VerifyRunner(ctx, rc.Token, ""); err != nil {
					t.Errorf("verify new token: %v", err)
				}
			}
		})
	}
}

// TestContextCancelledMidRetry: a call in a retry wait returns promptly
// when its context ends, with the context error and the last failure.
func TestContextCancelledMidRetry(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	slow := gitlab.RetryPolicy{MaxAttempts: 10, MaxElapsed: time.Minute, InitialInterval: 5 * time.Second, MaxInterval: 5 * time.Second, AttemptTimeout: time.Minute}
	c, err := gitlab.New(srv.URL, gitlab.WithRetryPolicy(slow))
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(gitlabtest.EndpointRequestJob, 503, 100)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = c.RequestJob(ctx, gitlab.JobRequest{Token: srv.RunnerToken})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("err = %v, want the last failure mentioned", err)
	}
	if strings.Contains(err.Error(), srv.RunnerToken) {
		t.Errorf("token leaked: %v", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("took %v to stop", d)
	}

	// A slow reply is abandoned when the deadline passes.
	srv.DelayNext(gitlabtest.EndpointRequestJob, 30*time.Second, 1)
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.RequestJob(ctx, gitlab.JobRequest{Token: srv.RunnerToken})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
}

// TestRetryAfterCapsAtMaxElapsed: a Retry-After longer than the retry
// budget ends the call at once rather than sleeping past the budget.
func TestRetryAfterBeyondBudget(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	p := fastRetry
	p.MaxElapsed = 2 * time.Second
	c, _ := gitlab.New(srv.URL, gitlab.WithRetryPolicy(p))
	srv.FailNextRetryAfter(gitlabtest.EndpointRequestJob, 429, time.Hour, 1)
	start := time.Now()
	_, err := c.RequestJob(context.Background(), gitlab.JobRequest{Token: srv.RunnerToken})
	var se *gitlab.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusTooManyRequests || se.RetryAfter != time.Hour {
		t.Fatalf("err = %#v", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("waited %v for a Retry-After of an hour", d)
	}
}
