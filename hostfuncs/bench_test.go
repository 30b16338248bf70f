package hostfuncs_test

import (
	"context"
	"io"
	"testing"

	"github.com/wasmrunner/wasmrunner/hostfuncs"
)

// BenchmarkLogLine: the cost of one log_line call of 100 bytes, made in a
// loop inside the guest (ns/op is per host call).
func BenchmarkLogLine(b *testing.B) {
	for _, engine := range []string{"compiler", "interpreter"} {
		b.Run(engine, func(b *testing.B) {
			g := newGuest(b, "guest", engines[engine]())
			env := &hostfuncs.Env{Log: io.Discard}
			// A context a few layers deep, as the engine's will be.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ctx = hostfuncs.WithEnv(ctx, env)
			b.ReportAllocs()
			b.ResetTimer()
			if fails := g.call32(ctx, "bench_log_line", uint64(b.N)); fails != 0 {
				b.Fatalf("%d calls failed", fails)
			}
		})
	}
}
