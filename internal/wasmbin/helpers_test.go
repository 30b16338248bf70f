package wasmbin

import (
	"fmt"
	"runtime"
	"testing"
)

// A tiny builder of WebAssembly binaries for the tests.

// b concatenates bytes: a byte, an int (one byte, 0..255), a []byte or a
// string (its bytes).
func b(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch p := p.(type) {
		case byte:
			out = append(out, p)
		case int:
			if p < 0 || p > 255 {
				panic(fmt.Sprintf("b: %d is not a byte", p))
			}
			out = append(out, byte(p))
		case []byte:
			out = append(out, p...)
		case string:
			out = append(out, p...)
		default:
			panic(fmt.Sprintf("b: %T", p))
		}
	}
	return out
}

// u is v as an unsigned LEB128.
func u(v uint32) []byte { return appendU32(nil, v) }

// huge is 2^32-1 as a 5-byte LEB128.
var huge = []byte{0xff, 0xff, 0xff, 0xff, 0x0f}

// module is the preamble followed by sections.
func module(sections ...[]byte) []byte { return b(preamble[:], b(toAny(sections)...)) }

// section is a section: id, size, contents.
func section(id byte, contents ...any) []byte {
	c := b(contents...)
	return b(id, u(uint32(len(c))), c)
}

// vec is a vector: count, then the items.
func vec(items ...[]byte) []byte { return b(u(uint32(len(items))), b(toAny(items)...)) }

// str is a name: length, bytes.
func str(s string) []byte { return b(u(uint32(len(s))), s) }

func toAny(bs [][]byte) []any {
	out := make([]any, len(bs))
	for i, x := range bs {
		out[i] = x
	}
	return out
}

const (
	i32     = 0x7f
	i64     = 0x7e
	funcref = 0x70
	end     = 0x0b
)

// funcType is (param params...) (result results...).
func funcType(params, results []byte) []byte {
	return b(0x60, u(uint32(len(params))), params, u(uint32(len(results))), results)
}

// body is a function body: size, locals entries (count, type pairs), code.
func body(locals []byte, code ...any) []byte {
	c := b(locals, b(code...))
	return b(u(uint32(len(c))), c)
}

// noLocals is an empty locals vector.
var noLocals = []byte{0}

// tableNoMax and tableMax are funcref table types.
func tableNoMax(min uint32) []byte    { return b(funcref, 0x00, u(min)) }
func tableMax(min, max uint32) []byte { return b(funcref, 0x01, u(min), u(max)) }

// oneFunc is a module with one function of type () -> () and the given table
// section contents, which wazero compiles.
func withFunc(sections ...[]byte) []byte {
	all := [][]byte{section(secType, vec(funcType(nil, nil))), section(secFunction, vec(u(0)))}
	all = append(all, sections...)
	all = append(all, section(secCode, vec(body(noLocals, end))))
	return module(all...)
}

// bytesPerRun is the heap bytes f allocates, averaged over runs.
func bytesPerRun(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	f()
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

func mustCheck(t testing.TB, bin []byte) ([]byte, Info) {
	t.Helper()
	out, info, err := Check(bin, Limits{})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return out, info
}

// code0 is a module of one function body (locals none, then code) and no
// other section, its code at offset 0xd when it is less than 125 bytes.
func code0(code ...any) []byte { return module(section(secCode, vec(body(noLocals, code...)))) }
