package wasmbin

import (
	"context"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
)

// fuzzCompileMax bounds the inputs FuzzCheck gives wazero, to stay fast.
const fuzzCompileMax = 2048

// FuzzCheck: Check never panics; what it accepts is well-formed for it (its
// output checks unchanged, with no table left without maximum); and wazero
// compiles the output exactly when it compiles the input.
func FuzzCheck(f *testing.F) {
	for _, c := range refusals {
		f.Add(c.bin)
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
			if tb.Capped || tb.Min != info.Tables[i].Min || tb.Max != info.Tables[i].Max {
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
