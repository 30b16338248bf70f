package modules

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/resource"
)

// TestMain runs the compiler child when a test's registry re-runs the
// test binary as its compiler (SelfCompiler), as cmd/wasmrunner's main
// does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == CompilerCommand {
		os.Exit(RunCompiler(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// A small builder of WebAssembly binaries.

func leb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func wasmSection(id byte, body ...[]byte) []byte {
	c := cat(body...)
	return cat([]byte{id}, leb(uint64(len(c))), c)
}

func wasmName(s string) []byte { return cat(leb(uint64(len(s))), []byte(s)) }

var wasmPreamble = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

// handlerModule is a minimal reactor handler: a 1-page memory exported as
// "memory" and wasmrunner_step (i32) -> i32 returning 0. With tableMin >=
// 0 it defines a funcref table of tableMin elements, growing to tableMax
// (< 0: no maximum declared). tag goes to a custom section: modules with
// different tags are different versions of the same code.
func handlerModule(tableMin, tableMax int64, tag string) []byte {
	var table []byte
	if tableMin >= 0 {
		limits := cat([]byte{0}, leb(uint64(tableMin)))
		if tableMax >= 0 {
			limits = cat([]byte{1}, leb(uint64(tableMin)), leb(uint64(tableMax)))
		}
		table = wasmSection(4, []byte{1, 0x70}, limits)
	}
	body := []byte{0, 0x41, 0, 0x0b} // no locals; i32.const 0; end
	return cat(wasmPreamble,
		wasmSection(1, []byte{1, 0x60, 1, 0x7f, 1, 0x7f}),
		wasmSection(3, []byte{1, 0}),
		table,
		wasmSection(5, []byte{1, 0, 1}),
		wasmSection(7, []byte{2}, wasmName("memory"), []byte{2, 0}, wasmName("wasmrunner_step"), []byte{0, 0}),
		wasmSection(10, []byte{1}, leb(uint64(len(body))), body),
		wasmSection(0, wasmName("tag"), []byte(tag)),
	)
}

// oneFunctionModule is a module of one (i32) -> i32 function whose body
// is about size bytes of what body appends, step by step.
func oneFunctionModule(size int, locals byte, step func(b []byte, k int) []byte, end func(b []byte) []byte) []byte {
	b := []byte{1, locals, 0x7f}
	for k := 0; len(b) < size; k++ {
		b = step(b, k)
	}
	b = end(b)
	return cat(wasmPreamble,
		wasmSection(1, []byte{1, 0x60, 1, 0x7f, 1, 0x7f}),
		wasmSection(3, []byte{1, 0}),
		wasmSection(10, []byte{1}, leb(uint64(len(b))), b),
	)
}

// memoryHog is a module that wazero's compiler needs ~290 bytes of memory
// per byte to compile (2.3 MB, from pushBytes 2e6: 660 MB in ~4 s): one
// function pushing values that all stay live until its end.
func memoryHog(pushBytes int) []byte {
	n := 0
	return oneFunctionModule(pushBytes, 0, func(b []byte, k int) []byte {
		n++
		b = append(b, 0x20, 0, 0x41) // local.get 0; i32.const k; i32.add
		b = sleb(b, int64(k))
		return append(b, 0x6a)
	}, func(b []byte) []byte {
		for ; n > 1; n-- {
			b = append(b, 0x6a) // i32.add
		}
		return append(b, 0x0b)
	})
}

// slowToCompile is a module of size bytes that takes wazero's compiler
// about a minute per MB: one function of branches over 64 locals.
func slowToCompile(size int) []byte {
	const nl = 64
	return oneFunctionModule(size, nl, func(b []byte, k int) []byte {
		a, c, d := byte(k%(nl+1)), byte((k*7+3)%(nl+1)), byte((k*13+5)%nl+1)
		// if (local a) { local d = a + c } else { local d = c * k }
		b = append(b, 0x20, a, 0x04, 0x40, 0x20, a, 0x20, c, 0x6a, 0x21, d, 0x05, 0x20, c, 0x41)
		b = sleb(b, int64(k))
		return append(b, 0x6c, 0x21, d, 0x0b)
	}, func(b []byte) []byte {
		return append(b, 0x20, 1, 0x0b)
	})
}

// writeModules writes NAME.wasm files into a new dir.
func writeModules(t testing.TB, mods map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, bin := range mods {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), bin, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// logBuffer collects an operator log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openTimed opens a registry of dir and fails the test unless it returns
// within limit.
func openTimed(t *testing.T, cfg Config, limit time.Duration) *Registry {
	t.Helper()
	start := time.Now()
	type opened struct {
		r   *Registry
		err error
	}
	done := make(chan opened, 1)
	go func() {
		r, err := Open(context.Background(), cfg)
		done <- opened{r, err}
	}()
	// A hang guard, not a speed check: limit is what Open takes on an
	// idle machine, and a loaded one may take several times that.
	var o opened
	select {
	case o = <-done:
	case <-time.After(limit + 2*time.Minute):
		t.Fatalf("Open did not return within %v: it is blocked", limit+2*time.Minute)
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	t.Cleanup(func() { o.r.Close(context.Background()) })
	t.Logf("Open took %v (%v expected on an idle machine)", time.Since(start).Round(time.Millisecond), limit)
	return o.r
}

// childConfig is a registry config that compiles in the compiler child
// (this test binary) into a new cache dir.
func childConfig(t testing.TB, dir string, compile resource.CompileLimits) Config {
	t.Helper()
	compiler, err := SelfCompiler()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Dir: dir, CacheDir: t.TempDir(), Compiler: compiler,
		Process: resource.NewProcess(resource.ProcessConfig{Compile: compile}),
	}
}

// testObserver records cache sizes.
type testObserver struct {
	mu    sync.Mutex
	sizes []int64
}

func (o *testObserver) ModuleCompiled(string, time.Duration)     {}
func (o *testObserver) ModuleInstantiated(string, time.Duration) {}
func (o *testObserver) ManifestCut(string, []resource.Cut)       {}
func (o *testObserver) ResourceDenied(string, string)            {}
func (o *testObserver) GuestsOutlived(string, int64)             {}
func (o *testObserver) CacheSize(n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sizes = append(o.sizes, n)
}

func (o *testObserver) last() (int64, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.sizes) == 0 {
		return -1, 0
	}
	return o.sizes[len(o.sizes)-1], len(o.sizes)
}
