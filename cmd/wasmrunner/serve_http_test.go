package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/syncbuf"
)

// startServe runs `wasmrunner serve` with args against srv until the test
// ends, listening on the address it returns.
func startServe(t *testing.T, srv *gitlabtest.Server, args ...string) (addr string, log *syncbuf.Buffer) {
	t.Helper()
	addr = freeAddr(t)
	mods := guestsDir(t, "probe") // may skip: not in the goroutine below
	ctx, cancel := context.WithCancel(context.Background())
	log = &syncbuf.Buffer{}
	var out syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"wasmrunner", "serve", "--url", srv.URL, "--token", srv.RunnerToken,
			"--modules", mods, "--builds-dir", t.TempDir(), "--listen", addr,
			"--check-interval", "20ms"}, args...), &out, log)
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, log
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not become ready\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Profiles are served only when asked for: they tell a lot about the
// process to whoever reaches the listen address.
func TestPprofIsOptIn(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, http.StatusNotFound},
		{[]string{"--pprof"}, http.StatusOK},
	} {
		t.Run(fmt.Sprint(tc.args), func(t *testing.T) {
			addr, _ := startServe(t, srv, tc.args...)
			for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/heap"} {
				if got := status(t, "http://"+addr+p); got != tc.want {
					t.Errorf("GET %s: %d, want %d", p, got, tc.want)
				}
			}
		})
	}
	code, _, errOut := runCLI(t, context.Background(), "serve", "--url", srv.URL, "--token", "x", "--modules", ".", "--pprof")
	if code != exitUsage || !strings.Contains(errOut, "--pprof") {
		t.Errorf("--pprof without --listen: exit %d, %q", code, errOut)
	}
}

// Jobs running side by side keep reusing their connections to GitLab
// instead of dialing for most requests (Go's default transport keeps two
// idle connections per host).
func TestServeReusesGitLabConnections(t *testing.T) {
	srv := gitlabtest.NewServer(gitlabtest.WithTraceUpdateInterval(time.Second))
	defer srv.Close()
	const slots, jobs = 16, 96
	var ids []int64
	for i := range jobs {
		ids = append(ids, srv.Enqueue(gitlabtest.NewJob(fmt.Sprintf("j%d", i)).Image("probe").Script("e one", "e two")))
	}
	startServe(t, srv, "--concurrency", fmt.Sprint(slots))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, id := range ids {
		if rec, err := srv.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed); err != nil {
			t.Fatal(err, rec.State)
		}
	}
	reqs, conns := len(srv.Requests()), srv.Connections()
	t.Logf("%d requests over %d connections", reqs, conns)
	if conns > 2*slots {
		t.Errorf("%d requests over %d connections: connections to GitLab are not reused", reqs, conns)
	}
}
