package wasmbin

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const malformed = "malformed WebAssembly binary: "
const unsupp = "unsupported WebAssembly module: "

// refusals are binaries Check refuses, with the exact error text.
var refusals = []struct {
	name string
	bin  []byte
	lim  Limits
	err  string
	is   error // ErrMalformed, ErrUnsupported, or nil for a *LimitError
}{
	// Preamble and section headers.
	{name: "empty", bin: nil, err: malformed + "no WebAssembly magic and version 1 at the start", is: ErrMalformed},
	{name: "short", bin: []byte("\x00asm\x01"), err: malformed + "no WebAssembly magic and version 1 at the start", is: ErrMalformed},
	{name: "magic", bin: []byte("\x00wasm\x01\x00\x00"), err: malformed + "no WebAssembly magic and version 1 at the start", is: ErrMalformed},
	{name: "version", bin: []byte("\x00asm\x02\x00\x00\x00"), err: malformed + "version 02000000, want 01000000", is: ErrMalformed},
	{name: "section size truncated", bin: b(preamble[:], secType, 0x80),
		err: malformed + "section header at offset 0x8: unexpected end at offset 0xa", is: ErrMalformed},
	{name: "section size over-long", bin: b(preamble[:], secType, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00),
		err: malformed + "section header at offset 0x8: u32 at offset 0x9: over-long or out of range", is: ErrMalformed},
	{name: "section size past u32", bin: b(preamble[:], secType, 0xff, 0xff, 0xff, 0xff, 0x1f),
		err: malformed + "section header at offset 0x8: u32 at offset 0x9: over-long or out of range", is: ErrMalformed},
	{name: "section past the end", bin: b(preamble[:], secType, 5, 0),
		err: malformed + "type section at offset 0x8: size 5 is more than the 1 bytes left", is: ErrMalformed},
	{name: "section huge size", bin: b(preamble[:], secCode, huge),
		err: malformed + "code section at offset 0x8: size 4294967295 is more than the 0 bytes left", is: ErrMalformed},
	{name: "unknown section", bin: b(preamble[:], 14, 0),
		err: malformed + "unknown section id 14 at offset 0x8", is: ErrMalformed},
	{name: "second type section", bin: module(section(secType, vec()), section(secType, vec())),
		err: malformed + "second type section at offset 0xb", is: ErrMalformed},
	{name: "bytes after contents", bin: module(section(secType, vec(), 0)),
		err: malformed + "type section at offset 0x8: 1 bytes left after its contents", is: ErrMalformed},
	{name: "custom name past the end", bin: module(section(secCustom, 9, "abc")),
		err: malformed + "custom section at offset 0x8: name: unexpected end: 9 bytes at offset 0xb, only 3 left", is: ErrMalformed},

	// Types.
	{name: "types limit", bin: module(section(secType, huge)),
		err: "module declares 4294967295 types, more than the limit of 1000000"},
	{name: "types count past the end", bin: module(section(secType, 10)),
		err: malformed + "type section at offset 0x8: types count 10 at offset 0xa is more than the 0 bytes left", is: ErrMalformed},
	{name: "types in rec groups", lim: Limits{MaxTypes: 2},
		bin: module(section(secType, vec(b(0x4e, vec(funcType(nil, nil), funcType(nil, nil))), funcType(nil, nil)))),
		err: "module declares 3 types, more than the limit of 2"},
	{name: "params", bin: module(section(secType, vec(b(0x60, u(1001), bytes.Repeat([]byte{i32}, 1001), 0)))),
		err: "type 0 has 1001 params, more than the limit of 1000"},
	{name: "results", bin: module(section(secType, vec(funcType(nil, nil), b(0x60, 0, huge)))),
		err: "type 1 has 4294967295 results, more than the limit of 1000"},
	{name: "struct type", bin: module(section(secType, vec(funcType(nil, nil), b(0x5f, 0)))),
		err: unsupp + "type section at offset 0x8: type 1 at offset 0xe is a struct type (0x5f); only function types are supported", is: ErrUnsupported},
	{name: "sub type in rec group", bin: module(section(secType, vec(b(0x4e, vec(b(0x50, 0, funcType(nil, nil))))))),
		err: unsupp + "type section at offset 0x8: type 0 at offset 0xd is a subtype declaration (0x50); only function types are supported", is: ErrUnsupported},
	{name: "unknown type form", bin: module(section(secType, vec(b(0x40)))),
		err: malformed + "type section at offset 0x8: type 0 at offset 0xb: unknown form 0x40", is: ErrMalformed},
	{name: "invalid value type", bin: module(section(secType, vec(funcType([]byte{0x40}, nil)))),
		err: malformed + "type section at offset 0x8: type 0: invalid value type 0x40 at offset 0xd", is: ErrMalformed},
	{name: "heap type over-long", bin: module(section(secType, vec(funcType([]byte{0x63, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, nil)))),
		err: malformed + "type section at offset 0x8: type 0: s33 at offset 0xe: over-long", is: ErrMalformed},
	{name: "heap type past s33", bin: module(section(secType, vec(funcType([]byte{0x64, 0xff, 0xff, 0xff, 0xff, 0x1f}, nil)))),
		err: malformed + "type section at offset 0x8: type 0: s33 at offset 0xe: out of range", is: ErrMalformed},

	// Imports.
	{name: "imports limit", bin: module(section(secImport, huge)),
		err: "module declares 4294967295 imports, more than the limit of 100000"},
	{name: "imported table", bin: module(section(secImport, vec(b(str("env"), str("f"), 0x00, 0), b(str("env"), str("tbl"), 0x01, tableNoMax(1))))),
		err: unsupp + `import section at offset 0x8: import 1 ("env" "tbl") at offset 0x13 imports a table; a module must define its own tables`, is: ErrUnsupported},
	{name: "imported table long name", bin: module(section(secImport, vec(b(str("env"), str(strings.Repeat("t", 100)), 0x01, tableMax(1, 1))))),
		err: unsupp + `import section at offset 0x8: import 0 ("env" "` + strings.Repeat("t", 64) + `"...) at offset 0xb imports a table; a module must define its own tables`, is: ErrUnsupported},
	{name: "import name past the end", bin: module(section(secImport, vec(b(str("env"), huge)))),
		err: malformed + "import section at offset 0x8: import 0: name: unexpected end: 4294967295 bytes at offset 0x14, only 0 left", is: ErrMalformed},
	{name: "import kind", bin: module(section(secImport, vec(b(str("m"), str("n"), 0x05)))),
		err: malformed + `import section at offset 0x8: import 0 ("m" "n"): unknown kind 0x05`, is: ErrMalformed},
	{name: "import memory flags", bin: module(section(secImport, vec(b(str("m"), str("n"), 0x02, 0x04, 1)))),
		err: malformed + `import section at offset 0x8: import 0 ("m" "n"): memory limits flags 0x04`, is: ErrMalformed},
	{name: "functions with imports", lim: Limits{MaxFunctions: 2},
		bin: module(
			section(secType, vec(funcType(nil, nil))),
			section(secImport, vec(b(str("m"), str("a"), 0x00, 0), b(str("m"), str("b"), 0x00, 0))),
			section(secFunction, vec(u(0))),
			section(secCode, vec(body(noLocals, end)))),
		err: "module declares 3 functions (imported and defined), more than the limit of 2"},

	// Functions and code.
	{name: "functions limit", bin: module(section(secFunction, huge)),
		err: "module declares 4294967295 functions (imported and defined), more than the limit of 1000000"},
	{name: "function without body", bin: module(section(secType, vec(funcType(nil, nil))), section(secFunction, vec(u(0)))),
		err: malformed + "the function section declares 1 functions, the code section has 0 bodies", is: ErrMalformed},
	{name: "code count past the end", bin: module(section(secCode, 3, 0)),
		err: malformed + "code section at offset 0x8: functions count 3 at offset 0xa is more than the 1 bytes left", is: ErrMalformed},
	{name: "function size", lim: Limits{MaxFunctionSize: 3},
		bin: module(
			section(secImport, vec(b(str("m"), str("a"), 0x00, 0))),
			section(secCode, vec(body(noLocals, end), body(noLocals, 0x01, 0x01, end)))),
		err: "function 2 has a body of 4 bytes, more than the limit of 3"},
	{name: "body past the end", bin: module(section(secCode, vec(b(9, 0, end)))),
		err: malformed + "code section at offset 0x8: function 0: body: unexpected end: 9 bytes at offset 0xc, only 2 left", is: ErrMalformed},
	{name: "locals", bin: module(
		section(secType, vec(funcType(nil, nil))),
		section(secImport, vec(b(str("m"), str("a"), 0x00, 0))),
		section(secFunction, vec(u(0))),
		section(secCode, vec(body(b(2, huge, i32, huge, 0x63, 0x70), end)))),
		err: "function 1 declares 8589934590 locals, more than the limit of 50000"},
	{name: "locals one entry", bin: module(section(secCode, vec(body(b(1, huge, i32), end)))),
		err: "function 0 declares 4294967295 locals, more than the limit of 50000"},
	{name: "locals entries past the body", bin: module(section(secCode, vec(body(b(5, 1, i32), end)))),
		err: malformed + "code section at offset 0x8: function 0: locals entry count 5 at offset 0xc is more than the 3 bytes left", is: ErrMalformed},
	{name: "local type", bin: module(section(secCode, vec(body(b(1, 1, 0x40), end)))),
		err: malformed + "code section at offset 0x8: function 0: locals: invalid value type 0x40 at offset 0xe", is: ErrMalformed},

	// Tables.
	{name: "tables limit", bin: module(section(secTable, u(101), bytes.Repeat(tableMax(0, 0), 101))),
		err: "module declares 101 tables, more than the limit of 100"},
	{name: "table maximum", bin: module(section(secTable, vec(tableMax(1, 1), b(funcref, 0x01, 0, huge)))),
		err: "table 1 may grow to 4294967295 elements, more than the limit of 1000000"},
	{name: "table minimum", bin: module(section(secTable, vec(tableNoMax(1_000_001)))),
		err: "table 0 starts with 1000001 elements, more than the limit of 1000000"},
	{name: "table minimum with maximum", lim: Limits{MaxTableElements: 10}, bin: module(section(secTable, vec(tableMax(11, 11)))),
		err: "table 0 starts with 11 elements, more than the limit of 10"},
	{name: "shared table", bin: module(section(secTable, vec(b(funcref, 0x03, 1, 1)))),
		err: unsupp + "table section at offset 0x8: table 0 at offset 0xb has limits flags 0x03 (shared or 64-bit table)", is: ErrUnsupported},
	{name: "table flags", bin: module(section(secTable, vec(b(funcref, 0x08, 1)))),
		err: malformed + "table section at offset 0x8: table 0 at offset 0xb: limits flags 0x08", is: ErrMalformed},
	{name: "table reftype", bin: module(section(secTable, vec(b(i32, 0x00, 1)))),
		err: malformed + "table section at offset 0x8: table 0: invalid reference type 0x7f at offset 0xb", is: ErrMalformed},
	{name: "table 0x40 prefix", bin: module(section(secTable, vec(b(0x40, 0x01, tableNoMax(1), 0xd2, 0, end)))),
		err: malformed + "table section at offset 0x8: table 0 at offset 0xb: 0x01 after 0x40, want 0x00", is: ErrMalformed},
	{name: "table initializer instruction", bin: module(section(secTable, vec(b(0x40, 0x00, tableNoMax(1), 0xfb, 0x00, end)))),
		err: unsupp + "table section at offset 0x8: table 0: initializer: instruction 0xfb at offset 0x10 in a constant expression", is: ErrUnsupported},
	{name: "table initializer truncated", bin: module(section(secTable, vec(b(0x40, 0x00, tableNoMax(1), 0xd2, 0)))),
		err: malformed + "table section at offset 0x8: table 0: initializer: unexpected end at offset 0x12", is: ErrMalformed},
	{name: "table minimum over-long", bin: module(section(secTable, vec(b(funcref, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)))),
		err: malformed + "table section at offset 0x8: table 0: minimum: u32 at offset 0xd: over-long or out of range", is: ErrMalformed},

	// Globals, exports, elements, data.
	{name: "globals limit", bin: module(section(secGlobal, huge)),
		err: "module declares 4294967295 globals, more than the limit of 1000000"},
	{name: "exports limit", bin: module(section(secExport, u(100_001), bytes.Repeat([]byte{0}, 100_001))),
		err: "module declares 100001 exports, more than the limit of 100000"},
	{name: "export name past the end", bin: module(section(secExport, vec(b(huge)))),
		err: malformed + "export section at offset 0x8: export 0: name: unexpected end: 4294967295 bytes at offset 0x10, only 0 left", is: ErrMalformed},
	{name: "element segments limit", bin: module(section(secElement, huge)),
		err: "module declares 4294967295 element segments, more than the limit of 10000000"},
	{name: "element vector past the end", bin: module(section(secElement, vec(b(0, 0x41, 0, end, huge)))),
		err: malformed + "element section at offset 0x8: element segment 0: element count 4294967295 at offset 0xf is more than the 0 bytes left", is: ErrMalformed},
	{name: "element expressions past the end", bin: module(section(secElement, vec(b(5, funcref, huge)))),
		err: malformed + "element section at offset 0x8: element segment 0: element count 4294967295 at offset 0xd is more than the 0 bytes left", is: ErrMalformed},
	{name: "element flags", bin: module(section(secElement, vec(b(8, 0)))),
		err: malformed + "element section at offset 0x8: element segment 0: flags 8 at offset 0xb", is: ErrMalformed},
	{name: "element kind", bin: module(section(secElement, vec(b(1, 1, 0)))),
		err: malformed + "element section at offset 0x8: element segment 0: element kind 0x01", is: ErrMalformed},
	{name: "data segments limit", bin: module(section(secData, huge)),
		err: "module declares 4294967295 data segments, more than the limit of 100000"},
	{name: "data count limit", bin: module(section(secDataCount, u(100_001))),
		err: "module declares 100001 data segments, more than the limit of 100000"},
	{name: "data bytes past the end", bin: module(section(secData, vec(b(1, huge)))),
		err: malformed + "data section at offset 0x8: data segment 0: unexpected end: 4294967295 bytes at offset 0x11, only 0 left", is: ErrMalformed},
	{name: "data flags", bin: module(section(secData, vec(b(3, 0)))),
		err: malformed + "data section at offset 0x8: data segment 0: flags 3 at offset 0xb", is: ErrMalformed},
	{name: "i32.const past s32", bin: module(section(secData, vec(b(0, 0x41, 0xff, 0xff, 0xff, 0xff, 0x0f, end, 0)))),
		err: malformed + "data section at offset 0x8: data segment 0: s32 at offset 0xd: out of range", is: ErrMalformed},
	{name: "i64.const over-long", bin: module(section(secData, vec(b(0, 0x42, bytes.Repeat([]byte{0x80}, 10), 0, end, 0)))),
		err: malformed + "data section at offset 0x8: data segment 0: s64 at offset 0xd: over-long", is: ErrMalformed},
	{name: "tag count past the end", bin: module(section(secTag, huge)),
		err: malformed + "tag section at offset 0x8: tag count 4294967295 at offset 0xa is more than the 0 bytes left", is: ErrMalformed},

	// Instructions (code0 puts them at offset 0xd).
	{name: "legacy try", bin: code0(0x06, 0x40, end, end),
		err: unsupp + "code section at offset 0x8: function 0: instruction 0x06 at offset 0xd is try (legacy exception handling, which wazero never compiles)", is: ErrUnsupported},
	{name: "throw", bin: code0(0x01, 0x08, 0, end),
		err: unsupp + "code section at offset 0x8: function 0: instruction 0x08 at offset 0xe is throw (exception handling, off by default in wazero)", is: ErrUnsupported},
	{name: "return_call", bin: code0(0x01, 0x12, 0, end),
		err: unsupp + "code section at offset 0x8: function 0: instruction 0x12 at offset 0xe is return_call (tail calls, off by default in wazero)", is: ErrUnsupported},
	{name: "br_on_null", bin: code0(0xd5, 0, end),
		err: unsupp + "code section at offset 0x8: function 0: instruction 0xd5 at offset 0xd is br_on_null (typed function references, off by default in wazero)", is: ErrUnsupported},
	{name: "atomic", bin: code0(0xfe, 0x03, 0x00, end),
		err: unsupp + "code section at offset 0x8: function 0: instruction 0xfe at offset 0xd is an atomic instruction (threads, off by default in wazero)", is: ErrUnsupported},
	{name: "unknown instruction", bin: code0(0x41, 0, 0x1a, 0x27, end),
		err: unsupp + "code section at offset 0x8: function 0: unknown instruction 0x27 at offset 0x10", is: ErrUnsupported},
	{name: "unknown misc instruction", bin: code0(0xfc, 0x12, end),
		err: unsupp + "code section at offset 0x8: function 0: unknown instruction 0xfc 18 at offset 0xd", is: ErrUnsupported},
	{name: "unknown misc instruction huge", bin: code0(0xfc, huge, end),
		err: unsupp + "code section at offset 0x8: function 0: unknown instruction 0xfc 4294967295 at offset 0xd", is: ErrUnsupported},
	{name: "unknown SIMD instruction", bin: code0(0xfd, 0x9a, 0x01, end),
		err: unsupp + "code section at offset 0x8: function 0: unknown instruction 0xfd 154 at offset 0xd", is: ErrUnsupported},
	{name: "select of a ref type", bin: code0(0x1c, 1, 0x63, 0x70, end),
		err: unsupp + "code section at offset 0x8: function 0: select at offset 0xd has a type 0x63 (ref ...), which wazero v1.12 validates and compiles differently", is: ErrUnsupported},
	{name: "in the second function", bin: module(
		section(secImport, vec(b(str("m"), str("a"), 0x00, 0))),
		section(secCode, vec(body(noLocals, end), body(b(1, 1, i32), 0x01, 0x27, end)))),
		err: unsupp + "code section at offset 0x11: function 2: unknown instruction 0x27 at offset 0x1c", is: ErrUnsupported},
	{name: "i32.const truncated", bin: code0(0x41, 0x80),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x41 at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "i32.const over-long", bin: code0(0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, end),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x41 at offset 0xd: an immediate is over-long or out of range", is: ErrMalformed},
	{name: "i64.const over-long", bin: code0(0x42, bytes.Repeat([]byte{0xff}, 10), 0x00, end),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x42 at offset 0xd: an immediate is over-long or out of range", is: ErrMalformed},
	{name: "f64.const truncated", bin: code0(0x44, 1, 2, 3, 4, 5, 6, 7),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x44 at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "local index over-long", bin: code0(0x20, 0xff, 0xff, 0xff, 0xff, 0x8f, 0x00, end),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x20 at offset 0xd: an immediate is over-long or out of range", is: ErrMalformed},
	{name: "call_indirect table truncated", bin: code0(0x11, 0x00, 0x80),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x11 at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "block type truncated", bin: code0(0x02, 0x80),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x02 at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "block heap type truncated", bin: code0(0x02, 0x63),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x02 at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "memarg truncated", bin: code0(0x28, 0x02),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x28 at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "br_table labels past the body", bin: code0(0x0e, huge, end),
		err: malformed + "code section at offset 0x8: function 0: br_table at offset 0xd: 4294967295 labels, more than the 1 bytes left in the body", is: ErrMalformed},
	{name: "br_table default missing", bin: code0(0x0e, 1, 0),
		err: malformed + "code section at offset 0x8: function 0: br_table at offset 0xd: 1 labels, more than the 1 bytes left in the body", is: ErrMalformed},
	{name: "br_table label truncated", bin: code0(0x0e, 1, 0, 0x80),
		err: malformed + "code section at offset 0x8: function 0: instruction 0x0e at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "select types past the body", bin: code0(0x1c, huge),
		err: malformed + "code section at offset 0x8: function 0: select at offset 0xd: 4294967295 types, more than the 0 bytes left in the body", is: ErrMalformed},
	{name: "misc sub-opcode over-long", bin: code0(0xfc, 0x8f, 0x80, 0x80, 0x80, 0x80, 0x00, end),
		err: malformed + "code section at offset 0x8: function 0: instruction 0xfc at offset 0xd: an immediate is over-long or out of range", is: ErrMalformed},
	{name: "table.grow index truncated", bin: code0(0xfc, 0x0f),
		err: malformed + "code section at offset 0x8: function 0: instruction 0xfc 15 at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "table.copy source truncated", bin: code0(0xfc, 0x0e, 0x00),
		err: malformed + "code section at offset 0x8: function 0: instruction 0xfc 14 at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "SIMD prefix at the end", bin: code0(0x01, 0xfd),
		err: malformed + "code section at offset 0x8: function 0: instruction 0xfd at offset 0xe: the body ends within it", is: ErrMalformed},
	{name: "v128.const truncated", bin: code0(0xfd, 0x0c, bytes.Repeat([]byte{0}, 15)),
		err: malformed + "code section at offset 0x8: function 0: instruction 0xfd 12 at offset 0xd: the body ends within it", is: ErrMalformed},
	{name: "SIMD lane truncated", bin: code0(0xfd, 0x54, 0x00, 0x00),
		err: malformed + "code section at offset 0x8: function 0: instruction 0xfd 84 at offset 0xd: the body ends within it", is: ErrMalformed},

	// The name section, which wazero decodes.
	{name: "function names past the end", bin: module(section(secCustom, str("name"), 1, 6, huge, 0)),
		err: malformed + "custom section at offset 0x8: name subsection 1: name count 4294967295 at offset 0x11 is more than the 1 bytes left", is: ErrMalformed},
	{name: "local names past the end", bin: module(section(secCustom, str("name"), 2, 8, 1, 0, huge, 0)),
		err: malformed + "custom section at offset 0x8: name subsection 2: name count 4294967295 at offset 0x13 is more than the 1 bytes left", is: ErrMalformed},
	{name: "name subsection past the end", bin: module(section(secCustom, str("name"), 1, 6, 0)),
		err: malformed + "custom section at offset 0x8: name subsection 1: unexpected end: 6 bytes at offset 0x11, only 1 left", is: ErrMalformed},
	{name: "name subsection leftover", bin: module(section(secCustom, str("name"), 0, 3, str("m"), 0)),
		err: malformed + "custom section at offset 0x8: name subsection 0: 1 bytes left after its contents", is: ErrMalformed},
	{name: "second name section", bin: module(section(secCustom, str("name")), section(secCustom, str("name"))),
		err: malformed + `custom section at offset 0xf: second "name" section`, is: ErrMalformed},
}

func TestCheckRefuses(t *testing.T) {
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			out, info, err := Check(c.bin, c.lim)
			if err == nil {
				t.Fatalf("Check accepted it: %x", out)
			}
			if err.Error() != c.err {
				t.Errorf("error\n got %s\nwant %s", err, c.err)
			}
			if out != nil || info.Tables != nil || info.Functions != 0 {
				t.Errorf("Check returned %x, %+v with its error", out, info)
			}
			var le *LimitError
			isLimit := errors.As(err, &le)
			switch {
			case c.is == nil && !isLimit:
				t.Errorf("error %T is no *LimitError", err)
			case c.is != nil && !errors.Is(err, c.is):
				t.Errorf("error is not %v", c.is)
			case c.is != nil && isLimit:
				t.Errorf("error is a *LimitError")
			}
			for _, other := range []error{ErrMalformed, ErrUnsupported} {
				if other != c.is && errors.Is(err, other) {
					t.Errorf("error is also %v", other)
				}
			}
		})
	}
}

func TestLimitErrorFields(t *testing.T) {
	_, _, err := Check(module(section(secTable, vec(tableMax(0, 0), tableMax(2, 20)))), Limits{MaxTableElements: 10})
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	if want := (LimitError{What: "table maximum", Index: 1, Got: 20, Limit: 10}); *le != want {
		t.Errorf("got %+v, want %+v", *le, want)
	}
	_, _, err = Check(module(section(secGlobal, u(3), 0, 0, 0)), Limits{MaxGlobals: 2})
	if !errors.As(err, &le) || *le != (LimitError{What: "globals", Index: -1, Got: 3, Limit: 2}) {
		t.Errorf("err = %#v", err)
	}
}

// A claimed count of 2^32-1 in a few bytes must cost Check no more than a
// few small allocations (its error), whatever the count.
func TestHugeCountsDoNotAllocate(t *testing.T) {
	for _, c := range refusals {
		if !bytes.Contains(c.bin, huge) {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			n := bytesPerRun(100, func() { _, _, _ = Check(c.bin, c.lim) })
			if n > 4096 {
				t.Errorf("Check allocated %d bytes a run", n)
			}
		})
	}
}

// everything is a module using every section and form Check reads.
var everything = module(
	section(secCustom, str("producers"), "anything \xff at all"),
	section(secType, vec(funcType([]byte{i32, i64}, []byte{i32}), funcType(nil, nil),
		b(0x4e, vec(b(0x60, 1, 0x63, 0x01, 0), b(0x60, 1, 0x64, 0x70, 1, 0x69))))),
	section(secImport, vec(
		b(str("wasi"), str("f"), 0x00, 0),
		b(str("env"), str("memory"), 0x02, 0x01, 1, 2),
		b(str("env"), str("shared"), 0x02, 0x03, 1, 2),
		b(str("env"), str("g"), 0x03, i32, 0x01),
		b(str("env"), str("tag"), 0x04, 0x00, 1))),
	section(secFunction, vec(u(0), u(1))),
	section(secTable, vec(tableMax(1, 1), b(0x40, 0x00, 0x64, 0x00, 0x01, 2, 2, 0xd0, 0x70, end))),
	section(secMemory, vec(b(0x00, 1))),
	section(secTag, vec(b(0, u(1)))),
	section(secGlobal, vec(b(i32, 0, 0x41, 0x7f, end), b(i64, 1, 0x42, 0x80, 0x7f, end))),
	section(secExport, vec(b(str("f"), 0, 1), b(str("memory"), 2, 0))),
	section(secStart, u(1)),
	section(secElement, vec(
		b(0, 0x41, 0, end, vec(u(0), u(1))),
		b(1, 0, vec(u(0))),
		b(2, u(1), 0x23, 0, end, 0, vec()),
		b(3, 0, vec(u(2))),
		b(4, 0x41, 0, 0x41, 1, 0x6a, end, vec(b(0xd2, 0, end))),
		b(5, funcref, vec(b(0xd0, 0x70, end))),
		b(6, u(1), 0x41, 0, end, 0x63, 0x70, vec()),
		b(7, 0x64, 0x00, vec()))),
	section(secDataCount, u(3)),
	section(secCode, vec(
		body(b(2, 3, i32, u(1000), 0x7b), end),
		body(b(1, u(50_000), 0x63, 0x6f), 0x01, end))),
	section(secData, vec(
		b(0, 0x41, 0, end, str("hi")),
		b(1, str("")),
		b(2, 0, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0xfd, 0x0c, bytes.Repeat([]byte{0}, 16), end, str("x")))),
	section(secCustom, str("name"),
		section(0, str("m")),
		section(1, vec(b(u(1), str("ab")))),
		section(2, vec(b(u(1), vec(b(u(0), str("x")), b(u(1), str("")))))),
		section(7, 0xff, 0xff)),
)

func TestCheckUnchanged(t *testing.T) {
	for _, c := range []struct {
		name string
		bin  []byte
		want Info
	}{
		{"empty", module(), Info{}},
		{"table with maximum", withFunc(section(secTable, vec(tableMax(3, 7)))),
			Info{Tables: []Table{{Min: 3, Max: 7}}, Types: 1, Functions: 1, LargestFunction: 2}},
		{"everything", everything, Info{
			Tables: []Table{{Min: 1, Max: 1}, {Min: 2, Max: 2}}, Types: 4, Functions: 3, Imports: 5, Exports: 2, Globals: 2,
			DataSegments: 3, ElementSegments: 8, LargestFunction: 8, MostLocals: 50_000}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := bytes.Clone(c.bin)
			out, info := mustCheck(t, in)
			if &out[0] != &in[0] || len(out) != len(in) {
				t.Errorf("out is not its input")
			}
			if !bytes.Equal(in, c.bin) {
				t.Errorf("Check changed its input")
			}
			if !reflect.DeepEqual(info, c.want) {
				t.Errorf("info\n got %+v\nwant %+v", info, c.want)
			}
		})
	}
}

func TestCheckRewrite(t *testing.T) {
	initExpr := func(n int) []byte { return b(bytes.Repeat([]byte{0x41, 0x00}, n), end) }
	for _, c := range []struct {
		name    string
		in, out []byte
		tables  []Table
	}{
		{"go", withFunc(section(secTable, vec(tableNoMax(6568)))),
			withFunc(section(secTable, vec(tableMax(6568, 6568)))),
			[]Table{{Min: 6568, Max: 6568, Capped: true}}},
		{"empty table", withFunc(section(secTable, vec(tableNoMax(0)))),
			withFunc(section(secTable, vec(tableMax(0, 0)))),
			[]Table{{Min: 0, Max: 0, Capped: true}}},
		{"several", withFunc(section(secTable, vec(
			tableNoMax(1), tableMax(2, 3), b(0x40, 0x00, funcref, 0x00, 5, 0xd2, 0, end), b(0x6f, 0x00, u(300))))),
			withFunc(section(secTable, vec(
				tableMax(1, 1), tableMax(2, 3), b(0x40, 0x00, funcref, 0x01, 5, 5, 0xd2, 0, end), b(0x6f, 0x01, u(300), u(300))))),
			[]Table{{Min: 1, Max: 1, Capped: true}, {Min: 2, Max: 3}, {Min: 5, Max: 5, Capped: true}, {Min: 300, Max: 300, Capped: true}}},
		{"padded minimum kept", withFunc(section(secTable, vec(b(funcref, 0x00, 0x85, 0x80, 0x00)))),
			withFunc(section(secTable, vec(b(funcref, 0x01, 0x85, 0x80, 0x00, 0x85, 0x80, 0x00)))),
			[]Table{{Min: 5, Max: 5, Capped: true}}},
		// 127 bytes of table section become 128, whose size takes two bytes.
		{"section size grows a byte", withFunc(section(secTable, vec(b(0x40, 0x00, funcref, 0x00, 1, initExpr(60))))),
			withFunc(section(secTable, vec(b(0x40, 0x00, funcref, 0x01, 1, 1, initExpr(60))))),
			[]Table{{Min: 1, Max: 1, Capped: true}}},
		{"sections around", module(
			section(secCustom, str("before"), 1, 2, 3),
			section(secType, vec(funcType(nil, nil))),
			section(secTable, vec(tableNoMax(2))),
			section(secCustom, str("between"), 4),
			section(secElement, vec(b(0, 0x41, 0, end, vec(u(0), u(0))))),
			section(secCustom, str("name"), section(1, vec(b(u(0), str("f")))))),
			module(
				section(secCustom, str("before"), 1, 2, 3),
				section(secType, vec(funcType(nil, nil))),
				section(secTable, vec(tableMax(2, 2))),
				section(secCustom, str("between"), 4),
				section(secElement, vec(b(0, 0x41, 0, end, vec(u(0), u(0))))),
				section(secCustom, str("name"), section(1, vec(b(u(0), str("f")))))),
			[]Table{{Min: 2, Max: 2, Capped: true}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := bytes.Clone(c.in)
			out, info := mustCheck(t, in)
			if !bytes.Equal(out, c.out) {
				t.Errorf("out\n got %x\nwant %x", out, c.out)
			}
			if !bytes.Equal(in, c.in) {
				t.Errorf("Check changed its input")
			}
			if !reflect.DeepEqual(info.Tables, c.tables) {
				t.Errorf("tables %+v, want %+v", info.Tables, c.tables)
			}
			// Checking the output changes nothing more.
			again, info2 := mustCheck(t, out)
			if &again[0] != &out[0] {
				t.Errorf("Check rewrote its own output")
			}
			for i, tb := range info2.Tables {
				if tb.Capped || tb.Min != c.tables[i].Min || tb.Max != c.tables[i].Max {
					t.Errorf("table %d of the output: %+v", i, tb)
				}
			}
		})
	}
}
