package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/journal"
)

// takeJob makes srv hand a job to its runner, as a runner process that
// then died would have taken it, and returns the job.
func takeJob(t *testing.T, h *harness, name string) *gitlab.Job {
	t.Helper()
	return takeJobAs(t, h, name, h.srv.RunnerToken)
}

// takeJobAs is takeJob for the runner of token.
func takeJobAs(t *testing.T, h *harness, name, token string) *gitlab.Job {
	t.Helper()
	id := h.srv.Enqueue(gitlabtest.NewJob(name).Script("sleep 3600").ForRunner(token))
	client, err := gitlab.New(h.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.RequestJob(context.Background(), gitlab.JobRequest{Token: token})
	if err != nil || res.Job == nil || res.Job.ID != id {
		t.Fatalf("taking job %d: %+v %v", id, res.Job, err)
	}
	return res.Job
}

// patch appends data to a job's log, as the dead process had sent it.
func patch(t *testing.T, h *harness, job *gitlab.Job, data string) {
	t.Helper()
	client, _ := gitlab.New(h.srv.URL)
	if _, err := client.PatchTrace(context.Background(), job.ID, job.Token, 0, []byte(data)); err != nil {
		t.Fatal(err)
	}
}

// deadProcess writes entries into a partition of dir and lets it go, as a
// process that was killed does (its flock goes with it).
func deadProcess(t *testing.T, dir string, entries ...journal.Entry) string {
	t.Helper()
	j, err := journal.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := j.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	p := j.Dir()
	j.Close()
	return p
}

func entryOf(job *gitlab.Job, offset int64) journal.Entry {
	return journal.Entry{JobID: job.ID, Token: job.Token, Offset: offset, Name: job.JobInfo.Name, Started: time.Now()}
}

// TestRecoverLostJobs: a runner starting on a journal that a process
// which is gone left reports its jobs: a last line appended to what
// GitLab had of each log (whatever offset the entry says) and failed with
// runner_system_failure; a job GitLab had already ended is dropped; a
// live process's jobs are not touched. Nothing is left of the dead
// partition.
func TestRecoverLostJobs(t *testing.T) {
	journalDir := filepath.Join(t.TempDir(), "journal")
	h := newHarness(t, stepFunc(nil), func(c *engine.Config) { c.JournalDir = journalDir })

	lost := takeJob(t, h, "lost")
	patch(t, h, lost, "$ make\nbuilding...\n")
	reporting := takeJob(t, h, "reporting")
	canceled := takeJob(t, h, "canceled")
	h.srv.Cancel(canceled.ID)
	live := takeJob(t, h, "live")

	// A live process (its journal open) runs "live".
	liveJournal, err := journal.Open(journalDir)
	if err != nil {
		t.Fatal(err)
	}
	defer liveJournal.Close()
	if err := liveJournal.Add(entryOf(live, 0)); err != nil {
		t.Fatal(err)
	}
	rep := entryOf(reporting, 0)
	rep.Result, rep.FailureReason = "failed", "script_failure"
	dead := deadProcess(t, journalDir, entryOf(lost, 0), rep, entryOf(canceled, 0))
	// GitLab fails for a while: the recovery retries.
	h.srv.FailNext(gitlabtest.EndpointTrace, 503, 20)

	h.start()
	for _, tc := range []struct {
		job  *gitlab.Job
		want []string
	}{
		{lost, []string{"$ make\nbuilding...\n\n", "the runner stopped unexpectedly while it ran this job", "The job was lost."}},
		{reporting, []string{"after this job ended (failed: script_failure) but before GitLab accepted its final update"}},
	} {
		rec := h.wait(tc.job.ID, gitlab.StateFailed)
		if rec.FailureReason != gitlab.RunnerSystemFailure {
			t.Errorf("job %s: failure reason %q, want runner_system_failure", tc.job.JobInfo.Name, rec.FailureReason)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(rec.Trace), w) {
				t.Errorf("job %s: log %q lacks %q", tc.job.JobInfo.Name, rec.Trace, w)
			}
		}
		if !strings.HasPrefix(string(rec.Trace), "$ make") && tc.job == lost {
			t.Errorf("the log GitLab had was not kept: %q", rec.Trace)
		}
	}
	eventually(t, "the dead partition removed", func() bool {
		_, err := os.Stat(dead)
		return os.IsNotExist(err)
	})
	if rec := h.srv.Job(canceled.ID); rec.State != gitlab.StateCanceled || len(rec.Trace) != 0 {
		t.Errorf("a job GitLab had ended: %s, log %q", rec.State, rec.Trace)
	}
	if rec := h.srv.Job(live.ID); rec.State != gitlab.StateRunning || len(rec.Updates) != 0 || len(rec.Trace) != 0 {
		t.Errorf("a live process's job was touched: %s, %d updates, log %q", rec.State, len(rec.Updates), rec.Trace)
	}
	if got := entryIDs(t, journalDir); len(got) != 1 || got[0] != live.ID {
		t.Errorf("entries left %v, want only the live process's job %d", got, live.ID)
	}
	if v := h.srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

// TestJournalWhileRunning: a job is in the journal (a private file) while
// it runs and no longer once reported; a runner that stops leaves no
// partition behind.
func TestJournalWhileRunning(t *testing.T) {
	journalDir := filepath.Join(t.TempDir(), "journal")
	var seen []int64
	var modes []os.FileMode
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, _ []string, _ engine.Phase) error {
		seen = entryIDs(t, journalDir)
		slots, _ := filepath.Glob(filepath.Join(journalDir, "p-*", "slot-*"))
		for _, p := range slots {
			if fi, err := os.Stat(p); err == nil {
				modes = append(modes, fi.Mode().Perm())
			}
		}
		return nil
	}), func(c *engine.Config) { c.JournalDir = journalDir })
	id := h.srv.Enqueue(gitlabtest.NewJob("j").Script("x"))
	h.start()
	h.wait(id, gitlab.StateSuccess)
	if len(seen) != 1 || seen[0] != id || len(modes) != 1 || modes[0] != 0o600 {
		t.Errorf("while the job ran the journal held %v (modes %v), want job %d, 0600", seen, modes, id)
	}
	eventually(t, "the entry removed", func() bool { return len(entryIDs(t, journalDir)) == 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.runner.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(journalDir, "p-*")); len(m) != 0 {
		t.Errorf("a stopped runner left %v", m)
	}
}

// entryIDs returns the jobs in a journal, live partitions included.
func entryIDs(t *testing.T, dir string) []int64 {
	t.Helper()
	entries, err := journal.Entries(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, e := range entries {
		ids = append(ids, e.JobID)
	}
	return ids
}

// eventually polls cond for up to 15 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestRecoverWhileServing: a process of the same runner that dies while
// this one serves (a replica sharing the builds dir) has its jobs
// reported by this one within RecoverInterval; a job GitLab answers with
// 5xx for a while is retried meanwhile, in the background, while jobs run.
func TestRecoverWhileServing(t *testing.T) {
	journalDir := filepath.Join(t.TempDir(), "journal")
	h := newHarness(t, stepFunc(nil), func(c *engine.Config) {
		c.JournalDir = journalDir
		c.RecoverInterval = 50 * time.Millisecond
	})
	// The replica (of another token: this runner must not take its job
	// from GitLab first) takes a job, journals it and dies.
	other := h.srv.AddRunner()
	h.start()
	lost := takeJobAs(t, h, "replica's", other)
	h.srv.FailNext(gitlabtest.EndpointUpdate, 503, 12)
	deadProcess(t, journalDir, entryOf(lost, 0))
	// Meanwhile this runner's own jobs run.
	mine := h.srv.Enqueue(gitlabtest.NewJob("mine").Script("echo hi"))
	if rec := h.wait(mine); rec.State != gitlab.StateSuccess {
		t.Errorf("this runner's job: %s", rec.State)
	}
	rec := h.wait(lost.ID, gitlab.StateFailed)
	if rec.FailureReason != gitlab.RunnerSystemFailure || strings.Count(string(rec.Trace), "The job was lost.") != 1 {
		t.Errorf("the dead replica's job: %s %q", rec.FailureReason, rec.Trace)
	}
	eventually(t, "the journal empty", func() bool { return len(entryIDs(t, journalDir)) == 0 })
}
