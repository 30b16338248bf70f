package modules_test

import (
	"context"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/runnertest"
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
			runnertest.BenchJobs(b, 8, tc.factory, func() *gitlabtest.JobBuilder {
				return gitlabtest.NewJob("t").Image("probe").Script("e hello")
			})
		})
	}
}
