package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/journal"
)

// TestGitLabOutage: GitLab answers 503 to everything for ten minutes
// (simulated time) while a job runs and ends: the job goes on, its log is
// kept and, once GitLab is back, GitLab has all of it, once, and the
// job's result. The runner's side runs in a synctest bubble with the
// client's default retry policy; the fake GitLab runs outside it, over
// loopback, reached with connections that are not kept alive (an idle
// connection's reader is not durably blocked, and would stop the
// bubble's clock).
func TestGitLabOutage(t *testing.T) {
	srv := gitlabtest.NewServer(gitlabtest.WithTraceUpdateInterval(3 * time.Second))
	defer srv.Close()
	const lines = 30 // one every 10 s: the job runs 5 minutes
	id := srv.Enqueue(gitlabtest.NewJob("through-an-outage").Script("run"))
	var downAt, upAt time.Duration
	synctest.Test(t, func(t *testing.T) {
		transport := &http.Transport{DisableKeepAlives: true}
		defer transport.CloseIdleConnections()
		client, err := gitlab.New(srv.URL, gitlab.WithHTTPClient(&http.Client{Transport: transport}))
		if err != nil {
			t.Fatal(err)
		}
		step := func(ctx context.Context, job *engine.Job, _ []string, _ engine.Phase) error {
			for i := range lines {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(10 * time.Second):
				}
				job.Printf("line %d", i)
			}
			return nil
		}
		journalDir := filepath.Join(t.TempDir(), "journal")
		r, err := engine.New(engine.Config{
			Client: client, Token: srv.RunnerToken, SystemID: "s_000000000000",
			Handler:    stepFunc(step),
			BuildsDir:  t.TempDir(),
			JournalDir: journalDir,
			Process:    resource.NewProcess(resource.ProcessConfig{Jobs: 1}),
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- r.Run(context.Background()) }()
		defer func() {
			r.Abort()
			<-done
		}()

		time.Sleep(time.Minute)
		if got := string(srv.Job(id).Trace); !strings.Contains(got, "line 4\n") {
			t.Fatalf("after a minute GitLab has %q", got)
		}
		srv.Down()
		downAt = time.Since(start)
		// The job ends (at 5 minutes) while GitLab is down.
		time.Sleep(10 * time.Minute)
		if rec := srv.Job(id); rec.State != gitlab.StateRunning || strings.Contains(string(rec.Trace), "line 6\n") {
			t.Fatalf("GitLab changed while down: %s %q", rec.State, rec.Trace)
		}
		// The job has ended: its journal entry says how, for the report
		// of a crash that would come before GitLab took it.
		if entries, err := journal.Entries(journalDir); err != nil || len(entries) != 1 || entries[0].Result != "success" {
			t.Errorf("journal while the result waits for GitLab: %+v %v", entries, err)
		}
		srv.Up()
		upAt = time.Since(start)
		for srv.Job(id).State == gitlab.StateRunning {
			if time.Since(start) > time.Hour {
				t.Fatalf("the job was not reported within an hour:\n%s", srv.Job(id).Trace)
			}
			time.Sleep(time.Second)
		}
		t.Logf("reported %s after GitLab came back", time.Since(start)-upAt)
		if ids := entryIDs(t, journalDir); len(ids) != 0 {
			t.Errorf("journal entries left: %v", ids)
		}
	})

	rec := srv.Job(id)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("job %s (%s), want success\n%s", rec.State, rec.FailureReason, rec.Trace)
	}
	log := string(rec.Trace)
	for i := range lines {
		if n := strings.Count(log, fmt.Sprintf("line %d\n", i)); n != 1 {
			t.Errorf("line %d is in GitLab's log %d times", i, n)
		}
	}
	if !strings.HasSuffix(log, "Job succeeded\x1b[0;m\n") {
		t.Errorf("GitLab's log does not end with the result:\n%s", log)
	}
	down, finals := 0, 0
	for _, r := range srv.Requests() {
		if r.Fault == "down" {
			down++
		}
	}
	for _, u := range rec.Updates {
		if u.State == gitlab.StateSuccess {
			finals++
		}
	}
	t.Logf("down from %s to %s: %d requests refused; %d final updates sent", downAt, upAt, down, finals)
	if down == 0 {
		t.Error("no request reached GitLab while it was down")
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}
