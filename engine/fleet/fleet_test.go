package fleet_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/fleet"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/runnertest"
)

// probeDir is a modules dir with the probe test guest.
func probeDir(t *testing.T) string {
	t.Helper()
	data := runnertest.Module(t, filepath.Join("..", "..", "testdata", "guests", "probe.wasm"), "scripts/build-guests")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "probe.wasm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newFleet(t *testing.T) *fleet.Fleet {
	t.Helper()
	f, err := fleet.New(context.Background(), fleet.Config{
		Process: resource.NewProcess(resource.ProcessConfig{Jobs: 8}), CacheDir: t.TempDir(), Version: "test",
		ReloadInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Shutdown(false)
		f.Wait()
	})
	return f
}

func runnerOf(t *testing.T, srv *gitlabtest.Server, name, token, modules string) fleet.Runner {
	return fleet.Runner{
		Name: name, URL: srv.URL, Token: token, Modules: modules, BuildsDir: t.TempDir(), Concurrency: 2,
		CheckInterval: 20 * time.Millisecond, UpdateInterval: 50 * time.Millisecond, OutputLimit: 1 << 20,
	}
}

// waitStarted waits until the job's log shows it started: it runs in a
// runner (not just handed out, its reply maybe still on the way).
func waitStarted(t *testing.T, srv *gitlabtest.Server, id int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(string(srv.Job(id).Trace), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("job %d did not start: %s", id, srv.Job(id).State)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitState(t *testing.T, srv *gitlabtest.Server, id int64, states ...gitlab.JobState) gitlabtest.JobRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := srv.WaitForState(ctx, id, states...)
	if err != nil {
		t.Fatalf("%v\n%s", err, rec.Trace)
	}
	return rec
}

// TestApplyKeepsReplacesAndDrains goes through a runner's life: started,
// kept by an Apply of the same entry, replaced by a changed one while a
// job runs (the job finishes on the old one), removed while a job runs
// (the job finishes; no new one is taken).
func TestApplyKeepsReplacesAndDrains(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	f := newFleet(t)
	mods := probeDir(t)
	a := runnerOf(t, srv, "team-a", srv.RunnerToken, mods)
	if err := f.Apply([]fleet.Runner{a}); err != nil {
		t.Fatal(err)
	}
	if rec := waitState(t, srv, srv.Enqueue(gitlabtest.NewJob("first").Image("probe").Script("e hello")), gitlab.StateSuccess, gitlab.StateFailed); rec.State != gitlab.StateSuccess {
		t.Fatalf("first job: %s\n%s", rec.State, rec.Trace)
	}
	if ok, why := f.Ready(); !ok {
		t.Errorf("not ready after a job: %s", why)
	}
	// Applying the same entry again (a copy) changes nothing.
	same := a
	same.Handlers = slices.Clone(a.Handlers)
	if err := f.Apply([]fleet.Runner{same}); err != nil {
		t.Fatal(err)
	}

	// A job that runs until it is canceled, then a change of the entry.
	long := srv.Enqueue(gitlabtest.NewJob("long").Image("probe").Script("e started", "c"))
	waitStarted(t, srv, long)
	changed := a
	changed.Concurrency = 3
	if err := f.Apply([]fleet.Runner{changed}); err != nil {
		t.Fatal(err)
	}
	if rec := waitState(t, srv, srv.Enqueue(gitlabtest.NewJob("second").Image("probe").Script("e again")), gitlab.StateSuccess, gitlab.StateFailed); rec.State != gitlab.StateSuccess {
		t.Fatalf("job after the change: %s\n%s", rec.State, rec.Trace)
	}
	srv.CancelGracefully(long)
	rec := waitState(t, srv, long, gitlab.StateCanceled, gitlab.StateFailed, gitlab.StateSuccess)
	if !strings.Contains(string(rec.Trace), "noticed the cancel") || strings.Contains(string(rec.Trace), "shutting down") {
		t.Errorf("the job of the replaced runner did not run to its end: %s\n%s", rec.State, rec.Trace)
	}

	// Removed while a job runs: it finishes; no job request is sent after
	// the drain (one already in flight may still bring a job, which is run).
	long2 := srv.Enqueue(gitlabtest.NewJob("long2").Image("probe").Script("e started", "c"))
	waitStarted(t, srv, long2)
	drained := time.Now()
	if err := f.Apply(nil); err != nil {
		t.Fatal(err)
	}
	if s := f.Serving(); len(s) != 0 {
		t.Errorf("serving %v after the runner was removed", s)
	}
	if ok, _ := f.Ready(); ok {
		t.Error("ready with no runner")
	}
	after := srv.Enqueue(gitlabtest.NewJob("after").Image("probe").Script("e too late"))
	srv.CancelGracefully(long2)
	rec = waitState(t, srv, long2, gitlab.StateCanceled, gitlab.StateFailed, gitlab.StateSuccess)
	if !strings.Contains(string(rec.Trace), "noticed the cancel") || strings.Contains(string(rec.Trace), "shutting down") {
		t.Errorf("the job of the removed runner did not run to its end: %s\n%s", rec.State, rec.Trace)
	}
	f.Wait()
	if st := srv.Job(after).State; st != gitlab.StatePending && st != gitlab.StateSuccess {
		t.Errorf("the job enqueued during the drain is %s: neither left for another runner nor run", st)
	}
	n := 0
	for _, r := range srv.Requests() {
		if r.Endpoint == gitlabtest.EndpointRequestJob && r.Time.After(drained) {
			n++
		}
	}
	if n > 1 {
		t.Errorf("%d job requests after the drain; at most the one in flight", n)
	}
}

// TestApplyRefusesBadEntries: an entry that cannot be served changes
// nothing.
func TestApplyRefusesBadEntries(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	f := newFleet(t)
	mods := probeDir(t)
	a := runnerOf(t, srv, "a", srv.RunnerToken, mods)
	if err := f.Apply([]fleet.Runner{a}); err != nil {
		t.Fatal(err)
	}
	waitState(t, srv, srv.Enqueue(gitlabtest.NewJob("j").Image("probe").Script("e x")), gitlab.StateSuccess)
	b := runnerOf(t, srv, "b", srv.AddRunner(), mods)
	for _, tc := range []struct {
		name string
		want []fleet.Runner
		err  string
	}{
		{"no name", []fleet.Runner{a, {URL: srv.URL}}, "no name"},
		{"name twice", []fleet.Runner{a, a}, "used twice"},
		{"bad URL", []fleet.Runner{a, func() fleet.Runner { r := b; r.URL = "ftp://x"; return r }()}, "scheme"},
		{"missing modules dir", []fleet.Runner{a, func() fleet.Runner { r := b; r.Modules = filepath.Join(mods, "nope"); return r }()}, "no such file"},
		{"bad oci reference", []fleet.Runner{a, func() fleet.Runner { r := b; r.Modules = "oci://"; return r }()}, "modules"},
		{"missing CA file", []fleet.Runner{a, func() fleet.Runner { r := b; r.TLS.CAFile = filepath.Join(mods, "ca.pem"); return r }()}, "CA file"},
		{"certificate without key", []fleet.Runner{a, func() fleet.Runner { r := b; r.TLS.CertFile = "c.pem"; return r }()}, "key file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := f.Apply(tc.want)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Apply: %v, want an error with %q", err, tc.err)
			}
			if s := f.Serving(); !slices.Equal(s, []string{"a"}) {
				t.Errorf("serving %v after a refused Apply", s)
			}
		})
	}
	waitState(t, srv, srv.Enqueue(gitlabtest.NewJob("still").Image("probe").Script("e x")), gitlab.StateSuccess)
}

// TestReady: /readyz's answer follows the runners' job requests: a
// rejected token or an unreachable GitLab makes the fleet not ready, an
// answer ready again.
func TestReady(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	f := newFleet(t)
	mods := probeDir(t)
	ok := runnerOf(t, srv, "good", srv.RunnerToken, mods)
	if err := f.Apply([]fleet.Runner{ok}); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s; status %+v", what, f.Status())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	health := func(name string) fleet.Health {
		for _, s := range f.Status() {
			if s.Name == name {
				return s.Health
			}
		}
		return -1
	}
	waitFor("the runner serves and GitLab answered", func() bool { return health("good") == fleet.OK })
	if r, why := f.Ready(); !r {
		t.Fatalf("not ready: %s", why)
	}

	// GitLab (or its proxy) fails: not ready until it answers again.
	srv.FailNext(gitlabtest.EndpointRequestJob, http.StatusBadGateway, 3)
	waitFor("GitLab is unreachable", func() bool { return health("good") == fleet.Unreachable })
	if r, why := f.Ready(); r || !strings.Contains(why, "good: GitLab unreachable (502") {
		t.Errorf("Ready = %v, %q while GitLab fails", r, why)
	}
	waitFor("GitLab answers again", func() bool { return health("good") == fleet.OK })

	// A second runner whose token GitLab rejects.
	bad := runnerOf(t, srv, "bad", "glrt-notarunnertoken", mods)
	if err := f.Apply([]fleet.Runner{ok, bad}); err != nil {
		t.Fatal(err)
	}
	waitFor("the token is rejected", func() bool { return health("bad") == fleet.Rejected })
	if r, why := f.Ready(); r || !strings.Contains(why, "bad: the runner token was rejected") || strings.Contains(why, "good") {
		t.Errorf("Ready = %v, %q with a rejected token", r, why)
	}
	if err := f.Apply([]fleet.Runner{ok}); err != nil {
		t.Fatal(err)
	}
	if r, why := f.Ready(); !r {
		t.Errorf("not ready once the bad runner is gone: %s", why)
	}
	f.Shutdown(true)
	if r, why := f.Ready(); r || why != "shutting down" {
		t.Errorf("Ready = %v, %q while shutting down", r, why)
	}
}
