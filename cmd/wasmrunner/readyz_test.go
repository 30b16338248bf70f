package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// TestReadyzFollowsGitLab: /readyz turns 503 (saying why) while GitLab's
// answers to job requests are server errors, 200 again when it answers,
// and 503 once the runner's token is refused; wasmrunner_gitlab_up says
// the same per runner.
func TestReadyzFollowsGitLab(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	addr, log := startServe(t, srv)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, code int, body string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, b := get("/readyz")
			if c == code && strings.Contains(b, body) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /readyz %d %q\n%s", what, c, b, log.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	metric := func() string {
		_, m := get("/metrics")
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, "wasmrunner_gitlab_up{") {
				return l
			}
		}
		return ""
	}
	waitMetric := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for m := metric(); m != want; m = metric() {
			if time.Now().After(deadline) {
				t.Fatalf("metric %q, want %q", m, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Once the runner serves (its handlers loaded) and GitLab answered.
	waitMetric(`wasmrunner_gitlab_up{runner="default"} 1`)

	srv.FailNext(gitlabtest.EndpointRequestJob, http.StatusServiceUnavailable, 3)
	waitFor("GitLab failing", http.StatusServiceUnavailable, "not ready: default: GitLab unreachable (503")
	waitFor("GitLab back", http.StatusOK, "ready")

	c, err := gitlab.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UnregisterRunner(context.Background(), srv.RunnerToken); err != nil {
		t.Fatal(err)
	}
	waitFor("token refused", http.StatusServiceUnavailable, "default: the runner token was rejected (403")
	waitMetric(`wasmrunner_gitlab_up{runner="default"} 0`)
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d: the process is alive", code)
	}
}
