package trace_test

import (
	"context"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/trace"
)

const (
	benchTotal = 64 << 20
	benchWrite = 4 << 10
)

// BenchmarkTraceThroughput streams 64 MiB in 4 KiB writes to the fake
// GitLab over loopback, final update included.
func BenchmarkTraceThroughput(b *testing.B) {
	chunk := make([]byte, benchWrite)
	for i := range chunk {
		chunk[i] = 'a' + byte(i%26)
	}
	chunk[len(chunk)-1] = '\n'
	b.SetBytes(benchTotal)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		e, closeEnv := openEnv(b) // a fresh fake per round: it keeps every byte
		cfg := e.config()
		cfg.Limit = 2 * benchTotal
		tr := trace.New(e.client, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		b.StartTimer()

		tr.Start(ctx)
		for range benchTotal / benchWrite {
			_, _ = tr.Write(chunk)
		}
		if err := tr.Finish(ctx, trace.Final{State: gitlab.StateSuccess}); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		cancel()
		if n := len(e.srv.Job(e.id).Trace); n != benchTotal {
			b.Fatalf("GitLab holds %d bytes, want %d", n, benchTotal)
		}
		closeEnv()
		b.StartTimer()
	}
}

// BenchmarkWrite measures the in-memory append path alone, in 4 KiB
// writes; a fresh trace takes over every 64 MiB.
func BenchmarkWrite(b *testing.B) {
	chunk := make([]byte, benchWrite)
	newTrace := func() *trace.Trace {
		return trace.New(&stubClient{}, trace.Config{JobID: 1, Token: "t", Limit: benchTotal})
	}
	tr := newTrace()
	b.SetBytes(benchWrite)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n == benchTotal/benchWrite {
			b.StopTimer()
			tr, n = newTrace(), 0
			b.StartTimer()
		}
		_, _ = tr.Write(chunk)
		n++
	}
}
