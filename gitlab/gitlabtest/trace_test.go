package gitlabtest_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func TestTraceReplies(t *testing.T) {
	c := newTC(t, gitlabtest.WithTraceUpdateInterval(7*time.Second))
	id := c.s.Enqueue(gitlabtest.NewJob("t"))
	pending := c.s.Enqueue(gitlabtest.NewJob("p").DependsOn(id))
	j := c.mustJob()
	c.appendTrace(id, j.Token, 0, "hello\n") // stored size 6

	tests := []struct {
		name    string
		id      int64
		hdr     []string
		body    string
		status  int
		headers map[string]string
	}{
		{"unknown job", 4242, []string{"JOB-TOKEN", j.Token, "Content-Type", "text/plain", "Content-Range", "6-7"}, "ab", 404, nil},
		{"no token", id, []string{"Content-Type", "text/plain", "Content-Range", "6-7"}, "ab", 403, map[string]string{"Job-Status": ""}},
		{"wrong token", id, []string{"JOB-TOKEN", "glcbt-x", "Content-Type", "text/plain", "Content-Range", "6-7"}, "ab", 403, map[string]string{"Job-Status": ""}},
		{"pending job", pending, []string{"JOB-TOKEN", c.s.Job(pending).Token, "Content-Type", "text/plain", "Content-Range", "0-1"}, "ab", 403, map[string]string{"Job-Status": "pending"}},
		{"wrong content type", id, []string{"JOB-TOKEN", j.Token, "Content-Type", "application/octet-stream", "Content-Range", "6-7"}, "ab", 400, nil},
		{"no content range", id, []string{"JOB-TOKEN", j.Token, "Content-Type", "text/plain"}, "ab", 400, nil},
		{"range with unit", id, []string{"JOB-TOKEN", j.Token, "Content-Type", "text/plain", "Content-Range", "bytes 6-7/8"}, "ab", 400, nil},
		{"range garbage", id, []string{"JOB-TOKEN", j.Token, "Content-Type", "text/plain", "Content-Range", "6-x"}, "ab", 400, nil},
		{"range backwards", id, []string{"JOB-TOKEN", j.Token, "Content-Type", "text/plain", "Content-Range", "6-2"}, "ab", 400, nil},
		{"exclusive end", id, []string{"JOB-TOKEN", j.Token, "Content-Type", "text/plain", "Content-Range", "6-8"}, "ab", 400, nil},
		{"start behind", id, []string{"JOB-TOKEN", j.Token, "Content-Type", "text/plain", "Content-Range", "0-1"}, "ab", 416, map[string]string{"Range": "0-6"}},
		{"start ahead", id, []string{"JOB-TOKEN", j.Token, "Content-Type", "text/plain", "Content-Range", "10-11"}, "ab", 416, map[string]string{"Range": "0-6"}},
		{"accepted", id, []string{"JOB-TOKEN", j.Token, "Content-Type", "text/plain; charset=utf-8", "Content-Range", "6-7"}, "ab", 202,
			map[string]string{"Range": "0-8", "Job-Status": "running", "X-GitLab-Trace-Update-Interval": "7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(http.MethodPatch, "/api/v4/jobs/"+itoa(tt.id)+"/trace", strings.NewReader(tt.body), tt.hdr...)
			wantStatus(t, tt.name, r, tt.status)
			for k, v := range tt.headers {
				wantHeader(t, tt.name, r, k, v)
			}
			if tt.status >= 400 {
				wantHeader(t, tt.name, r, "Content-Type", "application/json")
				_ = r.message(t)
			}
		})
	}
	rec := c.s.Job(id)
	if string(rec.Trace) != "hello\nab" || len(rec.Patches) != 2 ||
		rec.Patches[1].Offset != 6 || string(rec.Patches[1].Data) != "ab" || rec.Patches[1].ContentRange != "6-7" {
		t.Errorf("trace %q patches %+v", rec.Trace, rec.Patches)
	}
	if v := c.s.Violations(); len(v) != 0 {
		t.Errorf("violations %q", v)
	}
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }

func TestTraceViolations(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("t"))
	j := c.mustJob()
	// An empty Content-Type is a 400 and a violation.
	r := c.do(http.MethodPatch, "/api/v4/jobs/"+itoa(id)+"/trace", strings.NewReader("ab"),
		"JOB-TOKEN", j.Token, "Content-Range", "0-1", "Content-Type", "")
	wantStatus(t, "no content type", r, 400)
	// An empty patch is accepted, and a violation.
	r = c.patch(id, j.Token, "0--1", "")
	wantStatus(t, "empty patch", r, 202)
	wantHeader(t, "empty patch", r, "Range", "0-0")
	c.appendTrace(id, j.Token, 0, "abc")
	wantStatus(t, "empty patch later", c.patch(id, j.Token, "3-2", ""), 202)
	v := c.s.Violations()
	if len(v) != 3 || !strings.Contains(v[0], "Content-Type") || !strings.Contains(v[1], "empty trace patch") {
		t.Errorf("violations %q", v)
	}
	if string(c.s.Job(id).Trace) != "abc" {
		t.Errorf("trace %q", c.s.Job(id).Trace)
	}
}

func TestUpdateReplies(t *testing.T) {
	c := newTC(t, gitlabtest.WithTraceUpdateInterval(0))
	id := c.s.Enqueue(gitlabtest.NewJob("u").FailureReasons("script_failure"))
	j := c.mustJob()
	c.appendTrace(id, j.Token, 0, "log")
	okSum := checksum("log")
	tests := []struct {
		name    string
		id      int64
		body    string
		status  int
		headers map[string]string
	}{
		{"malformed", id, `{"token":`, 400, nil},
		{"unknown job", 999, `{"token":"` + j.Token + `","state":"running"}`, 404, nil},
		{"wrong token", id, `{"token":"glcbt-no","state":"running"}`, 403, map[string]string{"Job-Status": ""}},
		{"keep-alive", id, `{"token":"` + j.Token + `","state":"running"}`, 200, map[string]string{"Job-Status": "running", "X-GitLab-Trace-Update-Interval": "1"}},
		{"bad state", id, `{"token":"` + j.Token + `","state":"canceled"}`, 400, nil},
		{"no state", id, `{"token":"` + j.Token + `"}`, 400, nil},
		{"unknown failure reason", id, `{"token":"` + j.Token + `","state":"failed","failure_reason":"cosmic_rays"}`, 400, nil},
		{"bad checksum", id, `{"token":"` + j.Token + `","state":"success","checksum":"crc32:00000000"}`, 412, nil},
		{"bad output checksum", id, `{"token":"` + j.Token + `","state":"success","output":{"checksum":"crc32:00000001","bytesize":3}}`, 412, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(http.MethodPut, "/api/v4/jobs/"+itoa(tt.id), strings.NewReader(tt.body), "Content-Type", "application/json")
			wantStatus(t, tt.name, r, tt.status)
			for k, v := range tt.headers {
				wantHeader(t, tt.name, r, k, v)
			}
			if r.Status == 412 {
				// GitLab dropped the trace: the runner resends it from 0.
				wantStatus(t, "resend", c.patch(id, j.Token, "0-2", "log"), 202)
			}
		})
	}
	// Wrong bytesize with a correct checksum is a 412 too.
	r := c.put(id, gitlab.UpdateJobRequest{Token: j.Token, State: gitlab.StateSuccess, Output: &gitlab.JobOutput{Checksum: okSum, Bytesize: 2}})
	wantStatus(t, "bad bytesize", r, 412)
	if len(c.s.Job(id).Trace) != 0 {
		t.Fatalf("trace kept after 412")
	}
	c.appendTrace(id, j.Token, 0, "log")
	// failed with a known reason that is not in features.failure_reasons:
	// accepted, but a violation.
	r = c.put(id, gitlab.UpdateJobRequest{Token: j.Token, State: gitlab.StateFailed, FailureReason: gitlab.RunnerUnsupported, ExitCode: 3,
		Checksum: okSum, Output: &gitlab.JobOutput{Checksum: okSum, Bytesize: 3}})
	wantStatus(t, "final", r, 200)
	rec := c.s.Job(id)
	if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.RunnerUnsupported || rec.ExitCode != 3 || string(rec.Trace) != "log" {
		t.Errorf("record %+v", rec)
	}
	if len(rec.Updates) != len(tests)-2+2 { // every decoded body for this job
		t.Errorf("%d updates recorded", len(rec.Updates))
	}
	if v := c.s.Violations(); len(v) != 1 || !strings.Contains(v[0], "runner_unsupported") {
		t.Errorf("violations %q", v)
	}
	// The job is over: 403 naming its state, for PUT and PATCH alike.
	r = c.put(id, gitlab.UpdateJobRequest{Token: j.Token, State: gitlab.StateRunning})
	wantStatus(t, "after finish", r, 403)
	wantHeader(t, "after finish", r, "Job-Status", "failed")
	r = c.patch(id, j.Token, "3-3", "x")
	wantStatus(t, "patch after finish", r, 403)
	wantHeader(t, "patch after finish", r, "Job-Status", "failed")
}

func TestFinishStates(t *testing.T) {
	c := newTC(t)
	ok := c.s.Enqueue(gitlabtest.NewJob("ok"))
	bad := c.s.Enqueue(gitlabtest.NewJob("bad"))
	jok, jbad := c.mustJob(), c.mustJob()
	c.appendTrace(ok, jok.Token, 0, "fine")
	wantStatus(t, "success", c.finish(ok, jok.Token, gitlab.StateSuccess, "fine"), 200)
	// No checksum at all: nothing to validate.
	wantStatus(t, "failed", c.put(bad, gitlab.UpdateJobRequest{Token: jbad.Token, State: gitlab.StateFailed}), 200)
	if rec := c.s.Job(ok); rec.State != gitlab.StateSuccess || rec.FailureReason != "" {
		t.Errorf("ok %+v", rec.State)
	}
	if rec := c.s.Job(bad); rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.UnknownFailure {
		t.Errorf("bad %s %s", rec.State, rec.FailureReason)
	}
}

func TestGracefulCancel(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("g").AfterScript("cleanup"))
	j := c.mustJob()
	c.appendTrace(id, j.Token, 0, "a")
	c.s.CancelGracefully(id)
	if st := c.s.Job(id).State; st != gitlab.StateCanceling {
		t.Fatalf("state %s", st)
	}
	r := c.appendTrace(id, j.Token, 1, "b")
	wantHeader(t, "patch", r, "Job-Status", "canceling")
	r = c.put(id, gitlab.UpdateJobRequest{Token: j.Token, State: gitlab.StateRunning})
	wantStatus(t, "keep-alive", r, 200)
	wantHeader(t, "keep-alive", r, "Job-Status", "canceling")
	wantStatus(t, "upload while canceling", c.upload(id, j.Token, "", "a.zip", makeZip(t, map[string]string{"f": "x"})), 201)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.s.WaitForState(ctx, id, gitlab.StateCanceled)
		done <- err
	}()
	r = c.put(id, gitlab.UpdateJobRequest{Token: j.Token, State: gitlab.StateFailed, FailureReason: gitlab.JobCanceled, Checksum: checksum("ab")})
	wantStatus(t, "final", r, 200)
	wantHeader(t, "final", r, "Job-Status", "canceled")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Pending jobs are canceled at once; finished ones left alone.
	p := c.s.Enqueue(gitlabtest.NewJob("p"))
	c.s.CancelGracefully(p)
	c.s.CancelGracefully(id)
	if c.s.Job(p).State != gitlab.StateCanceled || c.s.Job(id).State != gitlab.StateCanceled {
		t.Errorf("states %s %s", c.s.Job(p).State, c.s.Job(id).State)
	}
	wantStatus(t, "no job", c.requestJob(), 204)
}

func TestHardCancel(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("h"))
	j := c.mustJob()
	c.s.Cancel(id)
	if st := c.s.Job(id).State; st != gitlab.StateCanceled {
		t.Fatalf("state %s", st)
	}
	// GitLab: the token still identifies the job, which is not running.
	for name, r := range map[string]resp{
		"patch":  c.patch(id, j.Token, "0-0", "x"),
		"put":    c.put(id, gitlab.UpdateJobRequest{Token: j.Token, State: gitlab.StateRunning}),
		"final":  c.finish(id, j.Token, gitlab.StateSuccess, ""),
		"upload": c.upload(id, j.Token, "", "a.zip", makeZip(t, nil)),
	} {
		wantStatus(t, name, r, 403)
		wantHeader(t, name, r, "Job-Status", "canceled")
	}
	if c.s.Job(id).State != gitlab.StateCanceled {
		t.Errorf("final update changed a canceled job")
	}
	// Cancel of a pending job; of a finished one does nothing.
	p := c.s.Enqueue(gitlabtest.NewJob("p"))
	c.s.Cancel(p)
	if c.s.Job(p).State != gitlab.StateCanceled {
		t.Errorf("pending not canceled")
	}
	f := c.s.AddFinishedJob("f", nil)
	c.s.Cancel(f)
	if c.s.Job(f).State != gitlab.StateSuccess {
		t.Errorf("finished job changed")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("Cancel of an unknown job did not panic")
		}
	}()
	c.s.Cancel(1)
}
