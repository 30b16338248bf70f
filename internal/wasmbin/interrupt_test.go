package wasmbin

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
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

func withSize(body []byte) []byte { return b(u(uint32(len(body))), body) }

// run instantiates bin with wazero configured as the runner's
// (interruptible) and calls export with args under ctx.
func run(t *testing.T, ctx context.Context, bin []byte, export string, args ...uint64) ([]uint64, error) {
	t.Helper()
	rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true))
	defer rt.Close(context.Background())
	wasi_snapshot_preview1.MustInstantiate(context.Background(), rt)
	mod, err := rt.InstantiateWithConfig(context.Background(), bin, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	return mod.ExportedFunction(export).Call(ctx, args...)
}

// A call tree without a loop 2^62 calls large stops when its context is
// done, as a loop does: without the checks Interruptible adds, wazero
// never looks.
func TestInterruptibleStopsCallTree(t *testing.T) {
	out, err := Interruptible(callTree(62))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = run(t, ctx, out, "run")
	var exit *sys.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != sys.ExitCodeDeadlineExceeded {
		t.Fatalf("got %v, want the deadline's exit error", err)
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

// The fuel is a new global after the imported and defined ones, in a
// global section of its own placed where the format wants it when the
// module had none; every other section is copied.
func TestInterruptibleLayout(t *testing.T) {
	importGlobal := section(secImport, vec(b(str("env"), str("g"), 0x03, typeI32, 0x00), b(str("env"), str("f"), 0x00, 0)))
	types := section(secType, vec(b(0x60, 0x00, 0x00)))
	funcs := section(secFunction, vec(u(0)))
	code := section(secCode, vec(withSize(b(0x00, opGlobalGet, 0, 0x1a, end)))) // global.get 0; drop
	custom := section(secCustom, str("note"), "kept")
	for _, tt := range []struct {
		name string
		in   []byte
		fuel uint32 // the fuel's global index
	}{
		{"no globals", module(types, funcs, custom, code), 0},
		{"an imported global", module(types, importGlobal, funcs, code), 1},
		{"imported and defined", module(types, importGlobal, funcs,
			section(secGlobal, vec(b(typeI32, 0x00, opI32Const, 7, end), b(0x7e, 0x01, 0x42, 0, end))),
			section(secExport, vec(b(str("x"), 0x00, 1))), code), 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Interruptible(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if err := compile(out); err != nil {
				t.Fatalf("wazero refuses the output: %v", err)
			}
			inIDs, inContents := splitSections(t, tt.in)
			outIDs, outContents := splitSections(t, out)
			var globals []byte
			j := 0
			for i, id := range outIDs {
				switch {
				case id == secGlobal:
					globals = outContents[i]
					if j < len(inIDs) && inIDs[j] == secGlobal {
						j++
					}
				case id == secCode:
					j++
				default:
					if j >= len(inIDs) || inIDs[j] != id || string(inContents[j]) != string(outContents[i]) {
						t.Fatalf("section %d (id %d) is not the input's", i, id)
					}
					j++
				}
			}
			if j != len(inIDs) {
				t.Fatalf("sections %v from %v", outIDs, inIDs)
			}
			r := reader{b: globals}
			n, _ := r.u32()
			fuelDef := appendFuelGlobal(nil)
			if string(globals[len(globals)-len(fuelDef):]) != string(fuelDef) {
				t.Errorf("the global section does not end with the fuel: %x", globals)
			}
			imported := uint32(0)
			if tt.fuel > 0 {
				imported = 1
			}
			if imported+n-1 != tt.fuel {
				t.Errorf("fuel is global %d, want %d", imported+n-1, tt.fuel)
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
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	mod, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := mod.ExportedFunction("add").Call(ctx, 2); err != nil || int32(uint32(r[0])) != 2 {
		t.Fatalf("add(2) = %v %v", r, err)
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
