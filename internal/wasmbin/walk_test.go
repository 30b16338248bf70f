package wasmbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// walkModule is a module whose one function (type 0, () -> (), one i32
// local, exported as "f") has the given code, with all its instructions may
// name: types 0 and 1, (i32) -> i32; tables 0 and 1 (funcref, 1 element, no
// maximum); a memory of 1 page; a mutable i32 global; a passive element
// segment holding function 0 (which declares it for ref.func); a passive
// data segment.
func walkModule(code ...any) []byte {
	return module(
		section(secType, vec(funcType(nil, nil), funcType([]byte{i32}, []byte{i32}))),
		section(secFunction, vec(u(0))),
		section(secTable, vec(tableNoMax(1), tableNoMax(1))),
		section(secMemory, vec(b(0x00, 1))),
		section(secGlobal, vec(b(i32, 1, 0x41, 0, end))),
		section(secExport, vec(b(str("f"), 0, 0))),
		section(secElement, vec(b(1, 0, vec(u(0))))),
		section(secDataCount, u(1)),
		section(secCode, vec(body(b(1, 1, i32), code...))),
		section(secData, vec(b(1, str("x")))),
	)
}

// v16 is 16 bytes of v128.const or i8x16.shuffle immediate, the first three
// those of table.grow 0.
var v16 = b(0xfc, 0x0f, 0x00, bytes.Repeat([]byte{0x01}, 13))

// lanes is an i8x16.shuffle's immediate.
var lanes = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

const (
	nop  = 0x01
	drop = 0x1a
)

// walks are function bodies wazero compiles, and the tables their
// table.grow instructions name. Many have immediates whose bytes are those
// of a table.grow (fc 0f), followed by a byte that would be its table
// index (00, or nop 01).
var walks = []struct {
	name  string
	code  []byte
	grows []int
}{
	{"nothing", b(end), nil},
	{"table.grow 0", b(0xd0, funcref, 0x41, 1, 0xfc, 0x0f, 0, drop, end), []int{0}},
	{"table.grow 1", b(0xd0, funcref, 0x41, 1, 0xfc, 0x0f, 1, drop, end), []int{1}},
	{"table.grow both", b(0xd0, funcref, 0x41, 1, 0xfc, 0x0f, 1, drop, 0xd0, funcref, 0x41, 1, 0xfc, 0x0f, 0, drop, end), []int{0, 1}},
	{"table.grow padded", b(0xd0, funcref, 0x41, 1, 0xfc, 0x8f, 0x80, 0x80, 0x80, 0x00, 0x81, 0x00, drop, end), []int{1}},
	{"table.grow unreachable", b(0x00, 0xfc, 0x0f, 1, drop, end), []int{1}},
	{"table.size and table.fill", b(0xfc, 0x10, 1, drop, 0x41, 0, 0xd0, funcref, 0x41, 0, 0xfc, 0x11, 0, end), nil},

	// Constants.
	{"i32.const", b(0x41, 0xfc, 0x0f, nop, drop, 0x41, 0x80, 0xfc, 0x0f, nop, drop, 0x41, 0x7f, drop, end), nil},
	{"i32.const padded", b(0x41, 0xfc, 0x8f, 0x80, 0x80, 0x00, nop, drop, end), nil},
	{"i64.const", b(0x42, 0xfc, 0x0f, nop, drop, 0x42, bytes.Repeat([]byte{0xff}, 9), 0x00, drop, end), nil},
	{"f32.const", b(0x43, 0xfc, 0x0f, 0x00, 0x00, drop, end), nil},
	{"f64.const", b(0x44, 0xfc, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, drop, end), nil},
	{"sign extension", b(0x41, 0, 0xc0, 0xc1, drop, 0x42, 0, 0xc2, 0xc3, 0xc4, drop, end), nil},

	// Blocks.
	{"block, loop, if", b(0x02, 0x40, end, 0x03, 0x40, end, 0x41, 0, 0x04, 0x40, 0x05, end, end), nil},
	{"block results", b(0x02, i32, 0x41, 0, end, drop, 0x02, 0x7b, 0xfd, 0x0c, v16, end, drop, end), nil},
	{"block type index", b(0x41, 0, 0x02, 1, end, drop, end), nil},
	{"block (ref null func)", b(0x02, 0x63, funcref, 0xd0, funcref, end, drop, end), nil},
	{"block (ref null func) padded", b(0x02, 0xe3, 0x7f, funcref, 0xd0, funcref, end, drop, end), nil},
	// wazero reads at most 5 bytes of an s33 block type, whatever the
	// fifth's continuation bit: type 0.
	{"block type of 5 bytes, 5th continued", b(0x02, 0x80, 0x80, 0x80, 0x80, 0x80, end, end), nil},
	{"br, br_if", b(0x02, 0x40, 0x0c, 0, end, 0x02, 0x40, 0x41, 0, 0x0d, 0, end, end), nil},
	{"br_table", b(0x02, 0x40, 0x02, 0x40, 0x41, 0, 0x0e, 2, 0, 1, 0x80, 0x00, end, end, end), nil},
	{"return", b(0x0f, end), nil},

	// Variables, calls, select.
	{"locals and globals", b(0x20, 0, 0x21, 0, 0x41, 0, 0x22, 0x80, 0x00, drop, 0x23, 0, 0x24, 0, end), nil},
	{"call", b(0x10, 0, end), nil},
	{"call_indirect", b(0x41, 0, 0x41, 0, 0x11, 1, 0, drop, 0x41, 0, 0x41, 0, 0x11, 1, 1, drop, end), nil},
	{"select", b(0x41, 1, 0x41, 2, 0x41, 0, 0x1b, drop, end), nil},
	{"select typed", b(0x41, 1, 0x41, 2, 0x41, 0, 0x1c, 1, i32, drop, 0xd0, funcref, 0xd0, funcref, 0x41, 0, 0x1c, 1, funcref, drop, end), nil},

	// Memory.
	{"loads and stores", b(0x41, 0, 0x28, 2, 0, drop, 0x41, 0, 0x41, 0, 0x36, 2, 0, 0x41, 0, 0x42, 0, 0x3e, 2, 0, 0x41, 0, 0x2d, 0, 0, drop, end), nil},
	{"load offset", b(0x41, 0, 0x28, 2, 0xfc, 0x0f, nop, drop, 0x41, 0, 0x28, 0x82, 0x00, 0xfc, 0x8f, 0x80, 0x00, drop, end), nil},
	{"memory.size, memory.grow", b(0x3f, 0, drop, 0x41, 1, 0x40, 0, drop, end), nil},

	// References and tables.
	{"ref.null, ref.is_null, ref.func", b(0xd0, funcref, 0xd1, drop, 0xd0, 0x6f, drop, 0xd2, 0, drop, end), nil},
	{"table.get, table.set", b(0x41, 0, 0x25, 0, drop, 0x41, 0, 0xd0, funcref, 0x26, 1, end), nil},

	// The 0xfc prefix.
	{"saturating truncations", b(0x43, 0, 0, 0, 0, 0xfc, 0, drop, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0xfc, 7, drop, end), nil},
	{"memory.init, data.drop", b(0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 8, 0, 0, 0xfc, 9, 0, end), nil},
	{"memory.copy, memory.fill", b(0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 10, 0, 0, 0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 11, 0, end), nil},
	{"table.init, elem.drop, table.copy", b(0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 12, 0, 1, 0xfc, 13, 0, 0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 14, 0, 1, end), nil},

	// SIMD.
	{"v128.const", b(0xfd, 0x0c, v16, drop, end), nil},
	{"v128.load, v128.store", b(0x41, 0, 0xfd, 0x00, 4, 0xfc, 0x0f, nop, drop, 0x41, 0, 0xfd, 0x0c, v16, 0xfd, 0x0b, 4, 0, end), nil},
	{"v128.load32_zero, load8x8_s, load64_splat", b(0x41, 0, 0xfd, 0x5c, 2, 0, drop, 0x41, 0, 0xfd, 0x01, 3, 0, drop, 0x41, 0, 0xfd, 0x0a, 3, 0, drop, end), nil},
	{"load and store lanes", b(0x41, 0, 0xfd, 0x0c, v16, 0xfd, 0x54, 0, 0xfc, 0x0f, 15, drop, 0x41, 0, 0xfd, 0x0c, v16, 0xfd, 0x5b, 3, 0, 1, end), nil},
	{"extract and replace lanes", b(0xfd, 0x0c, v16, 0xfd, 0x15, 15, drop, 0xfd, 0x0c, v16, 0x41, 0, 0xfd, 0x17, 15, drop, end), nil},
	{"i8x16.shuffle", b(0xfd, 0x0c, v16, 0xfd, 0x0c, v16, 0xfd, 0x0d, lanes, drop, end), nil},
	{"two-byte SIMD instructions", b(0xfd, 0x0c, v16, 0xfd, 0x80, 0x01, 0xfd, 0xff, 0x01, drop, end), nil},
	// wazero reads the sub-opcode as one byte: after br 0, this is
	// i16x8.shr_s (0x8c) and unreachable (0x00), then the end of the block
	// and a live table.grow, not (as the spec reads it) a padded
	// v128.const (0x8c 0x00) and its 16 bytes.
	{"SIMD sub-opcode as wazero reads it", hiddenGrow, []int{0}},
}

var hiddenGrow = b(
	0x02, 0x40, 0x0c, 0, 0xfd, 0x0c, make([]byte, 16), 0x41, 0, 0xfd, 0x8c, 0x00,
	end, 0xd0, funcref, 0x41, 5, 0xfc, 0x0f, 0, drop, bytes.Repeat([]byte{nop}, 7),
	end)

func TestWalk(t *testing.T) {
	for _, c := range walks {
		t.Run(c.name, func(t *testing.T) {
			bin := walkModule(c.code)
			if err := compile(bin); err != nil {
				t.Fatalf("wazero refuses it: %v", err)
			}
			_, info := mustCheck(t, bin)
			var grows []int
			for i, tb := range info.Tables {
				if tb.Grows {
					grows = append(grows, i)
				}
			}
			if !reflect.DeepEqual(grows, c.grows) {
				t.Errorf("tables grown %v, want %v", grows, c.grows)
			}
		})
	}
}

// growSize is a module with a funcref table of 1 element without maximum
// and exports f, with the given code, and size, table.size.
func growSize(types [][]byte, fType uint32, code ...any) []byte {
	types = append([][]byte{funcType(nil, []byte{i32})}, types...)
	return module(
		section(secType, vec(types...)),
		section(secFunction, vec(u(fType), u(0))),
		section(secTable, vec(tableNoMax(1))),
		section(secExport, vec(b(str("f"), 0, 0), b(str("size"), 0, 1))),
		section(secCode, vec(body(noLocals, code...), body(noLocals, 0xfc, 0x10, 0, end))))
}

// callSize instantiates bin, calls f(args...) then returns size().
func callSize(t *testing.T, bin []byte, args ...uint64) uint32 {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	mod, err := rt.Instantiate(ctx, bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.ExportedFunction("f").Call(ctx, args...); err != nil {
		t.Fatal(err)
	}
	r, err := mod.ExportedFunction("size").Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(r[0])
}

// hiddenGrow's table.grow does run in wazero (and, with the maximum Check
// gives the table, fails).
func TestWalkSIMDAsWazero(t *testing.T) {
	in := growSize([][]byte{funcType(nil, nil)}, 1, hiddenGrow)
	out, info := mustCheck(t, in)
	if want := []Table{{Min: 1, Max: 1, Capped: true, Grows: true}}; !reflect.DeepEqual(info.Tables, want) {
		t.Fatalf("tables %+v, want %+v", info.Tables, want)
	}
	if size := callSize(t, in); size != 6 {
		t.Errorf("input: table size %d after f, want 6", size)
	}
	if size := callSize(t, out); size != 1 {
		t.Errorf("output: table size %d after f, want 1", size)
	}
}

// wazero v1.12's validator reads select's type (ref null ht) as 0x63 and an
// s33 heap type, its compiler as the one byte 0x63, compiling the heap
// type's bytes as instructions the validator never checked: here fc 0f 00,
// a table.grow of table 0 by f's argument, the validator's
// (ref null 2044) and unreachable. Check refuses any such select; this
// test shows why, and says when wazero stops compiling it.
func TestWalkSelectRefType(t *testing.T) {
	types := make([][]byte, 0, 2046)
	for len(types) < 2044 {
		types = append(types, funcType(nil, nil))
	}
	types = append(types, b(0x60, 1, 0x63, 0xfc, 0x0f, 0)) // type 2045: (param (ref null 2044))
	in := growSize(types, 2045,
		0xd0, funcref, 0x20, 0, 0x20, 0, 0x41, 0, 0x1c, 1, 0x63, 0xfc, 0x0f, 0x00, drop, end)

	_, _, err := Check(in, Limits{})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "select at offset") {
		t.Errorf("Check: %v, want the select refused", err)
	}
	if err := compile(in); err != nil {
		t.Logf("wazero no longer compiles it: %v", err)
		return
	}
	if size := callSize(t, in, 5); size != 6 {
		t.Logf("wazero compiles it, and f(5) leaves table size %d", size)
	} else {
		t.Logf("wazero compiles it, and f(5) grows the table from 1 to 6")
	}
}

// The walker refuses exactly the instructions wazero v1.12 refuses as
// unknown or off by default: every one-byte opcode, 0xfc and 0xfd
// sub-opcode, each in unreachable code (so that wazero needs no operand)
// and followed by zero bytes (immediates, then unreachable instructions).
func TestWalkOpcodesAsWazero(t *testing.T) {
	wazeroRefuses := regexp.MustCompile(`invalid instruction|(unknown|invalid) misc opcode|unknown SIMD instruction|is disabled`)
	pad := make([]byte, 24)
	try := func(name string, code []byte) {
		bin := walkModule(0x00, code, pad, end)
		cerr := compile(bin)
		_, _, err := Check(bin, Limits{})
		refused := errors.Is(err, ErrUnsupported) && strings.Contains(err.Error(), " instruction 0x")
		if err != nil && !refused {
			t.Errorf("%s: Check: %v", name, err)
		}
		if w := cerr != nil && wazeroRefuses.MatchString(cerr.Error()); w != refused {
			t.Errorf("%s: wazero: %v; Check: %v", name, cerr, err)
		}
	}
	for op := range 256 {
		switch op {
		case 0xfc, 0xfd:
		case 0xd0:
			try("0xd0", b(op, funcref))
		default:
			try(fmt.Sprintf("0x%02x", op), b(op))
		}
	}
	for sub := range 256 {
		try(fmt.Sprintf("0xfc %d", sub), b(0xfc, u(uint32(sub))))
		try(fmt.Sprintf("0xfd %d", sub), b(0xfd, sub))
	}
	try("0xfc 2^32-1", b(0xfc, huge))
}

// Every real module walks without error, and only the hostile guests made
// to grow a table (testdata/hostile/tablegrow.wat, tablemax.wat) have a
// table.grow: of table 0.
func TestWalkRealModules(t *testing.T) {
	mods := realModules(t)
	wat2wasm, _ := exec.LookPath("wat2wasm")
	dir := t.TempDir()
	for _, pattern := range []string{"../../testdata/hostile/*.wasm", "../../examples/*/*.wasm"} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			bin, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			mods[strings.TrimPrefix(path, "../../")] = bin
		}
	}
	for _, name := range []string{"tablegrow", "tablemax"} {
		path := "testdata/hostile/" + name + ".wasm"
		if _, ok := mods[path]; ok {
			continue
		}
		if wat2wasm == "" {
			t.Fatalf("no %s: run scripts/build-guests", path)
		}
		out := filepath.Join(dir, name+".wasm")
		if msg, err := exec.Command(wat2wasm, "../../testdata/hostile/"+name+".wat", "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm %s.wat: %v\n%s", name, err, msg)
		}
		bin, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		mods[path] = bin
	}
	if !testing.Short() {
		mods["Go reactor"] = buildGoReactor(t)
	}
	want := map[string][]int{"testdata/hostile/tablegrow.wasm": {0}, "testdata/hostile/tablemax.wasm": {0}}
	for name, bin := range mods {
		_, info, err := Check(bin, Limits{})
		var le *LimitError
		if errors.As(err, &le) && le.What == "table maximum" { // tablemax: walk it anyway
			_, info, err = Check(bin, Limits{MaxTableElements: math.MaxUint32})
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var grows []int
		for i, tb := range info.Tables {
			if tb.Grows {
				grows = append(grows, i)
			}
		}
		if !reflect.DeepEqual(grows, want[name]) {
			t.Errorf("%s: tables grown %v, want %v", name, grows, want[name])
		}
	}
	t.Logf("%d modules", len(mods))
}
