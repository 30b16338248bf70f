// Package wasmbin inspects a WebAssembly binary before wazero compiles it, so
// that a tenant's module that would make the shared process run out of memory
// is refused with a clear error instead of ending every tenant's jobs with an
// unrecoverable "fatal error: out of memory". It reads the binary's structure
// (section headers, and the counts, sizes and table limits inside them) and
// refuses counts beyond the limits browsers enforce, vectors whose claimed
// length exceeds the bytes that follow (wazero allocates by the claim before
// reading), functions declaring too many locals, imported tables, and tables
// that may hold more than Limits.MaxTableElements. wazero bounds memories by
// WithMemoryLimitPages but tables only by their declared maximum, so Check
// gives every table declared without a maximum (Go's wasip1 toolchain emits
// those, and never grows them) its minimum as maximum: table.grow past it then
// returns -1. It walks the instructions of every function, as wazero reads
// them, to say which tables table.grow names (Table.Grows: the host does not
// see a refused growth, and may want to say it is possible) and to refuse an
// instruction wazero does not compile with its default features. It does not
// validate what wazero validates (section order, indices, types); it reads
// only what it needs.
package wasmbin

import (
	"errors"
	"fmt"
	"math"
)

const (
	secCustom = iota
	secType
	secImport
	secFunction
	secTable
	secMemory
	secGlobal
	secExport
	secStart
	secElement
	secCode
	secData
	secDataCount
	secTag
)

var sectionNames = [...]string{
	"custom", "type", "import", "function", "table", "memory", "global",
	"export", "start", "element", "code", "data", "data count", "tag",
}

// Check reads bin's structure and refuses, with a *LimitError or an error
// wrapping ErrMalformed or ErrUnsupported, a binary that is malformed at the
// section level, declares more than lim allows, imports a table, has a
// table whose minimum or declared maximum exceeds lim.MaxTableElements, or
// has an instruction wazero does not compile with its default features
// (or one that does not fit its function). It returns bin with every table
// that declares no maximum given a maximum equal to its minimum (so
// table.grow past it fails with -1 instead of growing without bound), or
// bin itself when nothing needed to change, and in info.Tables which
// tables a table.grow names. bin is never modified.
//
// Besides the copy of bin when it rewrites, Check allocates only Info.Tables
// and its errors: no count read from bin is allocated by before it is checked
// against the bytes that follow it and against lim.
func Check(bin []byte, lim Limits) (out []byte, info Info, err error) {
	c := checker{lim: lim.withDefaults()}
	if err := c.module(bin); err != nil {
		return nil, Info{}, err
	}
	out, err = c.rewrite(bin)
	if err != nil {
		return nil, Info{}, err
	}
	return out, c.info, nil
}

type checker struct {
	lim  Limits
	info Info

	seen          [secTag + 1]bool
	importedFuncs int
	definedFuncs  int // the function section's count
	bodies        int // the code section's count

	// The table section (id byte, contents) and the tables to cap in it.
	tableSec       struct{ start, content, end int }
	caps           []tableCap
	sawNameSection bool

	noWalk bool // skip the instructions (for FuzzCheck)

	importedGlobals int
	// sections, if keepSections, lists the module's sections in order.
	keepSections bool
	sections     []sectionAt

	// visit, if set, is told of each instruction code walks: its opcode,
	// and where it and its immediates start and end in the body.
	visit func(op byte, start, end int)
}

// unsupportedError is what the section readers return for what Check
// refuses although it is well-formed; module wraps it with ErrUnsupported.
type unsupportedError string

func (e unsupportedError) Error() string { return string(e) }

func unsupported(format string, args ...any) error {
	return unsupportedError(fmt.Sprintf(format, args...))
}

// tableCap locates the limits of a table without maximum: the flags byte at
// flag, the minimum's LEB128 at bin[minStart:minEnd].
type tableCap struct{ flag, minStart, minEnd int }

var preamble = [8]byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

func (c *checker) module(bin []byte) error {
	if len(bin) < 8 || [8]byte(bin[:8]) != preamble {
		if len(bin) >= 8 && [4]byte(bin[:4]) == [4]byte(preamble[:4]) {
			return fmt.Errorf("%w: version %x, want 01000000", ErrMalformed, bin[4:8])
		}
		return fmt.Errorf("%w: no WebAssembly magic and version 1 at the start", ErrMalformed)
	}
	r := reader{b: bin, off: 8}
	for r.len() > 0 {
		start := r.pos()
		id, _ := r.byte()
		size, err := r.u32()
		if err != nil {
			return fmt.Errorf("%w: section header at offset %#x: %v", ErrMalformed, start, err)
		}
		if int(id) >= len(sectionNames) {
			return fmt.Errorf("%w: unknown section id %d at offset %#x", ErrMalformed, id, start)
		}
		name := sectionNames[id]
		s, err := r.sub(size)
		if err != nil {
			return fmt.Errorf("%w: %s section at offset %#x: size %d is more than the %d bytes left", ErrMalformed, name, start, size, r.len())
		}
		if id != secCustom {
			if c.seen[id] {
				return fmt.Errorf("%w: second %s section at offset %#x", ErrMalformed, name, start)
			}
			c.seen[id] = true
		}
		if id == secTable {
			c.tableSec.start, c.tableSec.content, c.tableSec.end = start, s.pos(), s.pos()+s.len()
		}
		if c.keepSections {
			c.sections = append(c.sections, sectionAt{id: id, start: start, content: s.pos(), end: s.pos() + s.len()})
		}
		if err := c.section(id, &s); err != nil {
			var le *LimitError
			if errors.As(err, &le) {
				return le // its message says it all
			}
			var ue unsupportedError
			if errors.As(err, &ue) {
				return fmt.Errorf("%w: %s section at offset %#x: %v", ErrUnsupported, name, start, err)
			}
			return fmt.Errorf("%w: %s section at offset %#x: %v", ErrMalformed, name, start, err)
		}
		if s.len() != 0 {
			return fmt.Errorf("%w: %s section at offset %#x: %d bytes left after its contents", ErrMalformed, name, start, s.len())
		}
	}
	if c.seen[secFunction] || c.seen[secCode] {
		if c.definedFuncs != c.bodies {
			return fmt.Errorf("%w: the function section declares %d functions, the code section has %d bodies", ErrMalformed, c.definedFuncs, c.bodies)
		}
	}
	c.info.Functions = c.importedFuncs + c.definedFuncs
	if c.info.Functions > c.lim.MaxFunctions {
		return &LimitError{What: "functions", Index: -1, Got: uint64(c.info.Functions), Limit: uint64(c.lim.MaxFunctions)}
	}
	return nil
}

func (c *checker) section(id byte, s *reader) error {
	switch id {
	case secCustom:
		name, err := s.name()
		if err != nil {
			return fmt.Errorf("name: %v", err)
		}
		if string(name) == "name" {
			return c.nameSection(s)
		}
	case secType:
		return c.typeSection(s)
	case secImport:
		return c.importSection(s)
	case secFunction:
		n, err := c.vec(s, "functions", -1, c.lim.MaxFunctions)
		if err != nil {
			return err
		}
		c.definedFuncs = int(n)
	case secTable:
		return c.tableSection(s)
	case secGlobal:
		n, err := c.vec(s, "globals", -1, c.lim.MaxGlobals)
		if err != nil {
			return err
		}
		c.info.Globals = int(n)
	case secExport:
		return c.exportSection(s)
	case secElement:
		return c.elementSection(s)
	case secCode:
		return c.codeSection(s)
	case secData:
		return c.dataSection(s)
	case secDataCount:
		n, err := s.u32()
		if err != nil {
			return err
		}
		if uint64(n) > uint64(c.lim.MaxDataSegments) {
			return &LimitError{What: "data segments", Index: -1, Got: uint64(n), Limit: uint64(c.lim.MaxDataSegments)}
		}
		return nil
	case secTag:
		if _, err := s.count("tag"); err != nil {
			return err
		}
	}
	// memory, start, and the rest of the sections above: wazero reads them
	// without allocating more than their size justifies.
	s.off = len(s.b)
	return nil
}

// vec reads a vector's count, refuses it beyond max (when max > 0) with a
// *LimitError for what, then beyond the bytes left.
func (c *checker) vec(r *reader, what string, index int, max int) (uint32, error) {
	start := r.pos()
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if max > 0 && uint64(n) > uint64(max) {
		return 0, &LimitError{What: what, Index: index, Got: uint64(n), Limit: uint64(max)}
	}
	if uint64(n) > uint64(r.len()) {
		return 0, fmt.Errorf("%s count %d at offset %#x is more than the %d bytes left", what, n, start, r.len())
	}
	return n, nil
}

func (c *checker) typeSection(s *reader) error {
	n, err := c.vec(s, "types", -1, c.lim.MaxTypes)
	if err != nil {
		return err
	}
	types := 0 // type index, counting rec group members
	for range n {
		start := s.pos()
		form, err := s.byte()
		if err != nil {
			return err
		}
		if form != 0x4e { // a rec group (GC proposal) of function types, or one type
			if err := c.subType(s, form, types, start); err != nil {
				return err
			}
			types++
			continue
		}
		m, err := s.count("rec group")
		if err != nil {
			return err
		}
		for range m {
			start := s.pos()
			form, err := s.byte()
			if err != nil {
				return err
			}
			if err := c.subType(s, form, types, start); err != nil {
				return err
			}
			types++
		}
	}
	if types > c.lim.MaxTypes {
		return &LimitError{What: "types", Index: -1, Got: uint64(types), Limit: uint64(c.lim.MaxTypes)}
	}
	c.info.Types = types
	return nil
}

func (c *checker) subType(s *reader, form byte, index int, start int) error {
	var kind string
	switch form {
	case 0x60:
		return c.funcType(s, index)
	case 0x50, 0x4f:
		kind = "subtype declaration"
	case 0x5e:
		kind = "array type"
	case 0x5f:
		kind = "struct type"
	case 0x5d:
		kind = "continuation type"
	default:
		return fmt.Errorf("type %d at offset %#x: unknown form 0x%02x", index, start, form)
	}
	return unsupported("type %d at offset %#x is a %s (0x%02x); only function types are supported", index, start, kind, form)
}

func (c *checker) funcType(s *reader, index int) error {
	for _, what := range [2]string{"params", "results"} {
		max := c.lim.MaxParams
		if what == "results" {
			max = c.lim.MaxResults
		}
		n, err := c.vec(s, what, index, max)
		if err != nil {
			return fmt.Errorf("type %d: %w", index, err)
		}
		for range n {
			if err := valType(s); err != nil {
				return fmt.Errorf("type %d: %w", index, err)
			}
		}
	}
	return nil
}

// valType reads a value type: one byte, or 0x63/0x64 and a heap type.
func valType(r *reader) error {
	start := r.pos()
	b, err := r.byte()
	if err != nil {
		return err
	}
	switch b {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, // i32 i64 f32 f64 v128
		0x70, 0x6f, 0x69: // funcref externref exnref
		return nil
	case 0x63, 0x64: // (ref null ht), (ref ht)
		_, err := r.signed(33)
		return err
	}
	return fmt.Errorf("invalid value type 0x%02x at offset %#x", b, start)
}

// refType reads a table's or element segment's reference type.
func refType(r *reader) error {
	start := r.pos()
	b, err := r.byte()
	if err != nil {
		return err
	}
	switch b {
	case 0x70, 0x6f, 0x69:
		return nil
	case 0x63, 0x64:
		_, err := r.signed(33)
		return err
	}
	return fmt.Errorf("invalid reference type 0x%02x at offset %#x", b, start)
}

func (c *checker) importSection(s *reader) error {
	n, err := c.vec(s, "imports", -1, c.lim.MaxImports)
	if err != nil {
		return err
	}
	c.info.Imports = int(n)
	for i := range n {
		start := s.pos()
		mod, err := s.name()
		if err != nil {
			return fmt.Errorf("import %d: module name: %w", i, err)
		}
		name, err := s.name()
		if err != nil {
			return fmt.Errorf("import %d: name: %w", i, err)
		}
		kind, err := s.byte()
		if err != nil {
			return fmt.Errorf("import %d: %w", i, err)
		}
		switch kind {
		case 0x00: // func typeidx
			_, err = s.u32()
			c.importedFuncs++
		case 0x01:
			return unsupported("import %d (%s %s) at offset %#x imports a table; a module must define its own tables",
				i, quote(mod), quote(name), start)
		case 0x02:
			err = memLimits(s)
		case 0x03: // global: valtype mut
			c.importedGlobals++
			if err = valType(s); err == nil {
				var mut byte
				if mut, err = s.byte(); err == nil && mut > 1 {
					err = fmt.Errorf("global mutability 0x%02x", mut)
				}
			}
		case 0x04: // tag: attribute 0, typeidx
			var attr byte
			if attr, err = s.byte(); err == nil {
				if attr != 0 {
					err = fmt.Errorf("tag attribute 0x%02x", attr)
				} else {
					_, err = s.u32()
				}
			}
		default:
			err = fmt.Errorf("unknown kind 0x%02x", kind)
		}
		if err != nil {
			return fmt.Errorf("import %d (%s %s): %w", i, quote(mod), quote(name), err)
		}
	}
	return nil
}

// memLimits reads a memory's limits: flags 0x00 min, 0x01 min max, and
// their shared forms 0x02, 0x03 (wazero decides about those).
func memLimits(r *reader) error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	switch flags {
	case 0x00, 0x02:
		_, err = r.u32()
	case 0x01, 0x03:
		if _, err = r.u32(); err == nil {
			_, err = r.u32()
		}
	default:
		err = fmt.Errorf("memory limits flags 0x%02x", flags)
	}
	return err
}

func (c *checker) tableSection(s *reader) error {
	n, err := c.vec(s, "tables", -1, c.lim.MaxTables)
	if err != nil {
		return err
	}
	c.info.Tables = make([]Table, 0, n) // n <= MaxTables, and <= the section's size
	max := c.lim.MaxTableElements
	for i := range int(n) {
		start := s.pos()
		b, err := s.byte()
		if err != nil {
			return fmt.Errorf("table %d: %w", i, err)
		}
		init := b == 0x40 // 0x40 0x00 tabletype expr
		if init {
			if b, err = s.byte(); err != nil {
				return fmt.Errorf("table %d: %w", i, err)
			}
			if b != 0x00 {
				return fmt.Errorf("table %d at offset %#x: 0x%02x after 0x40, want 0x00", i, start, b)
			}
		} else {
			s.off-- // b starts the reference type
		}
		if err := refType(s); err != nil {
			return fmt.Errorf("table %d: %w", i, err)
		}
		flag := s.pos()
		flags, err := s.byte()
		if err != nil {
			return fmt.Errorf("table %d: %w", i, err)
		}
		var t Table
		switch flags {
		case 0x00, 0x01:
		case 0x02, 0x03, 0x04, 0x05, 0x06, 0x07:
			return unsupported("table %d at offset %#x has limits flags 0x%02x (shared or 64-bit table)", i, start, flags)
		default:
			return fmt.Errorf("table %d at offset %#x: limits flags 0x%02x", i, start, flags)
		}
		minStart := s.pos()
		if t.Min, err = s.u32(); err != nil {
			return fmt.Errorf("table %d: minimum: %w", i, err)
		}
		minEnd := s.pos()
		if flags == 0x01 {
			if t.Max, err = s.u32(); err != nil {
				return fmt.Errorf("table %d: maximum: %w", i, err)
			}
		}
		if t.Min > max {
			return &LimitError{What: "table minimum", Index: i, Got: uint64(t.Min), Limit: uint64(max)}
		}
		if flags == 0x01 && t.Max > max {
			return &LimitError{What: "table maximum", Index: i, Got: uint64(t.Max), Limit: uint64(max)}
		}
		if flags == 0x00 {
			t.Max, t.Capped = t.Min, true
			c.caps = append(c.caps, tableCap{flag: flag, minStart: minStart, minEnd: minEnd})
		}
		if init {
			if err := constExpr(s); err != nil {
				return fmt.Errorf("table %d: initializer: %w", i, err)
			}
		}
		c.info.Tables = append(c.info.Tables, t)
	}
	return nil
}

func (c *checker) exportSection(s *reader) error {
	n, err := c.vec(s, "exports", -1, c.lim.MaxExports)
	if err != nil {
		return err
	}
	c.info.Exports = int(n)
	for i := range n {
		if _, err := s.name(); err != nil {
			return fmt.Errorf("export %d: name: %w", i, err)
		}
		kind, err := s.byte()
		if err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
		if kind > 0x04 {
			return fmt.Errorf("export %d: unknown kind 0x%02x", i, kind)
		}
		if _, err := s.u32(); err != nil {
			return fmt.Errorf("export %d: %w", i, err)
		}
	}
	return nil
}

func (c *checker) elementSection(s *reader) error {
	n, err := c.vec(s, "element segments", -1, c.lim.MaxElementSegments)
	if err != nil {
		return err
	}
	c.info.ElementSegments = int(n)
	for i := range n {
		if err := elementSegment(s); err != nil {
			return fmt.Errorf("element segment %d: %w", i, err)
		}
	}
	return nil
}

// elementSegment reads one element segment, by its flags: bit 0 passive or
// declarative, bit 1 explicit table index (active) or declarative, bit 2
// expressions instead of function indices.
func elementSegment(s *reader) error {
	start := s.pos()
	flags, err := s.u32()
	if err != nil {
		return err
	}
	if flags > 7 {
		return fmt.Errorf("flags %d at offset %#x", flags, start)
	}
	active := flags&1 == 0
	if flags == 2 || flags == 6 {
		if _, err := s.u32(); err != nil { // table index
			return err
		}
	}
	if active {
		if err := constExpr(s); err != nil {
			return fmt.Errorf("offset: %w", err)
		}
	}
	exprs := flags&4 != 0
	if flags != 0 && flags != 4 { // elemkind or reftype
		if exprs {
			err = refType(s)
		} else {
			var kind byte
			if kind, err = s.byte(); err == nil && kind != 0 {
				err = fmt.Errorf("element kind 0x%02x", kind)
			}
		}
		if err != nil {
			return err
		}
	}
	m, err := s.count("element")
	if err != nil {
		return err
	}
	for range m {
		if exprs {
			err = constExpr(s)
		} else {
			_, err = s.u32()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *checker) dataSection(s *reader) error {
	n, err := c.vec(s, "data segments", -1, c.lim.MaxDataSegments)
	if err != nil {
		return err
	}
	c.info.DataSegments = int(n)
	for i := range n {
		start := s.pos()
		flags, err := s.u32()
		if err == nil {
			switch flags {
			case 0:
				err = constExpr(s)
			case 1:
			case 2:
				if _, err = s.u32(); err == nil { // memory index
					err = constExpr(s)
				}
			default:
				err = fmt.Errorf("flags %d at offset %#x", flags, start)
			}
		}
		if err == nil {
			_, err = s.name() // vec(byte)
		}
		if err != nil {
			return fmt.Errorf("data segment %d: %w", i, err)
		}
	}
	return nil
}

func (c *checker) codeSection(s *reader) error {
	n, err := c.vec(s, "functions", -1, c.lim.MaxFunctions)
	if err != nil {
		return err
	}
	c.bodies = int(n)
	for i := range int(n) {
		fn := c.importedFuncs + i
		size, err := s.u32()
		if err != nil {
			return fmt.Errorf("function %d: body size: %w", fn, err)
		}
		if uint64(size) > uint64(c.lim.MaxFunctionSize) {
			return &LimitError{What: "function size", Index: fn, Got: uint64(size), Limit: uint64(c.lim.MaxFunctionSize)}
		}
		body, err := s.sub(size)
		if err != nil {
			return fmt.Errorf("function %d: body: %w", fn, err)
		}
		entries, err := body.count("locals entry")
		if err != nil {
			return fmt.Errorf("function %d: %w", fn, err)
		}
		var locals uint64 // at most entries * (2^32-1): no overflow
		for range entries {
			k, err := body.u32()
			if err == nil {
				err = valType(&body)
			}
			if err != nil {
				return fmt.Errorf("function %d: locals: %w", fn, err)
			}
			locals += uint64(k)
		}
		if locals > uint64(c.lim.MaxLocals) {
			return &LimitError{What: "locals", Index: fn, Got: locals, Limit: uint64(c.lim.MaxLocals)}
		}
		if !c.noWalk {
			if err := c.code(fn, body.b[body.off:], body.pos()); err != nil {
				return err
			}
		}
		c.info.LargestFunction = max(c.info.LargestFunction, int(size))
		c.info.MostLocals = max(c.info.MostLocals, int(locals))
	}
	return nil
}

// nameSection reads the "name" custom section, which wazero decodes (unlike
// other custom sections) allocating by the counts of its function and local
// name maps: each must fit the bytes of its subsection.
func (c *checker) nameSection(s *reader) error {
	if c.sawNameSection {
		return fmt.Errorf("second \"name\" section")
	}
	c.sawNameSection = true
	for s.len() > 0 {
		id, _ := s.byte()
		size, err := s.u32()
		if err != nil {
			return fmt.Errorf("name subsection %d: %w", id, err)
		}
		sub, err := s.sub(size)
		if err != nil {
			return fmt.Errorf("name subsection %d: %w", id, err)
		}
		switch id {
		case 0: // module name
			_, err = sub.name()
		case 1: // function names
			err = nameMap(&sub)
		case 2: // local names: indirect name map
			var n uint32
			if n, err = sub.count("function"); err == nil {
				for range n {
					if _, err = sub.u32(); err != nil {
						break
					}
					if err = nameMap(&sub); err != nil {
						break
					}
				}
			}
		default: // wazero skips the others by size
			sub.off = len(sub.b)
		}
		if err == nil && sub.len() != 0 {
			err = fmt.Errorf("%d bytes left after its contents", sub.len())
		}
		if err != nil {
			return fmt.Errorf("name subsection %d: %w", id, err)
		}
	}
	return nil
}

func nameMap(r *reader) error {
	n, err := r.count("name")
	if err != nil {
		return err
	}
	for range n {
		if _, err := r.u32(); err != nil {
			return err
		}
		if _, err := r.name(); err != nil {
			return err
		}
	}
	return nil
}

// constExpr reads a constant expression up to its end (0x0b), knowing the
// instructions wazero allows in one.
func constExpr(r *reader) error {
	for {
		if r.off < len(r.b) && r.b[r.off] == 0x0b { // end
			r.off++
			return nil
		}
		if err := constInstr(r); err != nil {
			return err
		}
	}
}

// constInstr reads one instruction of a constant expression other than
// end.
func constInstr(r *reader) error {
	start := r.pos()
	op, err := r.byte()
	if err != nil {
		return err
	}
	switch op {
	case 0x41: // i32.const
		_, err = r.signed(32)
	case 0x42: // i64.const
		_, err = r.signed(64)
	case 0x43: // f32.const
		err = r.skip(4)
	case 0x44: // f64.const
		err = r.skip(8)
	case 0x23, 0xd2: // global.get, ref.func
		_, err = r.u32()
	case 0xd0: // ref.null heaptype
		_, err = r.signed(33)
	case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended-const add, sub, mul
	case 0xfd: // v128.const: wazero reads the sub-opcode as one byte
		var sub byte
		if sub, err = r.byte(); err == nil {
			if sub != 0x0c {
				return unsupported("instruction 0xfd 0x%02x at offset %#x in a constant expression", sub, start)
			}
			err = r.skip(16)
		}
	default:
		return unsupported("instruction 0x%02x at offset %#x in a constant expression", op, start)
	}
	return err
}

// rewrite returns bin with the tables in c.caps given their minimum as
// maximum: flags 0x00 min becomes 0x01 min min, the minimum's bytes kept as
// they were; the table section's size is re-encoded, everything else copied.
func (c *checker) rewrite(bin []byte) ([]byte, error) {
	if len(c.caps) == 0 {
		return bin, nil
	}
	sec := c.tableSec
	grown := 0
	for _, t := range c.caps {
		grown += t.minEnd - t.minStart
	}
	size := sec.end - sec.content + grown
	if size > math.MaxUint32 {
		return nil, fmt.Errorf("%w: table section would grow to %d bytes", ErrUnsupported, size)
	}
	out := make([]byte, 0, len(bin)+grown+5)
	out = append(out, bin[:sec.start]...)
	out = append(out, secTable)
	out = appendU32(out, uint32(size))
	prev := sec.content
	for _, t := range c.caps {
		out = append(out, bin[prev:t.flag]...)
		out = append(out, 0x01)
		out = append(out, bin[t.minStart:t.minEnd]...)
		out = append(out, bin[t.minStart:t.minEnd]...)
		prev = t.minEnd
	}
	out = append(out, bin[prev:]...)
	return out, nil
}

func appendU32(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// quote quotes a name from the binary for an error message, cut to 64 bytes.
func quote(b []byte) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q...", b[:64])
	}
	return fmt.Sprintf("%q", b)
}
