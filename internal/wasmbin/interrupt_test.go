package wasmbin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

const (
	opCall      = 0x10
	opGlobalGet = 0x23
	opGlobalSet = 0x24
	opI32Const  = 0x41
	opI32Add    = 0x6a
	opIf        = 0x04
	opElse      = 0x05
	opI32LtS    = 0x48
	opI32Sub    = 0x6b
	opLocalGet  = 0x20
	typeEmpty   = 0x40
	typeI32     = 0x7f
)

// callTree is a module without a loop that runs for ever in practice:
// function i calls function i+1 twice, depth deep; the last adds one to
// global 0 (a counter, mutable i32), which "run" (function 0) returns.
func callTree(depth int) []byte {
	types := vec(b(0x60, 0x00, 0x01, typeI32), b(0x60, 0x00, 0x00)) // () -> i32, () -> ()
	funcs := [][]byte{u(0)}
	bodies := [][]byte{withSize(b(0x00, opCall, u(1), opGlobalGet, 0, end))}
	for i := 1; i < depth; i++ {
		funcs = append(funcs, u(1))
		bodies = append(bodies, withSize(b(0x00, opCall, u(uint32(i+1)), opCall, u(uint32(i+1)), end)))
	}
	funcs = append(funcs, u(1))
	bodies = append(bodies, withSize(b(0x00, opGlobalGet, 0, opI32Const, 1, opI32Add, opGlobalSet, 0, end)))
	return module(
		section(secType, types),
		section(secFunction, vec(funcs...)),
		section(secGlobal, vec(b(typeI32, 0x01, opI32Const, 0, end))),
		section(secExport, vec(b(str("run"), 0x00, 0))),
		section(secCode, vec(bodies...)),
	)
}

// fib is a module without a global section exporting fib(n) (i32) ->
// i32, recursive, without a loop.
func fib() []byte {
	body := b(0x00,
		opLocalGet, 0, opI32Const, 2, opI32LtS,
		opIf, typeI32, opLocalGet, 0,
		opElse,
		opLocalGet, 0, opI32Const, 1, opI32Sub, opCall, 0,
		opLocalGet, 0, opI32Const, 2, opI32Sub, opCall, 0,
		opI32Add,
		end, end)
	return module(
		section(secType, vec(b(0x60, 0x01, typeI32, 0x01, typeI32))),
		section(secFunction, vec(u(0))),
		section(secExport, vec(b(str("fib"), 0x00, 0))),
		section(secCode, vec(withSize(body))),
	)
}

// loops is a module exporting sum(n) (i32) -> i32, 0+1+...+n-1 by a loop,
// and spin (i32) -> i32, a loop without end.
func loops() []byte {
	sum := b(0x01, 0x02, typeI32, // i, acc
		0x02, typeEmpty, 0x03, typeEmpty,
		opLocalGet, 1, opLocalGet, 0, 0x4e, 0x0d, 1, // i >= n: br_if 1
		opLocalGet, 2, opLocalGet, 1, opI32Add, 0x21, 2,
		opLocalGet, 1, opI32Const, 1, opI32Add, 0x21, 1,
		0x0c, 0, end, end,
		opLocalGet, 2, end)
	spin := b(0x00, 0x03, typeEmpty, 0x0c, 0, end, opLocalGet, 0, end)
	return module(
		section(secType, vec(b(0x60, 0x01, typeI32, 0x01, typeI32))),
		section(secFunction, vec(u(0), u(0))),
		section(secExport, vec(b(str("sum"), 0x00, 0), b(str("spin"), 0x00, 1))),
		section(secCode, vec(withSize(sum), withSize(spin))),
	)
}

func withSize(body []byte) []byte { return b(u(uint32(len(body))), body) }

// newRuntime is a runtime configured as the runner's (wazero's own checks
// off) with WASI and a check that ends the call when its context is done,
// as the runner's does, closed with the test.
func newRuntime(t *testing.T) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	t.Cleanup(func() { rt.Close(ctx) })
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	_, err := rt.NewHostModuleBuilder(InterruptModule).NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, _ []uint64) {
			if ctx.Err() != nil {
				_ = m.CloseWithExitCode(context.Background(), sys.ExitCodeDeadlineExceeded)
				panic(sys.NewExitError(sys.ExitCodeDeadlineExceeded))
			}
		}), nil, nil).Export(InterruptFunc).Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// run instantiates bin in a newRuntime and calls export with args under
// ctx.
func run(t *testing.T, ctx context.Context, bin []byte, export string, args ...uint64) ([]uint64, error) {
	t.Helper()
	rt := newRuntime(t)
	mod, err := rt.InstantiateWithConfig(context.Background(), bin, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	return mod.ExportedFunction(export).Call(ctx, args...)
}

// A call tree without a loop 2^62 calls large, and a loop, stop when
// their context is done (with wazero's own checks off, and wazero never
// checks code without a loop).
func TestInterruptibleStopsCallTree(t *testing.T) {
	for _, tt := range []struct {
		name, export string
		bin          []byte
	}{{"call tree", "run", callTree(62)}, {"loop", "spin", loops()}} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Interruptible(tt.bin)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			args := []uint64{0}
			if tt.export == "run" {
				args = nil
			}
			_, err = run(t, ctx, out, tt.export, args...)
			var exit *sys.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != sys.ExitCodeDeadlineExceeded {
				t.Fatalf("got %v, want the deadline's exit error", err)
			}
		})
	}
}

// Instrumented code computes what it did: a small call tree, and a
// recursion of 240,000 calls (the fuel runs out, and is refilled, many
// times).
func TestInterruptibleSameResults(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name, export string
		bin          []byte
		args         []uint64
		want         uint64
	}{
		{"call tree", "run", callTree(12), nil, 1 << 11},
		{"fib", "fib", fib(), []uint64{25}, 75025},
		{"loop", "sum", loops(), []uint64{50000}, 1249975000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Interruptible(tt.bin)
			if err != nil {
				t.Fatal(err)
			}
			for _, bin := range [][]byte{tt.bin, out} {
				res, err := run(t, ctx, bin, tt.export, tt.args...)
				if err != nil || res[0] != tt.want {
					t.Fatalf("got %v %v, want %d", res, err, tt.want)
				}
			}
		})
	}
}

// The check is imported after the module's imports, the fuel is a global
// after its globals, in sections of their own placed where the format
// wants them when the module had none; the module's functions move up by
// one, and its exports (and globals) stay what they were.
func TestInterruptibleLayout(t *testing.T) {
	imports := section(secImport, vec(b(str("env"), str("g"), 0x03, typeI32, 0x00), b(str("env"), str("f"), 0x00, 0)))
	types := section(secType, vec(b(0x60, 0x00, 0x00)))
	funcs := section(secFunction, vec(u(0), u(0)))
	code := section(secCode, vec(withSize(b(0x00, opGlobalGet, 0, 0x1a, end)), withSize(b(0x00, opCall, 1, end))))
	custom := b(section(secCustom, str("note"), "kept"), section(secCustom, str(".debug_line"), "dropped"))
	exports := section(secExport, vec(b(str("first"), 0x00, 1), b(str("second"), 0x00, 2)))
	exportsGlobal := section(secExport, vec(b(str("first"), 0x00, 1), b(str("second"), 0x00, 2), b(str("x"), 0x03, 1)))
	for _, tt := range []struct {
		name    string
		in      []byte
		globals int // the module's (imported and defined): the fuel is the next
	}{
		{"no imports or globals", module(types, section(secFunction, vec(u(0))), custom, section(secExport, vec(b(str("first"), 0x00, 0))),
			section(secCode, vec(withSize(b(0x00, end))))), 0},
		{"imports", module(types, imports, funcs, exports, code), 1},
		{"imports and globals", module(types, imports, funcs,
			section(secGlobal, vec(b(typeI32, 0x00, opI32Const, 7, end), b(0x7e, 0x01, 0x42, 0, end))), exportsGlobal, code), 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Interruptible(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			in, err := rt.CompileModule(ctx, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rt.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("wazero refuses the output: %v", err)
			}
			imp := got.ImportedFunctions()
			if n := len(in.ImportedFunctions()); len(imp) != n+1 {
				t.Fatalf("%d imported functions, want %d", len(imp), n+1)
			}
			if mod, name, _ := imp[len(imp)-1].Import(); mod != InterruptModule || name != InterruptFunc {
				t.Errorf("last import %s.%s", mod, name)
			}
			for name, f := range in.ExportedFunctions() {
				g := got.ExportedFunctions()[name]
				if g == nil || g.Index() != f.Index()+1 {
					t.Errorf("export %s: function %d, want %d", name, g.Index(), f.Index()+1)
				}
			}
			ids, contents := splitSections(t, out)
			for i, id := range ids {
				if id == secGlobal {
					r := reader{b: contents[i]}
					n, _ := r.u32()
					imported := map[bool]uint32{true: 1}[tt.globals > 0]
					if int(imported+n-1) != tt.globals {
						t.Errorf("fuel is global %d, want %d", imported+n-1, tt.globals)
					}
				}
				if id == secCustom && string(contents[i]) != string(b(str("note"), "kept")) {
					t.Errorf("custom section %q kept or changed", contents[i])
				}
			}
		})
	}
	noCode := module(types)
	if out, err := Interruptible(noCode); err != nil || string(out) != string(noCode) {
		t.Errorf("a module without code: %x %v", out, err)
	}
}

// The repo's real modules (the Rust shell, C and WAT guests, a Go
// reactor) compile once instrumented, and the Go reactor still runs.
func TestInterruptibleRealModules(t *testing.T) {
	mods := realModules(t)
	mods["goreactor"] = buildGoReactor(t)
	for name, in := range mods {
		checked, _, err := Check(in, Limits{})
		if err != nil {
			continue // refused before instrumenting (test guests of refusals)
		}
		out, err := Interruptible(checked)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := compile(out); err != nil {
			t.Errorf("%s: wazero refuses the instrumented module: %v", name, err)
		}
	}
	out, err := Interruptible(mustCheckOut(t, buildGoReactor(t)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := newRuntime(t)
	// The name section follows the renumbering: the exports keep their
	// functions' names.
	in, err := rt.CompileModule(ctx, mustCheckOut(t, buildGoReactor(t)))
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := rt.CompileModule(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range in.ExportedFunctions() {
		if g := compiled.ExportedFunctions()[name]; g == nil || g.Name() != f.Name() || g.Name() == "" {
			t.Errorf("export %s: function named %q, want %q", name, g.Name(), f.Name())
		}
	}
	mod, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := mod.ExportedFunction("add").Call(ctx, 2); err != nil || int32(uint32(r[0])) != 2 {
		t.Fatalf("add(2) = %v %v", r, err)
	}
}

// A module of empty loops, which would grow eightfold, is refused with a
// limit error rather than rewritten in the runner's memory.
func TestInterruptibleLoopBomb(t *testing.T) {
	const loops = 100_000
	body := b(0x00)
	for range loops {
		body = append(body, 0x03, typeEmpty, end)
	}
	body = append(body, end)
	bin := module(
		section(secType, vec(b(0x60, 0x00, 0x00))),
		section(secFunction, vec(u(0))),
		section(secCode, vec(withSize(body))),
	)
	_, err := Interruptible(bin)
	var le *LimitError
	if !errors.As(err, &le) || le.What != "instrumented size" || !strings.Contains(err.Error(), "interruption checks") {
		t.Fatalf("got %v, want the instrumented size's limit error", err)
	}
	if le.Limit != uint64(maxInstrumented(len(bin))) || le.Got <= le.Limit {
		t.Errorf("limit error %+v", le)
	}
}

func mustCheckOut(t *testing.T, in []byte) []byte {
	t.Helper()
	out, _ := mustCheck(t, in)
	return out
}

// FuzzInterruptible: Interruptible never panics on what Check accepts,
// and wazero compiles its output whenever it compiles its input.
func FuzzInterruptible(f *testing.F) {
	f.Add(callTree(3))
	f.Add(fib())
	for _, c := range walks {
		f.Add(walkModule(c.code))
	}
	f.Add(everything)
	f.Fuzz(func(t *testing.T, in []byte) {
		checked, _, err := Check(in, Limits{})
		if err != nil {
			return
		}
		out, err := Interruptible(checked)
		if err != nil {
			return
		}
		if len(checked) <= fuzzCompileMax && compileSafely(checked) == nil {
			if err := compileSafely(out); err != nil {
				t.Fatalf("wazero compiles the input, not the output: %v\nin  %x\nout %x", err, checked, out)
			}
		}
	})
}

// compileSafely is compile, with a panic of wazero's an error.
func compileSafely(bin []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = errors.New("wazero panicked")
		}
	}()
	return compile(bin)
}
