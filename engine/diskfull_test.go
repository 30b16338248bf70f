package engine_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// TestDiskFull: when the host's disk under the builds dir is full (ENOSPC
// injected into one host-side write step of one job), that job fails
// with runner_system_failure and a log that says so; the runner goes on:
// the next job succeeds, and no journal entry is left behind.
func TestDiskFull(t *testing.T) {
	for _, step := range []string{"journal", "build dir", "dependencies", "artifacts"} {
		t.Run(step, func(t *testing.T) {
			journalDir := filepath.Join(t.TempDir(), "journal")
			var armed atomic.Bool
			armed.Store(true)
			h := newHarness(t, stepFunc(func(_ context.Context, job *engine.Job, _ []string, _ engine.Phase) error {
				return os.WriteFile(filepath.Join(job.BuildDir(), "out.txt"), []byte("result"), 0o644)
			}), func(c *engine.Config) { c.JournalDir = journalDir; c.Concurrency = 1 })
			engine.SetHostFault(h.runner, func(s string) error {
				if s == step && armed.CompareAndSwap(true, false) {
					return &fs.PathError{Op: "write", Path: filepath.Join(h.cfg.BuildsDir, "x"), Err: syscall.ENOSPC}
				}
				return nil
			})
			dep := h.srv.AddFinishedJob("build", gitlabtest.Zip(map[string]string{"in.txt": "input"}))
			job := func(name string) int64 {
				return h.srv.Enqueue(gitlabtest.NewJob(name).Script("work").DependsOn(dep).
					Artifacts(gitlab.ArtifactSpec{Name: "out", Paths: []string{"out.txt"}}))
			}
			first := job("disk-full")
			h.start()
			rec := h.wait(first)
			if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.RunnerSystemFailure {
				t.Errorf("job: %s %s, want failed runner_system_failure", rec.State, rec.FailureReason)
			}
			log := string(rec.Trace)
			for _, want := range []string{"ERROR: Job failed (system failure):", "the disk under the runner's builds dir is full", "no space left on device"} {
				if !strings.Contains(log, want) {
					t.Errorf("the job's log lacks %q:\n%s", want, log)
				}
			}
			second := job("after")
			if rec := h.wait(second); rec.State != gitlab.StateSuccess {
				t.Errorf("the next job: %s %s\n%s", rec.State, rec.FailureReason, rec.Trace)
			}
			eventually(t, "no journal entry left", func() bool { return len(entryIDs(t, journalDir)) == 0 })
		})
	}
}
