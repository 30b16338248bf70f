package wasmbin

import (
	"fmt"
	"math"
)

// Interrupt budget: see Interruptible.
const (
	// InterruptFuel is what a module may spend between two checks.
	InterruptFuel = 1 << 14
	// interruptUnit is the bytes of function body one unit of fuel pays
	// for: entering a function costs 1 + its body's size / interruptUnit.
	interruptUnit = 64
)

// Interruptible returns bin, a module Check accepted, with a check on
// entry to every function that wazero's interruption (its
// WithCloseOnContextDone) can act on, and that gives Go's scheduler the
// goroutine back.
//
// wazero checks whether a module was closed (its context done) only at
// loop headers. Code without loops still runs for as long as it likes: a
// function calling the next one twice, sixty deep, makes 2^60 calls.
// Compiled code that never comes back to Go cannot be preempted either,
// so a garbage collection's stop of the world waits for it, and with it
// every goroutine of the process: every tenant's jobs. Interruptible adds a
// mutable i32 global, the fuel, and to the start of every function body
//
//	global.get fuel; i32.const cost; i32.sub; global.set fuel
//	global.get fuel; i32.const 1; i32.lt_s
//	if; i32.const InterruptFuel; global.set fuel; loop; end; end
//
// where cost is 1 + the body's size / 64 bytes: the empty loop is where
// wazero checks, once every InterruptFuel units (16,384 small calls, or
// about 1 MiB of straight-line code run). Function indices, and so every
// other section, stay as they were; DWARF offsets into the code section
// (custom sections) are not adjusted. A module without functions is
// returned as it is.
func Interruptible(bin []byte) ([]byte, error) {
	secs, err := sections(bin)
	if err != nil {
		return nil, err
	}
	var importedGlobals, definedGlobals uint32
	code, global := -1, -1
	for i, s := range secs {
		switch s.id {
		case secImport:
			if importedGlobals, err = countImportedGlobals(bin[s.content:s.end]); err != nil {
				return nil, fmt.Errorf("%w: import section: %v", ErrMalformed, err)
			}
		case secGlobal:
			global = i
			r := reader{b: bin[s.content:s.end], base: s.content}
			if definedGlobals, err = r.u32(); err != nil {
				return nil, fmt.Errorf("%w: global section: %v", ErrMalformed, err)
			}
		case secCode:
			code = i
		}
	}
	if code < 0 {
		return bin, nil
	}
	if uint64(importedGlobals)+uint64(definedGlobals) >= math.MaxUint32 {
		return nil, fmt.Errorf("%w: too many globals to add one", ErrUnsupported)
	}
	fuel := importedGlobals + definedGlobals

	out := make([]byte, 0, len(bin)+len(bin)/8+64)
	out = append(out, bin[:8]...)
	added := false
	for i, s := range secs {
		if global < 0 && !added && s.id != secCustom && sectionRank(s.id) > sectionRank(secGlobal) {
			out = appendSection(out, secGlobal, appendFuelGlobal(appendU32(nil, 1)))
			added = true
		}
		switch i {
		case global:
			r := reader{b: bin[s.content:s.end], base: s.content}
			_, _ = r.u32() // read above
			content := appendU32(nil, definedGlobals+1)
			content = append(content, r.b[r.off:]...)
			out = appendSection(out, secGlobal, appendFuelGlobal(content))
		case code:
			content, err := instrumentCode(bin[s.content:s.end], s.content, fuel)
			if err != nil {
				return nil, err
			}
			out = appendSection(out, secCode, content)
		default:
			out = append(out, bin[s.start:s.end]...)
		}
	}
	return out, nil
}

// sectionAt locates one section of a binary: its header at start, its
// contents at content:end.
type sectionAt struct {
	id                  byte
	start, content, end int
}

// sections lists bin's sections.
func sections(bin []byte) ([]sectionAt, error) {
	if len(bin) < 8 || [8]byte(bin[:8]) != preamble {
		return nil, fmt.Errorf("%w: no WebAssembly magic and version 1 at the start", ErrMalformed)
	}
	var secs []sectionAt
	r := reader{b: bin, off: 8}
	for r.len() > 0 {
		start := r.pos()
		id, _ := r.byte()
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("%w: section header at offset %#x: %v", ErrMalformed, start, err)
		}
		s, err := r.sub(size)
		if err != nil {
			return nil, fmt.Errorf("%w: section at offset %#x: %v", ErrMalformed, start, err)
		}
		secs = append(secs, sectionAt{id: id, start: start, content: s.pos(), end: s.pos() + s.len()})
	}
	return secs, nil
}

// sectionRank is a known section's place in the order the binary format
// requires (the tag and data count sections sit out of their ids' order).
func sectionRank(id byte) int {
	switch id {
	case secTag:
		return int(secMemory)*2 + 1
	case secDataCount:
		return int(secElement)*2 + 1
	}
	return int(id) * 2
}

func appendSection(out []byte, id byte, content []byte) []byte {
	out = append(out, id)
	out = appendU32(out, uint32(len(content)))
	return append(out, content...)
}

// appendFuelGlobal appends the fuel's definition: a mutable i32 starting
// full.
func appendFuelGlobal(b []byte) []byte {
	b = append(b, 0x7f, 0x01, 0x41)
	b = appendS32(b, InterruptFuel)
	return append(b, 0x0b)
}

// countImportedGlobals counts the globals an import section imports.
func countImportedGlobals(sec []byte) (uint32, error) {
	r := reader{b: sec}
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	var globals uint32
	for i := range n {
		if _, err := r.name(); err != nil {
			return 0, fmt.Errorf("import %d: %w", i, err)
		}
		if _, err := r.name(); err != nil {
			return 0, fmt.Errorf("import %d: %w", i, err)
		}
		kind, err := r.byte()
		if err != nil {
			return 0, fmt.Errorf("import %d: %w", i, err)
		}
		switch kind {
		case 0x00: // func typeidx
			_, err = r.u32()
		case 0x01: // table: reftype limits
			if err = refType(&r); err == nil {
				err = memLimits(&r)
			}
		case 0x02:
			err = memLimits(&r)
		case 0x03: // global: valtype mut
			globals++
			if err = valType(&r); err == nil {
				_, err = r.byte()
			}
		case 0x04: // tag: attribute typeidx
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		default:
			err = fmt.Errorf("unknown kind 0x%02x", kind)
		}
		if err != nil {
			return 0, fmt.Errorf("import %d: %w", i, err)
		}
	}
	return globals, nil
}

// instrumentCode returns the code section's contents sec (at offset base
// of the binary) with the fuel check (global index fuel) at the start of
// every body.
func instrumentCode(sec []byte, base int, fuel uint32) ([]byte, error) {
	r := reader{b: sec, base: base}
	n, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("%w: code section: %v", ErrMalformed, err)
	}
	out := make([]byte, 0, len(sec)+int(n)*32)
	out = appendU32(out, n)
	var check []byte
	for i := range n {
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("%w: code section: body %d: %v", ErrMalformed, i, err)
		}
		body, err := r.sub(size)
		if err != nil {
			return nil, fmt.Errorf("%w: code section: body %d: %v", ErrMalformed, i, err)
		}
		entries, err := body.u32()
		for j := uint32(0); err == nil && j < entries; j++ {
			if _, err = body.u32(); err == nil {
				err = valType(&body)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: code section: body %d: locals: %v", ErrMalformed, i, err)
		}
		check = appendFuelCheck(check[:0], fuel, 1+size/interruptUnit)
		grown := uint64(size) + uint64(len(check))
		if grown > math.MaxUint32 {
			return nil, fmt.Errorf("%w: code section: body %d too large", ErrUnsupported, i)
		}
		out = appendU32(out, uint32(grown))
		out = append(out, body.b[:body.off]...) // the locals
		out = append(out, check...)
		out = append(out, body.b[body.off:]...)
	}
	if r.len() != 0 {
		return nil, fmt.Errorf("%w: code section: %d bytes after its bodies", ErrMalformed, r.len())
	}
	return out, nil
}

// appendFuelCheck appends the instructions Interruptible puts at the start
// of a function body that costs cost.
func appendFuelCheck(b []byte, fuel, cost uint32) []byte {
	get := func(b []byte) []byte { return appendU32(append(b, 0x23), fuel) }
	set := func(b []byte) []byte { return appendU32(append(b, 0x24), fuel) }
	b = get(b)
	b = appendS32(append(b, 0x41), int32(min(cost, InterruptFuel)))
	b = set(append(b, 0x6b)) // i32.sub
	b = get(b)
	b = append(b, 0x41, 0x01, 0x48, 0x04, 0x40) // i32.const 1; i32.lt_s; if
	b = appendS32(append(b, 0x41), InterruptFuel)
	b = set(b)
	return append(b, 0x03, 0x40, 0x0b, 0x0b) // loop; end; end
}

// appendS32 appends v as a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
