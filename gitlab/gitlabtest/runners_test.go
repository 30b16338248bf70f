package gitlabtest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func TestRunnerTokens(t *testing.T) {
	c := newTC(t, gitlabtest.WithRegistrationToken("GR1348941reg"), gitlabtest.WithAccessToken("glpat-access"))
	if !strings.HasPrefix(c.s.RunnerToken, "glrt-") || c.s.RegistrationToken() != "GR1348941reg" || c.s.AccessToken() != "glpat-access" {
		t.Fatalf("tokens %q %q %q", c.s.RunnerToken, c.s.RegistrationToken(), c.s.AccessToken())
	}
	d := gitlabtest.NewServer()
	defer d.Close()
	if !strings.HasPrefix(d.RegistrationToken(), "GR1348941") || len(d.RegistrationToken()) <= len("GR1348941") ||
		!strings.HasPrefix(d.AccessToken(), "glpat-") || d.RunnerToken == c.s.RunnerToken {
		t.Errorf("default tokens %q %q", d.RegistrationToken(), d.AccessToken())
	}
}

func TestVerify(t *testing.T) {
	c := newTC(t)
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"valid", `{"token":"` + c.s.RunnerToken + `","system_id":"s_0123456789ab"}`, 200},
		{"invalid", `{"token":"glrt-unknown"}`, 403},
		{"empty", `{}`, 403},
		{"malformed", `{"token":1}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.do(http.MethodPost, "/api/v4/runners/verify", strings.NewReader(tt.body), "Content-Type", "application/json")
			wantStatus(t, tt.name, r, tt.status)
			if tt.status == 200 {
				var cred gitlab.RunnerCredentials
				if err := json.Unmarshal(r.Body, &cred); err != nil || cred.Token != c.s.RunnerToken || cred.ID == 0 {
					t.Errorf("reply %s: %v", r.Body, err)
				}
			}
		})
	}
}

func TestRegisterAndCreate(t *testing.T) {
	c := newTC(t)
	var ids []int64
	var toks []string
	decode := func(r resp) {
		t.Helper()
		var cred gitlab.RunnerCredentials
		if err := json.Unmarshal(r.Body, &cred); err != nil || !strings.HasPrefix(cred.Token, "glrt-") {
			t.Fatalf("credentials %s: %v", r.Body, err)
		}
		ids = append(ids, cred.ID)
		toks = append(toks, cred.Token)
	}
	reg := "/api/v4/runners"
	wantStatus(t, "register bad token", c.postJSON(reg, gitlab.RegisterRunnerRequest{Token: "GR1348941nope"}), 403)
	wantStatus(t, "register malformed", c.do(http.MethodPost, reg, strings.NewReader("{"), "Content-Type", "application/json"), 400)
	r := c.postJSON(reg, gitlab.RegisterRunnerRequest{Token: c.s.RegistrationToken(), Description: "wr", TagList: "wasm", RunUntagged: true})
	wantStatus(t, "register", r, 201)
	decode(r)

	cr := "/api/v4/user/runners"
	pat := []string{"PRIVATE-TOKEN", c.s.AccessToken()}
	createTests := []struct {
		name   string
		req    gitlab.CreateRunnerRequest
		hdr    []string
		status int
	}{
		{"no token", gitlab.CreateRunnerRequest{RunnerType: gitlab.InstanceRunner}, nil, 401},
		{"wrong token", gitlab.CreateRunnerRequest{RunnerType: gitlab.InstanceRunner}, []string{"PRIVATE-TOKEN", "glpat-no"}, 401},
		{"bad type", gitlab.CreateRunnerRequest{RunnerType: "user_type"}, pat, 400},
		{"no type", gitlab.CreateRunnerRequest{}, pat, 400},
		{"group without id", gitlab.CreateRunnerRequest{RunnerType: gitlab.GroupRunner}, pat, 400},
		{"project without id", gitlab.CreateRunnerRequest{RunnerType: gitlab.ProjectRunner}, pat, 400},
		{"instance", gitlab.CreateRunnerRequest{RunnerType: gitlab.InstanceRunner}, pat, 201},
		{"group", gitlab.CreateRunnerRequest{RunnerType: gitlab.GroupRunner, GroupID: 9}, pat, 201},
		{"project", gitlab.CreateRunnerRequest{RunnerType: gitlab.ProjectRunner, ProjectID: 1}, pat, 201},
	}
	for _, tt := range createTests {
		r := c.postJSON(cr, tt.req, tt.hdr...)
		wantStatus(t, tt.name, r, tt.status)
		if r.Status == 201 {
			decode(r)
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("runner ids not increasing: %v", ids)
		}
	}
	// New tokens are valid for jobs/request and verify.
	for _, tok := range toks {
		wantStatus(t, "request with new token", c.postJSON("/api/v4/jobs/request", gitlab.JobRequest{Token: tok}), 204)
		wantStatus(t, "verify new token", c.postJSON("/api/v4/runners/verify", gitlab.VerifyRunnerRequest{Token: tok}), 200)
	}
}

func TestRoutes(t *testing.T) {
	c := newTC(t)
	tests := []struct {
		method, path string
		status       int
		ep           gitlabtest.Endpoint
	}{
		{"GET", "/", 404, ""},
		{"GET", "/api/v4/jobs/request", 404, ""},
		{"POST", "/api/v4/jobs/1000/trace", 404, ""},
		{"DELETE", "/api/v4/jobs/1000", 404, ""},
		{"GET", "/api/v4/jobs/1000/artifacts/extra", 404, ""},
		{"GET", "/api/v4/projects", 404, ""},
		{"POST", "/api/v4/runners/", 404, ""},
		{"PATCH", "/api/v4/jobs/abc/trace", 400, gitlabtest.EndpointTrace},
		{"PUT", "/api/v4/jobs/99999999999999999999", 400, gitlabtest.EndpointUpdate},
		{"PUT", "/api/v4/jobs/-5", 404, gitlabtest.EndpointUpdate},
	}
	for _, tt := range tests {
		r := c.do(tt.method, tt.path, strings.NewReader(`{}`), "Content-Type", "application/json", "JOB-TOKEN", "x")
		wantStatus(t, tt.method+" "+tt.path, r, tt.status)
		wantHeader(t, tt.path, r, "Content-Type", "application/json")
		_ = r.message(t)
	}
	log := c.s.Requests()
	if len(log) != len(tests) {
		t.Fatalf("%d requests logged", len(log))
	}
	for i, tt := range tests {
		if log[i].Method != tt.method || log[i].Path != tt.path || log[i].Status != tt.status || log[i].Endpoint != tt.ep || log[i].Time.IsZero() {
			t.Errorf("log %d = %+v", i, log[i])
		}
	}
}

// TestForRunner: with several runners, a job enqueued ForRunner goes to
// that runner only; other jobs go to any of them.
func TestForRunner(t *testing.T) {
	c := newTC(t)
	a, b := c.s.RunnerToken, c.s.AddRunner()
	if !strings.HasPrefix(b, "glrt-") || b == a {
		t.Fatalf("AddRunner = %q", b)
	}
	verify := c.postJSON("/api/v4/runners/verify", map[string]string{"token": b})
	wantStatus(t, "verify added runner", verify, 200)
	request := func(tok string) (int64, int) {
		t.Helper()
		r := c.postJSON("/api/v4/jobs/request", map[string]string{"token": tok})
		if r.Status != 201 {
			return 0, r.Status
		}
		j, err := gitlab.DecodeJob(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		return j.ID, r.Status
	}
	forB := c.s.Enqueue(gitlabtest.NewJob("for-b").ForRunner(b))
	anyone := c.s.Enqueue(gitlabtest.NewJob("anyone"))
	// A skips B's job and takes the unrouted one, then has nothing left.
	if id, st := request(a); id != anyone {
		t.Errorf("runner A got job %d (status %d), want %d", id, st, anyone)
	}
	if _, st := request(a); st != 204 {
		t.Errorf("runner A's second request: status %d, want 204", st)
	}
	if got := c.s.Job(forB).State; got != gitlab.StatePending {
		t.Errorf("B's job is %s after A's requests, want pending", got)
	}
	if id, _ := request(b); id != forB {
		t.Errorf("runner B got job %d, want %d", id, forB)
	}
	forA := c.s.Enqueue(gitlabtest.NewJob("for-a").ForRunner(a))
	if _, st := request(b); st != 204 {
		t.Errorf("runner B took A's job: status %d", st)
	}
	if id, _ := request(a); id != forA {
		t.Errorf("runner A got job %d, want %d", id, forA)
	}
	defer func() {
		if recover() == nil {
			t.Error("Enqueue for an unknown runner token did not panic")
		}
	}()
	c.s.Enqueue(gitlabtest.NewJob("nobody").ForRunner("glrt-unknown"))
}
