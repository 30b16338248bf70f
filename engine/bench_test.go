package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/runnertest"
)

type noopHandler struct{ job *engine.Job }

func (h noopHandler) Step(ctx context.Context, script []string, phase engine.Phase) error {
	h.job.Println("ok")
	return nil
}
func (noopHandler) Cleanup(context.Context) {}

// BenchmarkJobs measures the whole loop (request, build dir, handler,
// trace, final update) for trivial jobs, fake GitLab included.
func BenchmarkJobs(b *testing.B) {
	for _, c := range []int{1, 8, 64} {
		b.Run(fmt.Sprint("concurrency=", c), func(b *testing.B) {
			runnertest.BenchJobs(b, c, func(_ context.Context, job *engine.Job) (engine.Handler, error) {
				return noopHandler{job}, nil
			}, func() *gitlabtest.JobBuilder { return gitlabtest.NewJob("noop") })
		})
	}
}

// BenchmarkJobsJournal is BenchmarkJobs with the journal of jobs in
// flight (Config.JournalDir), as serve runs: its fsyncs are the cost.
func BenchmarkJobsJournal(b *testing.B) {
	for _, c := range []int{1, 8, 64} {
		b.Run(fmt.Sprint("concurrency=", c), func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "journal")
			runnertest.BenchJobs(b, c, func(_ context.Context, job *engine.Job) (engine.Handler, error) {
				return noopHandler{job}, nil
			}, func() *gitlabtest.JobBuilder { return gitlabtest.NewJob("noop") },
				func(cfg *engine.Config) { cfg.JournalDir = dir })
		})
	}
}

// BenchmarkJobTrace measures log throughput from a handler through
// masking and the trace to the fake GitLab.
func BenchmarkJobTrace(b *testing.B) {
	const perJob = 32 << 20
	chunk := []byte(strings.Repeat("compiling module 1234 of 5678: ok ", 120) + "\n") // ~4 KiB
	b.SetBytes(perJob)
	runnertest.BenchJobs(b, 1, func(_ context.Context, job *engine.Job) (engine.Handler, error) {
		return stepHandler(job, func() error {
			w := job.Writer()
			for n := 0; n < perJob; n += len(chunk) {
				w.Write(chunk)
			}
			return nil
		}), nil
	}, func() *gitlabtest.JobBuilder {
		return gitlabtest.NewJob("log").MaskedVar("SECRET_ONE", "correct-horse-battery").MaskedVar("SECRET_TWO", "staple-1234567890")
	}, func(c *engine.Config) { c.OutputLimit = 2 * perJob })
}

type fnHandler struct{ fn func() error }

func (h fnHandler) Step(context.Context, []string, engine.Phase) error { return h.fn() }
func (fnHandler) Cleanup(context.Context)                              {}

func stepHandler(_ *engine.Job, fn func() error) engine.Handler { return fnHandler{fn} }
