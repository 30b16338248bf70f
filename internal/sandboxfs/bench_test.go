//go:build unix

package sandboxfs

import (
	"os"
	"path/filepath"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
)

// BenchmarkOpenReadClose compares FS with wazero's DirFS (what WithDirMount
// uses) on open + read + close of a 100-byte file at depth 1 and depth 6,
// called directly, without a guest.
func BenchmarkOpenReadClose(b *testing.B) {
	dir := b.TempDir()
	paths := map[string]string{"depth1": "f.txt", "depth6": "a/b/c/d/e/f.txt"}
	for _, p := range paths {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, make([]byte, 100), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	sandbox, err := New(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer sandbox.Close()
	for _, impl := range []struct {
		name string
		fs   experimentalsys.FS
	}{{"sandboxfs", sandbox}, {"dirfs", sysfs.DirFS(dir)}} {
		for _, depth := range []string{"depth1", "depth6"} {
			p := paths[depth]
			b.Run(impl.name+"/"+depth, func(b *testing.B) {
				buf := make([]byte, 512)
				b.ReportAllocs()
				for b.Loop() {
					f, errno := impl.fs.OpenFile(p, experimentalsys.O_RDONLY, 0)
					if errno != 0 {
						b.Fatal(errno)
					}
					if n, errno := f.Read(buf); errno != 0 || n != 100 {
						b.Fatal(n, errno)
					}
					f.Close()
				}
			})
		}
	}
}
