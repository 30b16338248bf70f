package wasmbin

import (
	"errors"
	"fmt"
	"math"
)

// The host function Interruptible makes a module import: () -> (). It must
// end the guest's call (panic with a *sys.ExitError, say) when the call's
// context is done, and return otherwise.
const (
	InterruptModule = "wasmrunner_interrupt"
	InterruptFunc   = "check"
)

// Interrupt budget: see Interruptible.
const (
	// InterruptFuel is what a module may spend between two checks.
	InterruptFuel = 1 << 14
	// interruptUnit is the bytes of code one unit of fuel pays for.
	interruptUnit = 64
)

// Interruptible returns bin, a module Check accepted, made to check
// whether its call must end on entry to every function and at the head of
// every loop, cheaply: it is for running with wazero's own checks off
// (WithCloseOnContextDone(false)).
//
// wazero's checks exit to Go at every loop iteration (~45 ns each, far
// more than most iterations cost), and only at loops: code without one
// (function i calls function i+1 twice, sixty deep: 2^60 calls) is never
// stopped, and since compiled code that never comes back to Go cannot be
// preempted, the next garbage collection's stop of the world waits for it
// with every goroutine of the process. Interruptible adds a mutable i32
// global, the fuel, an import of InterruptModule.InterruptFunc, and at the
// start of every function body and the head of every loop
//
//	global.get fuel; i32.const cost; i32.sub; global.set fuel
//	global.get fuel; i32.const 1; i32.lt_s
//	if; i32.const InterruptFuel; global.set fuel; call check; end
//
// where cost is 1 + the size of the function body or the loop's body / 64
// bytes (at most InterruptFuel): the host is called once every
// InterruptFuel units (16,384 small calls or loop iterations, or about
// 1 MiB of straight-line code run). The import comes after the module's
// own, so the indices of its functions grow by one: calls, ref.func,
// exports, the start function, element segments and the "name" section
// are renumbered. The DWARF sections (.debug_*) are dropped: their offsets
// into the code section would now name wrong source lines in the stack
// traces of traps (the function names of the "name" section stay). A
// module without functions is returned as it is.
func Interruptible(bin []byte) ([]byte, error) {
	c := checker{lim: Limits{}.withDefaults(), noWalk: true, keepSections: true}
	if err := c.module(bin); err != nil {
		return nil, err
	}
	secs := c.sections
	x := &instrumenter{imported: uint32(c.importedFuncs), typ: uint32(c.info.Types), max: maxInstrumented(len(bin))}
	if !c.seen[secCode] {
		return bin, nil
	}
	if c.importedGlobals+c.info.Globals >= math.MaxUint32 || x.typ == math.MaxUint32 || x.imported == math.MaxUint32 {
		return nil, fmt.Errorf("%w: no room for one more type, import or global", ErrUnsupported)
	}
	x.fuel = uint32(c.importedGlobals + c.info.Globals)

	out := make([]byte, 0, len(bin)+len(bin)/4+64)
	out = append(out, bin[:8]...)
	// The sections to add when the module has none of their kind, in the
	// order of the format.
	var missing []byte
	for _, id := range []byte{secType, secImport, secGlobal} {
		if !c.seen[id] {
			missing = append(missing, id)
		}
	}
	for _, s := range secs {
		if s.id != secCustom {
			for len(missing) > 0 && sectionRank(missing[0]) < sectionRank(s.id) {
				out = appendSection(out, missing[0], x.added(missing[0]))
				missing = missing[1:]
			}
		}
		r := reader{b: bin[s.content:s.end], base: s.content}
		var content []byte
		var err error
		switch s.id {
		case secType, secImport, secGlobal:
			content, err = x.grown(s.id, &r)
		case secExport:
			content, err = x.exports(&r)
		case secStart:
			var f uint32
			if f, err = r.u32(); err == nil {
				content = appendU32(nil, x.fn(f))
			}
		case secElement:
			content, err = x.elements(&r)
		case secCode:
			content, err = x.code(&r)
		case secCustom:
			if debugSection(bin[s.content:s.end]) {
				continue
			}
			content, err = x.custom(bin[s.content:s.end])
		default:
			out = append(out, bin[s.start:s.end]...)
			continue
		}
		var le *LimitError
		if errors.As(err, &le) {
			return nil, le
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s section at offset %#x: %v", ErrMalformed, sectionName(s.id), s.start, err)
		}
		if uint64(len(content)) > math.MaxUint32 {
			return nil, fmt.Errorf("%w: %s section too large", ErrUnsupported, sectionName(s.id))
		}
		out = appendSection(out, s.id, content)
	}
	return out, nil
}

// instrumenter rewrites a module's sections for Interruptible.
type instrumenter struct {
	imported uint32 // imported functions: the check's index, and where the module's own start
	typ      uint32 // the check's type's index: the module's types come first
	fuel     uint32 // the fuel global's index

	max int // the most bytes of the code section's output

	// Scratch of code, kept between bodies.
	edits []edit
	open  []int // the blocks open while walking a body: an edit's index for a loop, -1 otherwise
}

// fn is function index f after the import of the check.
func (x *instrumenter) fn(f uint32) uint32 {
	if f >= x.imported {
		return f + 1
	}
	return f
}

// added is the contents of a section of kind id the module lacks.
func (x *instrumenter) added(id byte) []byte {
	return x.addTo(id, appendU32(nil, 1))
}

// addTo appends to b what Interruptible adds to a section of kind id.
func (x *instrumenter) addTo(id byte, b []byte) []byte {
	switch id {
	case secType: // () -> ()
		return append(b, 0x60, 0x00, 0x00)
	case secImport:
		b = appendName(b, InterruptModule)
		b = appendName(b, InterruptFunc)
		return appendU32(append(b, 0x00), x.typ)
	case secGlobal: // mutable i32, full
		b = appendS32(append(b, 0x7f, 0x01, 0x41), InterruptFuel)
		return append(b, 0x0b)
	}
	return b
}

// grown is a type, import or global section with one more entry at its
// end (globals may hold ref.func: renumbered).
func (x *instrumenter) grown(id byte, r *reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if n == math.MaxUint32 {
		return nil, fmt.Errorf("%d entries, no room for one more", n)
	}
	b := appendU32(nil, n+1)
	if id != secGlobal {
		return x.addTo(id, append(b, r.b[r.off:]...)), nil
	}
	for i := range n {
		start := r.off
		if err := valType(r); err != nil {
			return nil, fmt.Errorf("global %d: %w", i, err)
		}
		if _, err := r.byte(); err != nil {
			return nil, fmt.Errorf("global %d: %w", i, err)
		}
		b = append(b, r.b[start:r.off]...)
		if b, err = x.expr(r, b); err != nil {
			return nil, fmt.Errorf("global %d: %w", i, err)
		}
	}
	if r.len() != 0 {
		return nil, fmt.Errorf("%d bytes after its globals", r.len())
	}
	return x.addTo(id, b), nil
}

// expr copies a constant expression, renumbering ref.func.
func (x *instrumenter) expr(r *reader, b []byte) ([]byte, error) {
	for {
		start := r.off
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x0b: // end
			return append(b, op), nil
		case 0xd2: // ref.func
			f, err := r.u32()
			if err != nil {
				return nil, err
			}
			b = appendU32(append(b, op), x.fn(f))
			continue
		}
		r.off = start
		if err := constInstr(r); err != nil {
			return nil, err
		}
		b = append(b, r.b[start:r.off]...)
	}
}

// exports renumbers the functions exported.
func (x *instrumenter) exports(r *reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	b := appendU32(nil, n)
	for i := range n {
		start := r.off
		if _, err := r.name(); err != nil {
			return nil, fmt.Errorf("export %d: %w", i, err)
		}
		kind, err := r.byte()
		if err != nil {
			return nil, fmt.Errorf("export %d: %w", i, err)
		}
		at := r.off
		idx, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("export %d: %w", i, err)
		}
		b = append(b, r.b[start:at]...)
		if kind == 0x00 {
			idx = x.fn(idx)
		}
		b = appendU32(b, idx)
	}
	if r.len() != 0 {
		return nil, fmt.Errorf("%d bytes after its exports", r.len())
	}
	return b, nil
}

// elements renumbers the functions of the element segments.
func (x *instrumenter) elements(r *reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	b := appendU32(nil, n)
	for i := range n {
		flags, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		if flags > 7 {
			return nil, fmt.Errorf("segment %d: flags %d", i, flags)
		}
		b = appendU32(b, flags)
		copyU32 := func() error {
			v, err := r.u32()
			b = appendU32(b, v)
			return err
		}
		copyByte := func() error {
			v, err := r.byte()
			b = append(b, v)
			return err
		}
		copyRefType := func() error {
			start := r.off
			err := refType(r)
			b = append(b, r.b[start:r.off]...)
			return err
		}
		// The table index and offset of an active segment, then the
		// element kind or type of the flags that have one.
		if flags&2 != 0 && flags&1 == 0 {
			err = copyU32()
		}
		if err == nil && flags&1 == 0 {
			b, err = x.expr(r, b)
		}
		if err == nil && flags&3 != 0 {
			if flags&4 == 0 {
				err = copyByte()
			} else {
				err = copyRefType()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		items, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i, err)
		}
		b = appendU32(b, items)
		for j := uint32(0); j < items; j++ {
			if flags&4 == 0 {
				var f uint32
				if f, err = r.u32(); err == nil {
					b = appendU32(b, x.fn(f))
				}
			} else {
				b, err = x.expr(r, b)
			}
			if err != nil {
				return nil, fmt.Errorf("segment %d: item %d: %w", i, j, err)
			}
		}
	}
	if r.len() != 0 {
		return nil, fmt.Errorf("%d bytes after its segments", r.len())
	}
	return b, nil
}

// custom renumbers the functions of a "name" section and copies others.
func (x *instrumenter) custom(sec []byte) ([]byte, error) {
	r := reader{b: sec}
	name, err := r.name()
	if err != nil || string(name) != "name" {
		return sec, nil // what Check accepted; only "name" is read
	}
	b := append([]byte(nil), sec[:r.off]...)
	for r.len() > 0 {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		sub, err := r.sub(size)
		if err != nil {
			return nil, err
		}
		content := sub.b
		if id == 1 || id == 2 { // function names, local names: by function
			if content, err = x.nameMap(&sub, id == 2); err != nil {
				return nil, fmt.Errorf("\"name\" subsection %d: %w", id, err)
			}
		}
		b = append(b, id)
		b = appendU32(b, uint32(len(content)))
		b = append(b, content...)
	}
	return b, nil
}

// debugSection reports whether a custom section's contents are DWARF's
// (a name starting ".debug_").
func debugSection(sec []byte) bool {
	r := reader{b: sec}
	name, err := r.name()
	return err == nil && len(name) > 7 && string(name[:7]) == ".debug_"
}

// nameMap renumbers the functions of a name map, or (nested) of an
// indirect name map.
func (x *instrumenter) nameMap(r *reader, nested bool) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	b := appendU32(nil, n)
	for range n {
		f, err := r.u32()
		if err != nil {
			return nil, err
		}
		b = appendU32(b, x.fn(f))
		start := r.off
		if nested {
			m, err := r.u32()
			for j := uint32(0); err == nil && j < m; j++ {
				if _, err = r.u32(); err == nil {
					_, err = r.name()
				}
			}
			if err != nil {
				return nil, err
			}
		} else if _, err := r.name(); err != nil {
			return nil, err
		}
		b = append(b, r.b[start:r.off]...)
	}
	if r.len() != 0 {
		return nil, fmt.Errorf("%d bytes after its entries", r.len())
	}
	return b, nil
}

// An edit of a function body: at b[at:end] (call or ref.func: the
// instruction, renumbered) or at b[at] (a loop's head: the check, cost
// set when the loop's end is found).
type edit struct {
	at, end int
	op      byte
	cost    uint32
}

// code instruments every function body.
func (x *instrumenter) code(r *reader) ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, r.len()+int(n)*32+16)
	out = appendU32(out, n)
	var body []byte
	for i := range n {
		size, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("body %d: %w", i, err)
		}
		br, err := r.sub(size)
		if err != nil {
			return nil, fmt.Errorf("body %d: %w", i, err)
		}
		entries, err := br.u32()
		for j := uint32(0); err == nil && j < entries; j++ {
			if _, err = br.u32(); err == nil {
				err = valType(&br)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("body %d: locals: %w", i, err)
		}
		if body, err = x.body(body[:0], br.b[:br.off], br.b[br.off:], br.pos(), int(i), x.max-len(out)); err != nil {
			return nil, err
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		if len(out) > x.max {
			return nil, &LimitError{What: "instrumented size", Index: -1, Got: uint64(len(out)), Limit: uint64(x.max)}
		}
	}
	if r.len() != 0 {
		return nil, fmt.Errorf("%d bytes after its bodies", r.len())
	}
	return out, nil
}

// body appends to out a function body: its locals declarations, the check
// on entry, and its instructions code (at offset base of the binary) with
// calls and ref.func renumbered and a check at the head of each loop.
func (x *instrumenter) body(out, locals, code []byte, base, index, budget int) ([]byte, error) {
	x.edits, x.open = x.edits[:0], x.open[:0]
	c := checker{lim: Limits{}.withDefaults()}
	c.visit = func(op byte, start, end int) {
		switch op {
		case 0x10, 0xd2: // call, ref.func
			x.edits = append(x.edits, edit{at: start, end: end, op: op})
		case 0x02, 0x04: // block, if
			x.open = append(x.open, -1)
		case 0x03: // loop: the check goes after its block type
			x.open = append(x.open, len(x.edits))
			x.edits = append(x.edits, edit{at: end, end: end, op: op})
		case 0x0b: // end
			if n := len(x.open); n > 0 {
				if e := x.open[n-1]; e >= 0 {
					x.edits[e].cost = cost(start - x.edits[e].at)
				}
				x.open = x.open[:n-1]
			}
		}
	}
	if err := c.code(index, code, base); err != nil {
		return nil, err
	}
	// At most: a check of maxCheck bytes on entry and at each loop, a
	// byte more for each renumbered index.
	loops := 0
	for _, e := range x.edits {
		if e.op == 0x03 {
			loops++
		}
	}
	if most := len(locals) + len(code) + maxCheck*(1+loops) + len(x.edits) - loops; most > budget {
		return nil, &LimitError{What: "instrumented size", Index: -1, Got: uint64(x.max - budget + most), Limit: uint64(x.max)}
	}
	out = append(out, locals...)
	out = x.appendCheck(out, cost(len(locals)+len(code)))
	prev := 0
	for _, e := range x.edits {
		out = append(out, code[prev:e.at]...)
		prev = e.end
		if e.op == 0x03 {
			out = x.appendCheck(out, e.cost)
			continue
		}
		f, _ := lebU32(code, e.at+1) // read by the walker
		out = appendU32(append(out, e.op), x.fn(f))
	}
	out = append(out, code[prev:]...)
	if uint64(len(out)) > math.MaxUint32 {
		return nil, fmt.Errorf("%w: function %d too large once instrumented", ErrUnsupported, index)
	}
	return out, nil
}

// maxInstrumented bounds what a module of n bytes may grow to: real
// modules grow by 2-10 % (a check of ~23 bytes at every function and
// loop), but one made of empty loops or functions would grow eightfold,
// and the runner rewrites modules in its own memory, before the compiler
// child's limits apply.
func maxInstrumented(n int) int { return 2*n + 64<<10 }

// cost is the fuel running n bytes of code costs.
func cost(n int) uint32 {
	return uint32(min(1+n/interruptUnit, InterruptFuel))
}

// maxCheck is the most bytes appendCheck appends: eight instructions
// with an index or constant of up to 5 bytes, six of one byte.
const maxCheck = 8*6 + 6

// appendCheck appends the instructions that spend cost and call the check
// when the fuel runs out.
func (x *instrumenter) appendCheck(b []byte, cost uint32) []byte {
	get := func(b []byte) []byte { return appendU32(append(b, 0x23), x.fuel) }
	set := func(b []byte) []byte { return appendU32(append(b, 0x24), x.fuel) }
	b = get(b)
	b = appendS32(append(b, 0x41), int32(cost))
	b = set(append(b, 0x6b))                         // i32.sub
	b = append(get(b), 0x41, 0x01, 0x48, 0x04, 0x40) // i32.const 1; i32.lt_s; if
	b = set(appendS32(append(b, 0x41), InterruptFuel))
	b = appendU32(append(b, 0x10), x.imported) // call check
	return append(b, 0x0b)                     // end
}

// sectionAt locates one section of a binary: its header at start, its
// contents at content:end.
type sectionAt struct {
	id                  byte
	start, content, end int
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

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
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
