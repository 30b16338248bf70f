package modules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/sandboxfs"
)

// benchModule loads a test guest as module name from a temp dir, with a
// compilation cache in cacheDir if set.
func benchModule(b *testing.B, guest string, cacheDir string) *module {
	b.Helper()
	return benchModuleCache(b, filepath.Join("..", "..", "testdata", "guests", guest+".wasm"), cacheDir)
}

// benchModuleFile loads the module at src.
func benchModuleFile(b *testing.B, src string) *module {
	b.Helper()
	return benchModuleCache(b, src, "")
}

func benchModuleCache(b *testing.B, src string, cacheDir string) *module {
	b.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		b.Skipf("%s missing: run scripts/build-guests", src)
	}
	dir := b.TempDir()
	guest := "m"
	if err := os.WriteFile(filepath.Join(dir, guest+".wasm"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	r, err := Open(context.Background(), Config{Dir: dir, CacheDir: cacheDir})
	if err != nil {
		b.Fatal(err)
	}
	m := r.modules[guest]
	if m == nil {
		b.Fatalf("%s not loaded: %v", guest, r.Problems())
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	return m
}

// BenchmarkInstance measures one job's instance: instantiate, run a
// one-line step, close. B/op is the memory a job's instance costs.
func BenchmarkInstance(b *testing.B) {
	for _, guest := range []string{"probe", "cmd"} {
		b.Run(guest, func(b *testing.B) {
			m := benchModule(b, guest, "")
			env := &hostfuncs.Env{Log: io.Discard, Script: []string{"e hi"}, Stop: context.Background()}
			ctx := hostfuncs.WithEnv(context.Background(), env)
			fsys, err := sandboxfs.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer fsys.Close()
			cfg := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStartFunctions().
				WithFSConfig(sandboxfs.Mount(wazero.NewFSConfig(), fsys, "/"))
			if !m.reactor {
				cfg = cfg.WithStartFunctions(abi.ExportStart)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				inst, err := m.runtime.InstantiateModule(ctx, m.compiled, cfg)
				var exit *sys.ExitError
				if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 0) {
					b.Fatal(err)
				}
				if m.reactor {
					if _, err := inst.ExportedFunction(abi.ExportStep).Call(ctx, 0); err != nil {
						b.Fatal(err)
					}
				}
				if inst != nil {
					inst.Close(ctx)
				}
			}
		})
	}
}

// BenchmarkColdStart measures loading (validating and compiling) a module
// with no compilation cache and with a warm on-disk cache.
func BenchmarkColdStart(b *testing.B) {
	for _, guest := range []string{"probe", "cmd"} {
		b.Run(guest+"/no-cache", func(b *testing.B) {
			for range b.N {
				m := benchModule(b, guest, "")
				m.retire()
			}
		})
		b.Run(guest+"/warm-cache", func(b *testing.B) {
			dir := b.TempDir()
			benchModule(b, guest, dir).retire()
			b.ResetTimer()
			for range b.N {
				benchModule(b, guest, dir).retire() // as a new process would
			}
		})
	}
}

// BenchmarkInstanceAllocator compares instantiating with wazero's own
// memory (Go heap) and with the charged allocator (a reserved mapping).
func BenchmarkInstanceAllocator(b *testing.B) {
	for _, name := range []string{"shell", "probe"} {
		for _, charged := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/charged=%v", name, charged), func(b *testing.B) {
				var m *module
				if name == "shell" {
					m = benchModuleFile(b, "../../examples/modules/shell.wasm")
				} else {
					m = benchModule(b, name, "")
				}
				env := &hostfuncs.Env{Log: io.Discard, Script: []string{"echo hi"}, Stop: context.Background()}
				ctx := hostfuncs.WithEnv(context.Background(), env)
				if charged {
					ctx = withMemory(ctx, resource.NewPool("bench", 1<<30, nil))
				}
				cfg := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStartFunctions("_initialize")
				if _, ok := m.compiled.ExportedFunctions()["_initialize"]; !ok {
					cfg = cfg.WithStartFunctions()
				}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					inst, err := m.runtime.InstantiateModule(ctx, m.compiled, cfg)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := inst.ExportedFunction(abi.ExportStep).Call(ctx, 0); err != nil {
						b.Fatal(err)
					}
					inst.Close(ctx)
				}
			})
		}
	}
}
