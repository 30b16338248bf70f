package gitlabtest_test

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func TestNewServerURL(t *testing.T) {
	c := newTC(t)
	if !strings.HasPrefix(c.s.URL, "http://127.0.0.1:") {
		t.Errorf("URL %q", c.s.URL)
	}
}

func TestLongPollWakesOnEnqueue(t *testing.T) {
	c := newTC(t, gitlabtest.WithLongPoll(10*time.Second))
	got := make(chan resp, 1)
	go func() {
		r, _ := c.try(http.MethodPost, "/api/v4/jobs/request", jsonBody(gitlab.JobRequest{Token: c.s.RunnerToken}), "Content-Type", "application/json")
		got <- r
	}()
	waitRequests(t, c.s, 1)
	id := c.s.Enqueue(gitlabtest.NewJob("late"))
	select {
	case r := <-got:
		wantStatus(t, "long poll", r, 201)
		if j, err := gitlab.DecodeJob(r.Body); err != nil || j.ID != id {
			t.Errorf("job %v %v", j, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("long poll not woken by Enqueue")
	}
}

func TestLongPollTimesOut(t *testing.T) {
	c := newTC(t, gitlabtest.WithLongPoll(60*time.Millisecond))
	start := time.Now()
	r := c.requestJob()
	wantStatus(t, "timeout", r, 204)
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("answered after %s", d)
	}
	if r.Header.Get("X-GitLab-Last-Update") == "" {
		t.Errorf("no X-GitLab-Last-Update")
	}
}

func TestLongPollWakesOnClose(t *testing.T) {
	c := newTC(t, gitlabtest.WithLongPoll(time.Hour))
	got := make(chan resp, 1)
	go func() {
		r, err := c.try(http.MethodPost, "/api/v4/jobs/request", jsonBody(gitlab.JobRequest{Token: c.s.RunnerToken}), "Content-Type", "application/json")
		if err != nil {
			t.Errorf("long poll: %v", err)
		}
		got <- r
	}()
	waitRequests(t, c.s, 1)
	closed := make(chan struct{})
	go func() {
		c.s.Close()
		close(closed)
	}()
	select {
	case r := <-got:
		wantStatus(t, "close", r, 204)
	case <-time.After(3 * time.Second):
		t.Fatal("long poll not woken by Close")
	}
	select {
	case <-closed:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hangs")
	}
	if _, err := c.try(http.MethodPost, "/api/v4/jobs/request", nil); err == nil {
		t.Errorf("server still answers after Close")
	}
}

func TestLongPollClientGone(t *testing.T) {
	c := newTC(t, gitlabtest.WithLongPoll(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.s.URL+"/api/v4/jobs/request",
			jsonBody(gitlab.JobRequest{Token: c.s.RunnerToken}))
		req.Header.Set("Content-Type", "application/json")
		res, err := c.hc.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	waitRequests(t, c.s, 1)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("no error for a canceled request")
	}
	// Once the server noticed, the job enqueued afterwards goes to the
	// next request, not the vanished one.
	deadline := time.Now().Add(2 * time.Second)
	for c.s.Requests()[0].Status == 0 {
		if time.Now().After(deadline) {
			t.Fatal("abandoned long poll still running")
		}
		time.Sleep(time.Millisecond)
	}
	id := c.s.Enqueue(gitlabtest.NewJob("j"))
	if j := c.mustJob(); j.ID != id {
		t.Fatalf("got job %d", j.ID)
	}
}

func TestWaitForState(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("w"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	rec, err := c.s.WaitForState(ctx, id, gitlab.StateSuccess)
	if !errors.Is(err, context.DeadlineExceeded) || rec.ID != id || rec.State != gitlab.StatePending {
		t.Errorf("timeout: %+v %v", rec.State, err)
	}
	if _, err := c.s.WaitForState(context.Background(), 5, gitlab.StateSuccess); err == nil {
		t.Errorf("unknown job: no error")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	got := make(chan error, 1)
	go func() {
		rec, err := c.s.WaitForState(ctx2, id, gitlab.StateSuccess, gitlab.StateFailed)
		if err == nil && rec.State != gitlab.StateFailed {
			err = errors.New("wrong state " + string(rec.State))
		}
		got <- err
	}()
	j := c.mustJob()
	wantStatus(t, "fail", c.put(id, gitlab.UpdateJobRequest{Token: j.Token, State: gitlab.StateFailed}), 200)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// Already there: at once.
	if rec, err := c.s.WaitForState(context.Background(), id, gitlab.StateFailed); err != nil || rec.State != gitlab.StateFailed {
		t.Errorf("%v %v", rec.State, err)
	}
	// Closing the server ends a wait.
	go func() { c.s.Close() }()
	if _, err := c.s.WaitForState(context.Background(), id, gitlab.StateSuccess); err == nil {
		t.Errorf("wait after Close: no error")
	}
}

func TestMalformedRequestsDoNotPanic(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("m"))
	j := c.mustJob()
	bodies := []string{"", "null", "{", "[]", `"str"`, "{}", `{"token":[]}`, "\x00\xff", strings.Repeat("[", 10000)}
	paths := []struct{ method, path string }{
		{"POST", "/api/v4/jobs/request"},
		{"PUT", "/api/v4/jobs/" + itoa(id)},
		{"PATCH", "/api/v4/jobs/" + itoa(id) + "/trace"},
		{"POST", "/api/v4/jobs/" + itoa(id) + "/artifacts"},
		{"GET", "/api/v4/jobs/" + itoa(id) + "/artifacts"},
		{"POST", "/api/v4/runners/verify"},
		{"POST", "/api/v4/runners"},
		{"POST", "/api/v4/user/runners"},
	}
	for _, p := range paths {
		for _, b := range bodies {
			for _, ct := range []string{"application/json", "multipart/form-data; boundary=x", "text/plain", "multipart/form-data", ";;"} {
				r := c.do(p.method, p.path, strings.NewReader(b), "Content-Type", ct, "JOB-TOKEN", j.Token,
					"Content-Range", "0-"+itoa(int64(len(b)-1)), "PRIVATE-TOKEN", c.s.AccessToken())
				if r.Status >= 500 || r.Status == 0 {
					t.Errorf("%s %s %q %q: %v", p.method, p.path, b, ct, r)
				}
			}
		}
	}
}

func TestConcurrentRequests(t *testing.T) {
	c := newTC(t)
	const n = 20
	for i := 0; i < n; i++ {
		c.s.Enqueue(gitlabtest.NewJob("c"))
	}
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := c.try(http.MethodPost, "/api/v4/jobs/request", jsonBody(gitlab.JobRequest{Token: c.s.RunnerToken}), "Content-Type", "application/json")
				if err != nil || r.Status != 201 {
					return
				}
				j, err := gitlab.DecodeJob(r.Body)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[j.ID]++
				mu.Unlock()
				data := "log of " + itoa(j.ID)
				cr := "0-" + itoa(int64(len(data)-1))
				if r, err := c.try(http.MethodPatch, "/api/v4/jobs/"+itoa(j.ID)+"/trace", strings.NewReader(data),
					"JOB-TOKEN", j.Token, "Content-Type", "text/plain", "Content-Range", cr); err != nil || r.Status != 202 {
					t.Errorf("patch: %v %v", r, err)
				}
				_ = c.s.Jobs()
				_ = c.s.Requests()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d jobs handed out, want %d", len(seen), n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("job %d handed out %d times", id, k)
		}
		if got := string(c.s.Job(id).Trace); got != "log of "+itoa(id) {
			t.Errorf("trace %q", got)
		}
	}
}

// TestCloseLeaksNothing is not parallel: it counts goroutines.
func TestCloseLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		s := gitlabtest.NewServer(gitlabtest.WithLongPoll(time.Hour))
		tr := &http.Transport{}
		hc := &http.Client{Transport: tr}
		s.Enqueue(gitlabtest.NewJob("x"))
		var wg sync.WaitGroup
		for k := 0; k < 3; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v4/jobs/request", jsonBody(gitlab.JobRequest{Token: s.RunnerToken}))
				if res, err := hc.Do(req); err == nil {
					res.Body.Close()
				}
			}()
		}
		s.DelayNext(gitlabtest.EndpointVerify, time.Hour, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v4/runners/verify", jsonBody(gitlab.VerifyRunnerRequest{Token: s.RunnerToken}))
			if res, err := hc.Do(req); err == nil {
				res.Body.Close()
			}
		}()
		waitRequests(t, s, 4)
		s.Close()
		s.Close()
		wg.Wait()
		tr.CloseIdleConnections()
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
