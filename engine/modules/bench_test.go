package modules_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

type lineHandler struct{ job *engine.Job }

func (h lineHandler) Step(_ context.Context, script []string, _ engine.Phase) error {
	for _, l := range script {
		h.job.Println(l[2:])
	}
	return nil
}
func (lineHandler) Cleanup(context.Context) {}

// BenchmarkSandboxTax runs trivial one-line jobs through the engine at
// concurrency 8 with a WebAssembly handler and with the same handler in
// Go; compare their jobs/s.
func BenchmarkSandboxTax(b *testing.B) {
	dir := modulesDir(b, map[string]string{"probe": "probe"}, nil)
	reg, err := modules.Open(context.Background(), modules.Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer reg.Close(context.Background())
	for _, tc := range []struct {
		name    string
		factory engine.HandlerFactory
	}{
		{"go", func(_ context.Context, job *engine.Job) (engine.Handler, error) { return lineHandler{job}, nil }},
		{"wasm", reg.Factory()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := gitlabtest.NewServer()
			defer srv.Close()
			client, err := gitlab.New(srv.URL)
			if err != nil {
				b.Fatal(err)
			}
			r, err := engine.New(engine.Config{
				Client: client, Token: srv.RunnerToken, BuildsDir: b.TempDir(), Handler: tc.factory,
				Concurrency: 8, CheckInterval: time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				b.Fatal(err)
			}
			ids := make([]int64, b.N)
			for i := range ids {
				ids[i] = srv.Enqueue(gitlabtest.NewJob("t").Image("probe").Script("e hello"))
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			done := make(chan error)
			go func() { done <- r.Run(context.Background()) }()
			for _, id := range ids {
				rec, err := srv.WaitForState(context.Background(), id, gitlab.StateSuccess, gitlab.StateFailed)
				if err != nil || rec.State != gitlab.StateSuccess {
					b.Fatalf("job %d: %s %v\n%s", id, rec.State, err, rec.Trace)
				}
			}
			elapsed := time.Since(start)
			b.StopTimer()
			_ = r.Shutdown(context.Background())
			<-done
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
		})
	}
}
