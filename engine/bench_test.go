package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

type noopHandler struct{ job *engine.Job }

func (h noopHandler) Step(ctx context.Context, script []string, phase engine.Phase) error {
	h.job.Println("ok")
	return nil
}
func (noopHandler) Cleanup(context.Context) {}

// benchRun runs n jobs through a runner and the fake GitLab.
func benchRun(b *testing.B, concurrency, n int, limit int64, factory engine.HandlerFactory, enqueue func(*gitlabtest.Server) int64) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	client, err := gitlab.New(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	r, err := engine.New(engine.Config{
		Client: client, Token: srv.RunnerToken, BuildsDir: b.TempDir(), Handler: factory,
		Concurrency: concurrency, CheckInterval: time.Millisecond, OutputLimit: limit,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = enqueue(srv)
	}
	b.ResetTimer()
	start := time.Now()
	done := make(chan error)
	go func() { done <- r.Run(context.Background()) }()
	ctx := context.Background()
	for _, id := range ids {
		if rec, err := srv.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed); err != nil || rec.State != gitlab.StateSuccess {
			b.Fatalf("job %d: %s %v", id, rec.State, err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	_ = r.Shutdown(ctx)
	<-done
	b.ReportMetric(float64(n)/elapsed.Seconds(), "jobs/s")
}

// BenchmarkJobs measures the whole loop (request, build dir, handler,
// trace, final update) for trivial jobs, fake GitLab included.
func BenchmarkJobs(b *testing.B) {
	for _, c := range []int{1, 8, 64} {
		b.Run(fmt.Sprint("concurrency=", c), func(b *testing.B) {
			b.ReportAllocs()
			benchRun(b, c, b.N, 0, func(_ context.Context, job *engine.Job) (engine.Handler, error) {
				return noopHandler{job}, nil
			}, func(s *gitlabtest.Server) int64 { return s.Enqueue(gitlabtest.NewJob("noop")) })
		})
	}
}

// BenchmarkJobTrace measures log throughput from a handler through
// masking and the trace to the fake GitLab.
func BenchmarkJobTrace(b *testing.B) {
	const perJob = 32 << 20
	chunk := []byte(strings.Repeat("compiling module 1234 of 5678: ok ", 120) + "\n") // ~4 KiB
	b.SetBytes(perJob)
	b.ReportAllocs()
	benchRun(b, 1, b.N, 2*perJob, func(_ context.Context, job *engine.Job) (engine.Handler, error) {
		return stepHandler(job, func() error {
			w := job.Writer()
			for n := 0; n < perJob; n += len(chunk) {
				w.Write(chunk)
			}
			return nil
		}), nil
	}, func(s *gitlabtest.Server) int64 {
		return s.Enqueue(gitlabtest.NewJob("log").MaskedVar("SECRET_ONE", "correct-horse-battery").MaskedVar("SECRET_TWO", "staple-1234567890"))
	})
}

type fnHandler struct{ fn func() error }

func (h fnHandler) Step(context.Context, []string, engine.Phase) error { return h.fn() }
func (fnHandler) Cleanup(context.Context)                              {}

func stepHandler(_ *engine.Job, fn func() error) engine.Handler { return fnHandler{fn} }
