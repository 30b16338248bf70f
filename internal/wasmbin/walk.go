package wasmbin

import "fmt"

// The instruction walker reads every instruction of every function body and
// notes the tables that table.grow (0xfc 15) names, so that the runner can
// say when a table Check capped may be grown (and the growth refused). It
// knows the instructions wazero v1.12 compiles with its default features,
// api.CoreFeaturesV2 (the runner enables no other): the MVP, sign extension,
// non-trapping float-to-int, multi-value, bulk memory, reference types and
// SIMD. Not exception handling, tail calls, typed function references, GC
// or threads: those are experimental features in wazero, off by default.
//
// It reads each instruction's immediates as wazero's validator does, byte
// for byte where wazero departs from the spec (a SIMD sub-opcode is one
// byte, a block type's s33 at most 5 bytes, see below), so that it sees the
// instructions wazero compiles and runs: a walker that read the immediates
// differently could take an immediate for a table.grow (an i32.const whose
// LEB128 bytes are fc 0f) or a table.grow for an immediate.

// Immediate kinds of the one-byte opcodes, the most frequent first.
const (
	immNone      = iota // no immediate
	immLEB              // one LEB128 of at most 5 bytes, a u32 or an s32
	immLEB2             // two: a memory argument (align, offset), call_indirect's type and table
	immS64              // i64.const: an s64, at most 10 bytes
	immF32              // f32.const: 4 bytes
	immF64              // f64.const: 8 bytes
	immBlockType        // block, loop, if
	immBrTable          // vec(label) label
	immSelectT          // select t*
	immMisc             // the 0xfc prefix
	immSIMD             // the 0xfd prefix
	immUnknown          // not an instruction wazero compiles with its default features
)

// opImm is the kind of immediate of each opcode. Only the lengths of
// immediates matter (wazero refuses the values out of their range), but
// for the misc sub-opcode, br_table's and select's counts, and the table
// index of table.grow.
var opImm = func() (t [256]uint8) {
	for op := range t {
		t[op] = immUnknown
	}
	for _, op := range []byte{
		0x00, 0x01, // unreachable, nop
		0x05, 0x0b, // else, end
		0x0f,       // return
		0x1a, 0x1b, // drop, select
		0xd1, // ref.is_null
	} {
		t[op] = immNone
	}
	for op := 0x45; op <= 0xc4; op++ { // numeric; 0xc0-0xc4 sign extension
		t[op] = immNone
	}
	for _, op := range []byte{
		0x0c, 0x0d, // br, br_if
		0x10,                         // call
		0x20, 0x21, 0x22, 0x23, 0x24, // local.get/set/tee, global.get/set
		0x25, 0x26, // table.get, table.set
		0x3f, 0x40, // memory.size, memory.grow: a reserved 0 (wazero wants it one byte)
		0x41, // i32.const
		0xd2, // ref.func
		// ref.null: wazero reads one byte (funcref 0x70, externref 0x6f,
		// exnref 0x69) or, for a concrete type (typed function references,
		// which it then refuses), a u32 from the same byte: a u32 either way.
		0xd0,
	} {
		t[op] = immLEB
	}
	// Loads and stores: a memory argument, align and offset, as wazero
	// reads it. (The multi-memory form, bit 6 of align set and a memory
	// index before the offset, does not compile: wazero has one memory and
	// refuses an align of 32 or more.)
	for op := 0x28; op <= 0x3e; op++ {
		t[op] = immLEB2
	}
	t[0x11] = immLEB2 // call_indirect
	t[0x02], t[0x03], t[0x04] = immBlockType, immBlockType, immBlockType
	t[0x0e] = immBrTable
	t[0x1c] = immSelectT
	t[0x42], t[0x43], t[0x44] = immS64, immF32, immF64
	t[0xfc] = immMisc
	t[0xfd] = immSIMD
	return t
}()

// notEnabled names the instructions wazero knows but refuses with its
// default features, for the error that refuses them.
var notEnabled = map[byte]string{
	0x06: "try (legacy exception handling, which wazero never compiles)",
	0x07: "catch (legacy exception handling, which wazero never compiles)",
	0x09: "rethrow (legacy exception handling, which wazero never compiles)",
	0x18: "delegate (legacy exception handling, which wazero never compiles)",
	0x19: "catch_all (legacy exception handling, which wazero never compiles)",
	0x08: "throw (exception handling, off by default in wazero)",
	0x0a: "throw_ref (exception handling, off by default in wazero)",
	0x1f: "try_table (exception handling, off by default in wazero)",
	0x12: "return_call (tail calls, off by default in wazero)",
	0x13: "return_call_indirect (tail calls, off by default in wazero)",
	0x14: "call_ref (typed function references, off by default in wazero)",
	0x15: "return_call_ref (typed function references and tail calls, off by default in wazero)",
	0xd4: "ref.as_non_null (typed function references, off by default in wazero)",
	0xd5: "br_on_null (typed function references, off by default in wazero)",
	0xd6: "br_on_non_null (typed function references, off by default in wazero)",
	0xfb: "a GC instruction (which wazero does not compile)",
	0xfe: "an atomic instruction (threads, off by default in wazero)",
}

// Immediate kinds of the SIMD instructions, by their sub-opcode's byte.
const (
	simdUnknown    = iota // not a SIMD instruction wazero compiles
	simdNone              // no immediate
	simdMemArg            // align, offset
	simdMemArgLane        // align, offset, lane byte
	simdLane              // lane byte
	simdBytes16           // v128.const, i8x16.shuffle: 16 bytes
)

var simdImm = func() (t [256]uint8) {
	for op := 0x0e; op <= 0xff; op++ {
		t[op] = simdNone
	}
	// The holes of the SIMD opcode space (instructions the proposal
	// dropped, and 0xee), which wazero refuses.
	for _, op := range []byte{
		0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb,
		0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee,
	} {
		t[op] = simdUnknown
	}
	for op := 0x00; op <= 0x0b; op++ { // v128.load*, v128.store
		t[op] = simdMemArg
	}
	t[0x5c], t[0x5d] = simdMemArg, simdMemArg // v128.load32_zero, v128.load64_zero
	for op := 0x54; op <= 0x5b; op++ {        // v128.load*_lane, v128.store*_lane
		t[op] = simdMemArgLane
	}
	for op := 0x15; op <= 0x22; op++ { // extract_lane, replace_lane
		t[op] = simdLane
	}
	t[0x0c], t[0x0d] = simdBytes16, simdBytes16
	return t
}()

// The misc (0xfc) sub-opcodes wazero knows.
const (
	miscTruncSatLast = 7  // 0-7: the saturating float-to-int conversions
	miscMemoryInit   = 8  // data index, reserved 0
	miscDataDrop     = 9  // data index
	miscMemoryCopy   = 10 // reserved 0, reserved 0
	miscMemoryFill   = 11 // reserved 0
	miscTableInit    = 12 // element index, table index
	miscElemDrop     = 13 // element index
	miscTableCopy    = 14 // table index, table index
	miscTableGrow    = 15 // table index
	miscTableSize    = 16 // table index
	miscTableFill    = 17 // table index
)

// What lebU32 and the others return instead of an index when they fail.
const (
	lebEnd  = -1 // the body ends within it
	lebLong = -2 // too many bytes, or a value past its type's range
)

// lebU32 reads the u32 LEB128 at b[i:] as wazero does (and as u32 does: at
// most 5 bytes, the unused bits of the fifth clear) and returns it and the
// index after it, or lebEnd or lebLong.
func lebU32(b []byte, i int) (uint32, int) {
	if i < len(b) && b[i] < 0x80 {
		return uint32(b[i]), i + 1
	}
	var v uint32
	for n := 0; n < 5; n++ {
		if i >= len(b) {
			return 0, lebEnd
		}
		c := b[i]
		i++
		if n == 4 && c&0xf0 != 0 { // continuation bit or bits 32..34
			return 0, lebLong
		}
		v |= uint32(c&0x7f) << (7 * n)
		if c < 0x80 {
			return v, i
		}
	}
	panic("unreachable")
}

// skipLEB skips a LEB128 of at most max bytes (only its length matters:
// wazero reads up to the first byte without continuation bit and refuses
// more than max bytes) and returns the index after it, or lebEnd or
// lebLong.
func skipLEB(b []byte, i, max int) int {
	for n := 0; n < max; n++ {
		if i >= len(b) {
			return lebEnd
		}
		c := b[i]
		i++
		if c < 0x80 {
			return i
		}
	}
	return lebLong
}

// lebS33 reads an s33 LEB128 as wazero (leb128.DecodeInt33AsInt64) reads a
// block type or a heap type: up to the first byte without continuation bit,
// but at most 5 bytes, the fifth ending it whatever its continuation bit
// (the spec would refuse that; wazero reads on from the sixth byte). It
// does not refuse the values wazero does: only the length, and the values
// that make a block type read a heap type after, matter here.
func lebS33(b []byte, i int) (int64, int) {
	var v int64
	var c byte
	shift := 0
	for shift < 35 {
		if i >= len(b) {
			return 0, lebEnd
		}
		c = b[i]
		i++
		v |= int64(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			break
		}
	}
	if shift < 33 && c&0x40 != 0 {
		v |= -1 << shift
	}
	v &= 1<<33 - 1
	if v&(1<<32) != 0 {
		v -= 1 << 33
	}
	return v, i
}

// blockType skips a block type: 0x40, a value type, or an s33 type index,
// as wazero's DecodeBlockType reads it: an s33, and after -29 (0x63, ref
// null) or -28 (0x64, ref) a heap type, another s33.
func blockType(b []byte, i int) int {
	v, i := lebS33(b, i)
	if i >= 0 && (v == -29 || v == -28) {
		_, i = lebS33(b, i)
	}
	return i
}

// memArg skips a memory argument: align, offset (see opImm).
func memArg(b []byte, i int) int {
	if i = skipLEB(b, i, 5); i < 0 {
		return i
	}
	return skipLEB(b, i, 5)
}

// skip returns i+n, or lebEnd when that is past the end of b.
func skip(b []byte, i, n int) int {
	if n > len(b)-i {
		return lebEnd
	}
	return i + n
}

// code walks the instructions of function fn: b is its body after the
// locals declarations, base the offset of b[0] in the binary. It notes in
// c.info.Tables the tables table.grow names, and refuses (unsupportedError)
// an instruction wazero does not compile with its default features, or
// (an error) one that does not fit the body or has an over-long immediate.
// It allocates nothing but its errors.
func (c *checker) code(fn int, b []byte, base int) error {
	for i := 0; i < len(b); {
		start := i
		op := b[i]
		i++
		k := opImm[op]
		if k == immNone {
			if c.visit != nil {
				c.visit(op, start, i)
			}
			continue
		}
		if k <= immLEB2 { // most immediates, mostly of one byte each
			if op == 0x26 { // table.set
				c.info.TableWrites = true
			}
			if i < len(b) && b[i] < 0x80 {
				i++
			} else {
				i = skipLEB(b, i, 5)
			}
			if k == immLEB2 && i >= 0 {
				if i < len(b) && b[i] < 0x80 {
					i++
				} else {
					i = skipLEB(b, i, 5)
				}
			}
			if i >= 0 {
				if c.visit != nil {
					c.visit(op, start, i)
				}
				continue
			}
		}
		switch k {
		case immLEB, immLEB2: // failed above
		case immBlockType:
			i = blockType(b, i)
		case immS64:
			i = skipLEB(b, i, 10)
		case immF32:
			i = skip(b, i, 4)
		case immF64:
			i = skip(b, i, 8)
		case immBrTable:
			var n uint32
			n, i = lebU32(b, i)
			if i >= 0 && uint64(n) >= uint64(len(b)-i) { // n labels and the default, a byte or more each
				return fmt.Errorf("function %d: br_table at offset %#x: %d labels, more than the %d bytes left in the body",
					fn, base+start, n, len(b)-i)
			}
			for k := uint32(0); k <= n && i >= 0; k++ {
				_, i = lebU32(b, i)
			}
		case immSelectT:
			var n uint32
			n, i = lebU32(b, i)
			if i >= 0 && uint64(n) > uint64(len(b)-i) {
				return fmt.Errorf("function %d: select at offset %#x: %d types, more than the %d bytes left in the body",
					fn, base+start, n, len(b)-i)
			}
			for k := uint32(0); k < n && i >= 0; k++ {
				if i >= len(b) {
					i = lebEnd
					break
				}
				// wazero's validator reads a (ref null ht) or (ref ht)
				// type (0x63 or 0x64, then an s33 heap type), but its
				// compiler skips a single type byte and compiles the heap
				// type's bytes as instructions, which the validator did
				// not check: refused (a table.grow hidden in them would
				// run unseen by this walker, as would worse).
				if t := b[i]; t == 0x63 || t == 0x64 {
					return unsupported("function %d: select at offset %#x has a type 0x%02x (ref ...), which wazero v1.12 validates and compiles differently",
						fn, base+start, t)
				}
				i++
			}
		case immMisc:
			var sub uint32
			if sub, i = lebU32(b, i); i < 0 {
				break
			}
			switch sub {
			case miscMemoryInit, miscDataDrop:
				c.info.DataInstructions = true
			case miscTableInit, miscElemDrop, miscTableCopy, miscTableGrow, miscTableFill:
				c.info.TableWrites = true
			}
			switch {
			case sub <= miscTruncSatLast:
			case sub == miscDataDrop, sub == miscMemoryFill, sub == miscElemDrop,
				sub == miscTableSize, sub == miscTableFill:
				_, i = lebU32(b, i)
			case sub == miscMemoryInit, sub == miscMemoryCopy, sub == miscTableInit, sub == miscTableCopy:
				if _, i = lebU32(b, i); i >= 0 {
					_, i = lebU32(b, i)
				}
			case sub == miscTableGrow:
				var t uint32
				if t, i = lebU32(b, i); i >= 0 && uint64(t) < uint64(len(c.info.Tables)) {
					c.info.Tables[t].Grows = true
				}
				// A table.grow of a table the table section does not
				// define (the table section comes before the code section;
				// tables cannot be imported) does not compile: ignored.
			default:
				// Others (memory64, relaxed SIMD...) wazero refuses.
				return unsupported("function %d: unknown instruction 0xfc %d at offset %#x", fn, sub, base+start)
			}
		case immSIMD:
			// wazero v1.12 reads the sub-opcode as one byte, not as the
			// spec's u32 LEB128: an instruction numbered 0x80 or more
			// (two bytes, op and 0x01 as LEB128) is the byte op, and the
			// 0x01 after it another instruction, a nop. Read as wazero does
			// (the spec's reading of a padded sub-opcode, fd 8c 00, say,
			// would take as immediates what wazero compiles and runs as
			// instructions).
			if i >= len(b) {
				i = lebEnd
				break
			}
			sub := b[i]
			i++
			switch simdImm[sub] {
			case simdUnknown:
				return unsupported("function %d: unknown instruction 0xfd %d at offset %#x", fn, sub, base+start)
			case simdNone:
			case simdMemArg:
				i = memArg(b, i)
			case simdMemArgLane:
				if i = memArg(b, i); i >= 0 {
					i = skip(b, i, 1)
				}
			case simdLane:
				i = skip(b, i, 1)
			case simdBytes16:
				i = skip(b, i, 16)
			}
		default: // immUnknown
			if what, ok := notEnabled[op]; ok {
				return unsupported("function %d: instruction 0x%02x at offset %#x is %s", fn, op, base+start, what)
			}
			return unsupported("function %d: unknown instruction 0x%02x at offset %#x", fn, op, base+start)
		}
		switch i {
		case lebEnd:
			return fmt.Errorf("function %d: instruction %s at offset %#x: the body ends within it", fn, opName(b[start:]), base+start)
		case lebLong:
			return fmt.Errorf("function %d: instruction %s at offset %#x: an immediate is over-long or out of range", fn, opName(b[start:]), base+start)
		}
		if c.visit != nil {
			c.visit(op, start, i)
		}
	}
	return nil
}

// opName is the opcode at the start of b for an error message: 0x41, or a
// prefix and its sub-opcode in decimal, as the spec writes them (0xfc 15),
// when it can be read.
func opName(b []byte) string {
	switch {
	case b[0] == 0xfd && len(b) >= 2:
		return fmt.Sprintf("0xfd %d", b[1])
	case b[0] == 0xfc:
		if sub, i := lebU32(b, 1); i >= 0 {
			return fmt.Sprintf("0xfc %d", sub)
		}
	}
	return fmt.Sprintf("0x%02x", b[0])
}
