package wasmbin

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// fuzzCompileMax bounds the inputs FuzzCheck gives wazero, to stay fast.
const fuzzCompileMax = 2048

// FuzzCheck: Check never panics; what it accepts is well-formed for it (its
// output checks unchanged, with no table left without maximum, the same
// tables grown); wazero compiles the output exactly when it compiles the
// input; and what wazero compiles, Check does not refuse in the code
// section (the instruction walker reads all wazero reads), but for select
// of a (ref ...) type.
func FuzzCheck(f *testing.F) {
	for _, c := range refusals {
		f.Add(c.bin)
	}
	for _, c := range walks {
		f.Add(walkModule(c.code))
	}
	f.Add(everything)
	f.Add(growModule)
	f.Add(withFunc(section(secTable, vec(tableNoMax(1), tableMax(2, 3), b(0x40, 0x00, funcref, 0x00, 5, 0xd2, 0, end)))))
	f.Add(withFunc(section(secTable, vec(b(funcref, 0x00, 0x85, 0x80, 0x00)))))

	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	compileErr := func(bin []byte) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("wazero panicked: %v", p)
			}
		}()
		m, err := rt.CompileModule(ctx, bin)
		if err == nil {
			m.Close(ctx)
		}
		return err
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		out, info, err := Check(in, Limits{})
		if err != nil {
			if out != nil {
				t.Fatalf("output with error %v", err)
			}
			// Refused by the walker alone (and then safe to compile)?
			walkOnly := func() bool {
				c := checker{lim: Limits{}.withDefaults(), noWalk: true}
				return c.module(in) == nil
			}
			if len(in) <= fuzzCompileMax && !strings.Contains(err.Error(), "validates and compiles differently") &&
				walkOnly() && compileErr(in) == nil {
				t.Fatalf("wazero compiles what the walker refuses: %v", err)
			}
			return
		}
		capped := false
		for _, tb := range info.Tables {
			capped = capped || tb.Capped
		}
		if !capped && &out[0] != &in[0] {
			t.Fatalf("no table capped, yet out is not its input")
		}
		again, info2, err := Check(out, Limits{})
		if err != nil {
			t.Fatalf("Check refuses its output %x: %v", out, err)
		}
		if &again[0] != &out[0] {
			t.Fatalf("Check rewrites its output %x", out)
		}
		if len(info2.Tables) != len(info.Tables) {
			t.Fatalf("tables %+v became %+v", info.Tables, info2.Tables)
		}
		for i, tb := range info2.Tables {
			if tb.Capped || tb.Min != info.Tables[i].Min || tb.Max != info.Tables[i].Max || tb.Grows != info.Tables[i].Grows {
				t.Fatalf("table %d %+v became %+v", i, info.Tables[i], tb)
			}
		}
		if len(in) > fuzzCompileMax {
			return
		}
		errIn := compileErr(in)
		if !capped {
			return
		}
		if errOut := compileErr(out); (errIn == nil) != (errOut == nil) {
			t.Fatalf("wazero: input %v, output %v", errIn, errOut)
		}
	})
}

// FuzzWalk fuzzes one function body in walkModule (where all it may name
// exists): what wazero compiles, the walker does not refuse (but for
// select of a (ref ...) type); and wazero does not panic compiling what
// Check accepts (wazero's compiler panicking on what its validator passed
// is how their disagreement on select showed: the walker reads as the
// validator does, and they had better agree).
func FuzzWalk(f *testing.F) {
	for _, c := range walks {
		f.Add(c.code)
	}
	f.Add(b(0x1c, 1, 0x63, 0x70, end))
	f.Add(b(0x02, 0x80, 0x80, 0x80, 0x80, 0x80, end, end))

	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)

	f.Fuzz(func(t *testing.T, code []byte) {
		bin := walkModule(code)
		_, _, err := Check(bin, Limits{})
		if err != nil && strings.Contains(err.Error(), "validates and compiles differently") {
			return
		}
		var cerr error
		func() {
			defer func() {
				if p := recover(); p != nil && err == nil {
					t.Fatalf("wazero panics compiling what Check accepts: %v", p)
				}
			}()
			var m wazero.CompiledModule
			if m, cerr = rt.CompileModule(ctx, bin); cerr == nil {
				m.Close(ctx)
			}
		}()
		if err != nil && cerr == nil {
			t.Fatalf("wazero compiles what Check refuses: %v", err)
		}
	})
}
