package wasmbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

const snapPrefix = "snap.g."

// snapModule is a module with a memory of 1 page, globals (an immutable
// i32, a mutable i32 and a mutable i64), an export section, the given
// extra code in its one function (exported as "f"), and data sections.
func snapModule(code []byte, extra ...[]byte) []byte {
	sections := [][]byte{
		section(secType, vec(funcType(nil, nil))),
		section(secFunction, vec(u(0))),
		section(secTable, vec(tableMax(1, 1))),
		section(secMemory, vec(b(0x00, 1))),
		section(secGlobal, vec(
			b(i32, 0x00, 0x41, 7, end),
			b(i32, 0x01, 0x41, 0x2a, end),
			b(i64, 0x01, 0x42, 0x05, end),
		)),
		section(secExport, vec(b(str("f"), 0x00, 0), b(str("memory"), 0x02, 0))),
	}
	sections = append(sections, extra...)
	return module(sections...)
}

func snapCode(code ...any) []byte { return section(secCode, vec(body(noLocals, b(code...)))) }

func dataSec(segs ...[]byte) []byte { return section(secData, vec(segs...)) }

// activeSeg is an active segment of memory 0 at offset (0..63), flags 0.
func activeSeg(offset int, data string) []byte {
	return b(0x00, 0x41, offset, end, str(data))
}

func TestSnapshottable(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)

	in := snapModule(nil,
		section(secDataCount, u(3)),
		snapCode(end),
		dataSec(
			activeSeg(3, "abc"),
			b(0x01, str("passive")),
			b(0x02, 0, 0x41, 0x20, end, str("at 32")),
		))
	checked, info := mustCheck(t, in)
	out, snap, err := Snapshottable(checked, info, snapPrefix)
	if err != nil {
		t.Fatal(err)
	}
	want := []Segment{{3, []byte("abc")}, {32, []byte("at 32")}}
	if len(snap.Data) != len(want) {
		t.Fatalf("segments %+v", snap.Data)
	}
	for i, s := range snap.Data {
		if s.Offset != want[i].Offset || !bytes.Equal(s.Data, want[i].Data) {
			t.Errorf("segment %d: %+v, want %+v", i, s, want[i])
		}
	}
	wantGlobals := []Global{{1, i32, snapPrefix + "1"}, {2, i64, snapPrefix + "2"}}
	if fmt.Sprint(snap.Globals) != fmt.Sprint(wantGlobals) || snap.MemoryMin != 1 {
		t.Errorf("globals %v, memory %d", snap.Globals, snap.MemoryMin)
	}

	// The original instance and the rewritten one, given its data and
	// globals by the host, are the same.
	orig, err := rt.Instantiate(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithName("rewritten"))
	if err != nil {
		t.Fatalf("the output does not instantiate: %v", err)
	}
	mem := mod.Memory()
	if b, _ := mem.Read(0, 64); !bytes.Equal(b, make([]byte, 64)) {
		t.Fatalf("the output's memory is not empty: %q", b)
	}
	for _, s := range snap.Data {
		mem.Write(s.Offset, s.Data)
	}
	ob, _ := orig.Memory().Read(0, orig.Memory().Size())
	nb, _ := mem.Read(0, mem.Size())
	if !bytes.Equal(ob, nb) {
		t.Error("memories differ")
	}
	for _, g := range snap.Globals {
		eg := mod.ExportedGlobal(g.Export)
		if eg == nil {
			t.Fatalf("global %d not exported", g.Index)
		}
		if _, ok := eg.(api.MutableGlobal); !ok {
			t.Errorf("global %d exported immutable", g.Index)
		}
	}
	if mod.ExportedGlobal(snapPrefix+"1").Get() != 0x2a || mod.ExportedGlobal(snapPrefix+"2").Get() != 5 {
		t.Error("exported globals do not have their initial values")
	}
	if mod.ExportedFunction("f") == nil || mod.ExportedMemory("memory") == nil {
		t.Error("the original exports are gone")
	}
}

// A module without data or mutable globals is returned as it was.
func TestSnapshottableNothingToDo(t *testing.T) {
	in := module(
		section(secType, vec(funcType(nil, nil))),
		section(secFunction, vec(u(0))),
		section(secMemory, vec(b(0x00, 1))),
		section(secExport, vec(b(str("f"), 0x00, 0))),
		snapCode(end),
	)
	checked, info := mustCheck(t, in)
	out, snap, err := Snapshottable(checked, info, snapPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, in) || len(snap.Data) != 0 || len(snap.Globals) != 0 {
		t.Errorf("changed: %x, %+v", out, snap)
	}
}

func TestSnapshottableRefusals(t *testing.T) {
	memory := section(secMemory, vec(b(0x00, 1)))
	typ := section(secType, vec(funcType(nil, nil)))
	fn := section(secFunction, vec(u(0)))
	code := snapCode(end)
	tests := []struct {
		name string
		bin  []byte
		want string
	}{
		{"start function", module(typ, fn, memory, section(secStart, u(0)), code), "start function"},
		{"memory.init", snapModule(nil, section(secDataCount, u(1)), snapCode(0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 8, 0, 0, end), dataSec(b(0x01, str("x")))), "reads data segments"},
		{"data.drop", snapModule(nil, section(secDataCount, u(1)), snapCode(0xfc, 9, 0, end), dataSec(b(0x01, str("x")))), "reads data segments"},
		{"table.set", snapModule(nil, snapCode(0x41, 0, 0xd0, funcref, 0x26, 0, end)), "changes tables"},
		{"table.grow", snapModule(nil, snapCode(0xd0, funcref, 0x41, 1, 0xfc, 15, 0, 0x1a, end)), "changes tables"},
		{"table.fill", snapModule(nil, snapCode(0x41, 0, 0xd0, funcref, 0x41, 0, 0xfc, 17, 0, end)), "changes tables"},
		{"imported global", module(typ, section(secImport, vec(b(str("m"), str("g"), 0x03, i32, 0x00))), fn, memory, code), "imports globals"},
		{"imported memory", module(typ, section(secImport, vec(b(str("m"), str("mem"), 0x02, 0x00, 1))), fn, code), "imports a memory"},
		{"no memory", module(typ, fn, code), "0 memories"},
		{"shared memory", module(typ, fn, section(secMemory, vec(b(0x03, 1, 1))), code), "shared"},
		{"mutable funcref global", module(typ, fn, memory, section(secGlobal, vec(b(funcref, 0x01, 0xd0, funcref, end))), code), "not a number"},
		{"offset from a global", snapModule(nil, code, dataSec(b(0x00, 0x23, 0, end, str("x")))), "not i32.const"},
		{"offset expression longer", snapModule(nil, code, dataSec(b(0x00, 0x41, 1, 0x41, 2, 0x6a, end, str("x")))), "more than an i32.const"},
		{"export name taken", module(typ, fn, memory, section(secGlobal, vec(b(i32, 0x01, 0x41, 0, end))), section(secExport, vec(b(str(snapPrefix+"0"), 0x00, 0))), code), "a name of the runner's"},
		{"no export section", module(typ, fn, memory, section(secGlobal, vec(b(i32, 0x01, 0x41, 0, end))), code), "no export section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checked, info := mustCheck(t, tt.bin)
			out, snap, err := Snapshottable(checked, info, snapPrefix)
			if !errors.Is(err, ErrNoSnapshot) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want ErrNoSnapshot saying %q", err, tt.want)
			}
			if out != nil || snap != nil {
				t.Error("output with an error")
			}
		})
	}
}

// FuzzSnapshottable: Snapshottable never panics, and what wazero compiles
// it rewrites into a module wazero compiles, with the data it took out
// inside the input.
func FuzzSnapshottable(f *testing.F) {
	f.Add(snapModule(nil, snapCode(end), dataSec(activeSeg(3, "abc"), b(0x01, str("p")))))
	f.Add(snapModule(nil, section(secDataCount, u(1)), snapCode(end), dataSec(activeSeg(0, "x"))))
	f.Add(everything)
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	compiles := func(bin []byte) (ok bool) {
		defer func() {
			if recover() != nil {
				ok = false
			}
		}()
		m, err := rt.CompileModule(ctx, bin)
		if err == nil {
			m.Close(ctx)
		}
		return err == nil
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checked, info, err := Check(in, Limits{})
		if err != nil {
			return
		}
		out, snap, err := Snapshottable(checked, info, snapPrefix)
		if err != nil {
			if !errors.Is(err, ErrNoSnapshot) || out != nil || snap != nil {
				t.Fatalf("error %v with output", err)
			}
			return
		}
		for _, s := range snap.Data {
			if !bytes.Contains(in, s.Data) {
				t.Fatalf("segment %+v is not in the input", s)
			}
		}
		if len(in) <= fuzzCompileMax && compiles(checked) && !compiles(out) {
			t.Fatalf("wazero compiles the input but not the output")
		}
	})
}
