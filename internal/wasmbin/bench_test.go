package wasmbin

import (
	"os"
	"testing"
)

// BenchmarkCheck measures Check on real modules: shell.wasm (Rust, one table
// with maximum: read only) and, unless -short, a Go reactor (one table
// capped: read and copied).
func BenchmarkCheck(b *testing.B) {
	shell, err := os.ReadFile("../../examples/modules/shell.wasm")
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name string
		bin  func(testing.TB) []byte
	}{
		{"shell", func(testing.TB) []byte { return shell }},
		{"go-reactor", buildGoReactor},
	} {
		b.Run(m.name, func(b *testing.B) {
			bin := m.bin(b)
			b.SetBytes(int64(len(bin)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Check(bin, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
