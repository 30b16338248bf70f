package modules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/goguest"
	"github.com/wasmrunner/wasmrunner/internal/sandboxfs"
)

// benchModule loads a test guest as module name from a temp dir, with a
// compilation cache in cacheDir if set.
func benchModule(b *testing.B, guest string, cacheDir string) *module {
	b.Helper()
	return benchModuleCache(b, filepath.Join("..", "..", "testdata", "guests", guest+".wasm"), cacheDir)
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

// copyData is the manifest of a module whose instances get a copy of its
// data segments each (no image of them): wazero's own memory cannot map
// one.
const copyData = "[start]\nsnapshot = false\n"

// benchModuleManifest loads the module at src with manifest.
func benchModuleManifest(b *testing.B, src, manifest string) *module {
	b.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		b.Skipf("%s missing: run scripts/build-guests", src)
	}
	return benchModuleBytes(b, data, manifest)
}

// BenchmarkInstance measures one job's instance: instantiate, run a
// one-line step, close. B/op is the memory a job's instance costs. The
// memory is wazero's (see BenchmarkInstanceAllocator for the runner's).
func BenchmarkInstance(b *testing.B) {
	for _, guest := range []string{"probe", "cmd"} {
		b.Run(guest, func(b *testing.B) {
			m := benchModuleManifest(b, filepath.Join("..", "..", "testdata", "guests", guest+".wasm"), copyData)
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
// memory (Go heap), with the charged allocator (a reserved mapping) and
// the data segments copied, and with the charged allocator mapping the
// data segments from the module's image (what jobs do).
func BenchmarkInstanceAllocator(b *testing.B) {
	for _, name := range []string{"shell", "probe"} {
		for _, mode := range []string{"wazero", "charged", "image"} {
			b.Run(name+"/"+mode, func(b *testing.B) {
				src := "../../examples/modules/shell.wasm"
				if name != "shell" {
					src = filepath.Join("..", "..", "testdata", "guests", name+".wasm")
				}
				manifest := copyData
				if mode == "image" {
					manifest = ""
				}
				m := benchModuleManifest(b, src, manifest)
				if (m.image() != nil) != (mode == "image") {
					b.Fatalf("image: %v", m.image() != nil)
				}
				env := &hostfuncs.Env{Log: io.Discard, Script: []string{"echo hi"}, Stop: context.Background()}
				ctx := hostfuncs.WithEnv(context.Background(), env)
				if mode != "wazero" {
					ctx = withMemory(ctx, resource.NewPool("bench", 1<<30, nil), m.image(), nil)
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

// BenchmarkGoInstance measures a job's instance of a Go handler (built as
// authors build them, against the Go SDK), started from the module's
// snapshot (with no job variables, or 60 in its environment) or
// initialized (its data segments written, _initialize run, as every job's
// was before snapshots): instantiate, run a one-line step,
// close. private-B/instance is the private memory (Private_Dirty of the
// process) each of 16 instances alive at once adds, after its step.
func BenchmarkGoInstance(b *testing.B) {
	wasm := goguest.Module(b, goguest.SDK, true)
	for _, run := range []struct {
		mode string
		vars int
	}{{"snapshot", 0}, {"snapshot", 60}, {"initialize", 0}} {
		mode := run.mode
		b.Run(fmt.Sprintf("%s/vars=%d", mode, run.vars), func(b *testing.B) {
			manifest := ""
			if mode == "initialize" {
				manifest = "[start]\nsnapshot = false\n"
			}
			m := benchModuleBytes(b, wasm, manifest)
			if (m.image() != nil) != (mode == "snapshot") {
				b.Fatalf("snapshot: %v", m.image() != nil)
			}
			// The module's memory limit, as a job's pool has: it sizes the
			// memory's reservation, and so whether a freed one is kept.
			pool := resource.NewPool("bench", m.limits.Memory, nil)
			// The SDK makes the job's variables the process environment
			// (os.Getenv) at each step: a GitLab job has 60 to 100.
			env := &hostfuncs.Env{Log: io.Discard, Script: []string{"hi"}, Stop: context.Background(), Environ: jobEnviron(run.vars)}
			ctx := withMemory(hostfuncs.WithEnv(context.Background(), env), pool, m.image(), nil)
			fsys, err := sandboxfs.New(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer fsys.Close()
			cfg := instanceConfig(ctx, m.name, io.Discard, snapshotFS(fsys, nil), nil)
			if m.start == nil { // loaded as it was: instantiation initializes
				cfg = cfg.WithStartFunctions(abi.ExportInitialize)
			}
			run := func() api.Module {
				inst, err := m.runtime.InstantiateModule(ctx, m.compiled, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if m.start != nil {
					if err := m.start.start(ctx, inst, io.Discard); err != nil {
						b.Fatal(err)
					}
				}
				if res, err := inst.ExportedFunction(abi.ExportStep).Call(ctx, 0); err != nil || res[0] != 0 {
					b.Fatal(res, err)
				}
				return inst
			}
			const live = 16
			run().Close(ctx)
			runtime.GC()
			before := privateDirty(b)
			var insts []api.Module
			for range live {
				insts = append(insts, run())
			}
			after := privateDirty(b)
			for _, inst := range insts {
				inst.Close(ctx)
			}
			b.ReportAllocs()
			b.ResetTimer()
			user, sys := cpuTime()
			for range b.N {
				run().Close(ctx)
			}
			user2, sys2 := cpuTime()
			b.ReportMetric(float64(user2-user)/float64(b.N), "user-ns/op")
			b.ReportMetric(float64(sys2-sys)/float64(b.N), "sys-ns/op")
			b.ReportMetric(float64(after-before)/live, "private-B/instance")
		})
	}
}

// jobEnviron returns n variables ("KEY=value") shaped like GitLab's
// predefined ones: CI_ names of ~20 bytes, values of ~40.
func jobEnviron(n int) []string {
	env := make([]string, n)
	for i := range env {
		env[i] = fmt.Sprintf("CI_PREDEFINED_VAR_%02d=https://gitlab.example.com/group/project/%04d", i, i)
	}
	return env
}

// cpuTime is the CPU time (user, system) the process has used, in ns: on
// a shared machine, a steadier measure than the wall time.
func cpuTime() (user, sys int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return ru.Utime.Nano(), ru.Stime.Nano()
}

// privateDirty is the process's Private_Dirty memory, in bytes.
func privateDirty(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		b.Skip("no /proc/self/smaps_rollup")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Private_Dirty:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Skip("no Private_Dirty")
	return 0
}

// benchModuleBytes loads the module bin with a manifest ("": none).
func benchModuleBytes(b testing.TB, bin []byte, manifest string) *module {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.wasm"), bin, 0o644); err != nil {
		b.Fatal(err)
	}
	if manifest != "" {
		if err := os.WriteFile(filepath.Join(dir, "m.toml"), []byte(manifest), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	r, err := Open(context.Background(), Config{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	m := r.modules["m"]
	if m == nil {
		b.Fatalf("not loaded: %v", r.Problems())
	}
	return m
}
