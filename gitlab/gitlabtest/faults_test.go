package gitlabtest_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func TestFailNext(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("f"))
	c.s.FailNext(gitlabtest.EndpointRequestJob, 503, 2)
	c.s.FailNextRetryAfter(gitlabtest.EndpointRequestJob, 429, 1500*time.Millisecond, 1)
	for i, want := range []int{503, 503, 429} {
		r := c.requestJob()
		wantStatus(t, "fault", r, want)
		if m := r.message(t); m != "fault injected" {
			t.Errorf("message %q", m)
		}
		if want == 429 {
			wantHeader(t, "retry-after", r, "Retry-After", "2")
		} else {
			wantHeader(t, "no retry-after", r, "Retry-After", "")
		}
		if c.s.Job(id).State != gitlab.StatePending {
			t.Fatalf("request %d acted on: job %s", i, c.s.Job(id).State)
		}
	}
	j := c.mustJob() // faults expired
	// Faults only hit their endpoint, in the order queued.
	c.s.FailNext(gitlabtest.EndpointUpdate, 409, 1)
	c.s.FailNext(gitlabtest.EndpointTrace, 500, 1)
	c.s.FailNext(gitlabtest.EndpointTrace, 502, 1)
	wantStatus(t, "trace 1", c.patch(id, j.Token, "0-0", "x"), 500)
	wantStatus(t, "trace 2", c.patch(id, j.Token, "0-0", "x"), 502)
	c.appendTrace(id, j.Token, 0, "x")
	wantStatus(t, "update", c.finish(id, j.Token, gitlab.StateSuccess, "x"), 409)
	if c.s.Job(id).State != gitlab.StateRunning {
		t.Fatalf("faulted update finished the job")
	}
	wantStatus(t, "update again", c.finish(id, j.Token, gitlab.StateSuccess, "x"), 200)

	var faults []string
	for _, r := range c.s.Requests() {
		if r.Fault != "" {
			faults = append(faults, string(r.Endpoint)+":"+r.Fault)
		}
	}
	want := []string{"request_job:status 503", "request_job:status 503", "request_job:status 429 retry-after 1.5s",
		"trace:status 500", "trace:status 502", "update:status 409"}
	if strings.Join(faults, ",") != strings.Join(want, ",") {
		t.Errorf("faults logged %q, want %q", faults, want)
	}
	// Times <= 0 queues nothing.
	c.s.FailNext(gitlabtest.EndpointVerify, 500, 0)
	wantStatus(t, "verify", c.postJSON("/api/v4/runners/verify", gitlab.VerifyRunnerRequest{Token: c.s.RunnerToken}), 200)
}

func TestDelayNext(t *testing.T) {
	c := newTC(t)
	c.s.DelayNext(gitlabtest.EndpointVerify, 80*time.Millisecond, 1)
	start := time.Now()
	wantStatus(t, "delayed", c.postJSON("/api/v4/runners/verify", gitlab.VerifyRunnerRequest{Token: c.s.RunnerToken}), 200)
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("answered after %s", d)
	}
	wantStatus(t, "not delayed", c.postJSON("/api/v4/runners/verify", gitlab.VerifyRunnerRequest{Token: c.s.RunnerToken}), 200)
	// The server's log says which request the fault hit (a time bound on
	// the second one would flake on a loaded machine).
	var faults []string
	for _, r := range c.s.Requests() {
		faults = append(faults, r.Fault)
	}
	if len(faults) != 2 || faults[0] == "" || faults[1] != "" {
		t.Errorf("faults per request %q, want the first delayed only", faults)
	}
	// A delay ends early when the server closes.
	c.s.DelayNext(gitlabtest.EndpointVerify, time.Hour, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.try(http.MethodPost, "/api/v4/runners/verify", jsonBody(gitlab.VerifyRunnerRequest{Token: c.s.RunnerToken}))
	}()
	waitRequests(t, c.s, 3)
	c.s.Close()
	<-done
}

// waitRequests waits until the server logged n requests.
func waitRequests(t *testing.T, s *gitlabtest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(s.Requests()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests arrived", len(s.Requests()))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestResetNext(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("r"))
	c.s.ResetNext(gitlabtest.EndpointRequestJob, 1)
	_, err := c.try(http.MethodPost, "/api/v4/jobs/request", jsonBody(gitlab.JobRequest{Token: c.s.RunnerToken}), "Content-Type", "application/json")
	if err == nil {
		t.Fatalf("no transport error")
	}
	if c.s.Job(id).State != gitlab.StatePending {
		t.Fatalf("reset request acted on")
	}
	log := c.s.Requests()
	if len(log) != 1 || log[0].Status != 0 || log[0].Fault != "reset" || log[0].Endpoint != gitlabtest.EndpointRequestJob {
		t.Errorf("log %+v", log)
	}
	c.mustJob()
}

func TestDropNextPatches(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("d"))
	j := c.mustJob()
	c.s.DropNextPatches(1)
	c.appendTrace(id, j.Token, 0, "one\n")
	r := c.appendTrace(id, j.Token, 0, "one\n") // the lost patch resent...
	wantHeader(t, "after drop", r, "Range", "0-4")
	c.s.DropNextPatches(1)
	r = c.appendTrace(id, j.Token, 4, "two\n")
	wantHeader(t, "dropped", r, "Range", "0-4") // unchanged size
	// The final update's checksum covers what the runner sent: 412.
	wantStatus(t, "final", c.finish(id, j.Token, gitlab.StateSuccess, "one\ntwo\n"), 412)
	c.appendTrace(id, j.Token, 0, "one\ntwo\n")
	wantStatus(t, "final again", c.finish(id, j.Token, gitlab.StateSuccess, "one\ntwo\n"), 200)
	rec := c.s.Job(id)
	if string(rec.Trace) != "one\ntwo\n" || len(rec.Patches) != 2 {
		t.Errorf("trace %q, %d patches", rec.Trace, len(rec.Patches))
	}
	var drops int
	for _, r := range c.s.Requests() {
		if r.Fault == "drop patch" {
			drops++
		}
	}
	if drops != 2 {
		t.Errorf("%d drops logged", drops)
	}
}

func TestAcceptNextFinalUpdates(t *testing.T) {
	c := newTC(t, gitlabtest.WithTraceUpdateInterval(2*time.Second))
	id := c.s.Enqueue(gitlabtest.NewJob("a"))
	j := c.mustJob()
	c.s.AcceptNextFinalUpdates(2)
	// Keep-alives are not final updates.
	wantStatus(t, "keep-alive", c.put(id, gitlab.UpdateJobRequest{Token: j.Token, State: gitlab.StateRunning}), 200)
	for i := 0; i < 2; i++ {
		r := c.finish(id, j.Token, gitlab.StateSuccess, "")
		wantStatus(t, "accepted", r, 202)
		wantHeader(t, "accepted", r, "X-GitLab-Trace-Update-Interval", "2")
		if c.s.Job(id).State != gitlab.StateRunning {
			t.Fatalf("202 finished the job")
		}
	}
	wantStatus(t, "done", c.finish(id, j.Token, gitlab.StateSuccess, ""), 200)
	if c.s.Job(id).State != gitlab.StateSuccess {
		t.Fatalf("state %s", c.s.Job(id).State)
	}
}

func TestRedirectNextUploads(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("u"))
	j := c.mustJob()
	c.s.RedirectNextUploads(1)
	zipData := makeZip(t, map[string]string{"a": "b"})
	r := c.upload(id, j.Token, "artifact_format=zip&artifact_type=archive", "a.zip", zipData)
	wantStatus(t, "redirect", r, 307)
	loc := r.Header.Get("Location")
	want := c.s.URL + "/api/v4/jobs/" + itoa(id) + "/artifacts?artifact_format=zip&artifact_type=archive&redirected=1"
	if loc != want {
		t.Fatalf("Location %q, want %q", loc, want)
	}
	if n := len(c.s.Job(id).Artifacts); n != 0 {
		t.Fatalf("redirected upload stored")
	}
	// A client following it (net/http does for replayable bodies) succeeds.
	body, ct := multipartBody("a.zip", zipData)
	data := body.(*bytes.Buffer).Bytes()
	c.s.RedirectNextUploads(1)
	req, _ := http.NewRequest(http.MethodPost, c.s.URL+"/api/v4/jobs/"+itoa(id)+"/artifacts", bytes.NewReader(data))
	req.Header.Set("JOB-TOKEN", j.Token)
	req.Header.Set("Content-Type", ct)
	res, err := (&http.Client{Transport: c.hc.Transport}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("followed upload: %d", res.StatusCode)
	}
	log := c.s.Requests()
	last := log[len(log)-1]
	if last.RawQuery != "redirected=1" || last.Status != 201 || log[len(log)-2].Fault != "redirect" {
		t.Errorf("log %+v", log[len(log)-2:])
	}
	if a := c.s.Job(id).Artifacts; len(a) != 1 {
		t.Errorf("%d artifacts", len(a))
	}
}

// TestDownUp: while down, every endpoint answers 503 and nothing
// changes; once up, the server goes on with the state it had.
func TestDownUp(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("d"))
	j := c.mustJob()
	c.appendTrace(id, j.Token, 0, "before\n")
	pending := c.s.Enqueue(gitlabtest.NewJob("waiting"))
	c.s.Down()
	for name, r := range map[string]resp{
		"request job": c.requestJob(),
		"trace":       c.patch(id, j.Token, "7-12", "after\n"),
		"update":      c.finish(id, j.Token, gitlab.StateSuccess, "before\nafter\n"),
		"verify":      c.postJSON("/api/v4/runners/verify", gitlab.VerifyRunnerRequest{Token: c.s.RunnerToken}),
		"unknown":     c.do(http.MethodGet, "/nothing/here", nil),
	} {
		wantStatus(t, name, r, 503)
	}
	if rec := c.s.Job(id); rec.State != gitlab.StateRunning || string(rec.Trace) != "before\n" || len(rec.Updates) != 0 {
		t.Fatalf("a request changed the job while down: %s %q %d updates", rec.State, rec.Trace, len(rec.Updates))
	}
	if c.s.Job(pending).State != gitlab.StatePending {
		t.Fatal("a job was handed out while down")
	}
	down := 0
	for _, r := range c.s.Requests() {
		if r.Fault == "down" && r.Status == 503 {
			down++
		}
	}
	if down != 5 {
		t.Errorf("%d requests logged as down, want 5", down)
	}
	c.s.Up()
	c.appendTrace(id, j.Token, 7, "after\n")
	wantStatus(t, "update", c.finish(id, j.Token, gitlab.StateSuccess, "before\nafter\n"), 200)
	if rec := c.s.Job(id); rec.State != gitlab.StateSuccess || string(rec.Trace) != "before\nafter\n" {
		t.Errorf("after Up: %s %q", rec.State, rec.Trace)
	}
}
