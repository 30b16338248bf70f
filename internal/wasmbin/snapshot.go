package wasmbin

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Snapshots. An instance's state after its initialization (_initialize) is
// its linear memory, its globals and its tables (wasmrunner has no
// imported memories, globals or tables). Restoring a snapshot of it into a
// fresh instance needs a module whose instantiation writes nothing the
// snapshot then overwrites, and whose mutable globals the host can set:
// [Snapshottable] rewrites a module so. Tables are left to instantiation
// (their element segments), so the code must never change them.

// ErrNoSnapshot is wrapped by the errors of [Snapshottable]: the module's
// state after initialization cannot be restored from a snapshot.
var ErrNoSnapshot = errors.New("cannot start from a snapshot")

// Snapshot is what [Snapshottable] took out of a module: its data segments
// (which an instance that does not start from a snapshot must be given
// before anything runs) and its mutable globals, exported.
type Snapshot struct {
	// Data are the active data segments of memory 0, in order. Their bytes
	// are slices of the input binary.
	Data []Segment
	// Globals are the module's mutable globals, each exported under
	// Export.
	Globals []Global
	// MemoryMin is the memory's initial size in 64 KiB pages.
	MemoryMin uint32
}

// Segment is an active data segment: Data is written at Offset.
type Segment struct {
	Offset uint32
	Data   []byte
}

// Global is a mutable global of a numeric type.
type Global struct {
	Index  uint32 // in the global index space
	Type   byte   // 0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64
	Export string // the name it is exported under
}

// Snapshottable returns bin (which [Check] accepted, info being what it
// said) without its data segments (and data count section), with each
// mutable global also exported as exportPrefix followed by its index, and
// what it took out. An instance of the result whose memory and globals are
// set by the host (to the data segments and the initial values, or to a
// snapshot) is an instance of bin. It refuses, wrapping ErrNoSnapshot, a
// module for which that does not hold or that it cannot rewrite: one with
// a start function (it would run at each instantiation), imported memories
// or globals, other than one memory, a shared memory, a mutable global of
// a reference or vector type, a data segment at an offset that is not an
// i32.const, code that reads data segments (memory.init, data.drop) or
// changes tables, or an export whose name begins with exportPrefix.
func Snapshottable(bin []byte, info Info, exportPrefix string) ([]byte, *Snapshot, error) {
	no := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrNoSnapshot, fmt.Sprintf(format, a...))
	}
	switch {
	case info.DataInstructions:
		return nil, nil, no("its code reads data segments (memory.init or data.drop)")
	case info.TableWrites:
		return nil, nil, no("its code changes tables")
	case len(bin) < 8 || [8]byte(bin[:8]) != preamble:
		return nil, nil, no("not a WebAssembly binary")
	}
	snap := &Snapshot{}
	type span struct{ start, end int } // a whole section, header included
	var exports, data, dataCount span
	memories, importedGlobals := -1, 0
	r := reader{b: bin, off: 8}
	for r.len() > 0 {
		start := r.pos()
		id, _ := r.byte()
		size, err := r.u32()
		if err != nil {
			return nil, nil, no("section header at offset %#x: %v", start, err)
		}
		s, err := r.sub(size)
		if err != nil {
			return nil, nil, no("section at offset %#x: %v", start, err)
		}
		whole := span{start, r.pos()}
		switch id {
		case secImport:
			importedGlobals, err = snapImports(&s)
		case secMemory:
			memories, snap.MemoryMin, err = snapMemories(&s)
		case secGlobal:
			snap.Globals, err = snapGlobals(&s, uint32(importedGlobals), exportPrefix)
		case secExport:
			exports = whole
			err = snapExports(&s, exportPrefix)
		case secStart:
			err = errors.New("it has a start function")
		case secData:
			data = whole
			snap.Data, err = snapData(&s)
		case secDataCount:
			dataCount = whole
		}
		if err != nil {
			return nil, nil, no("%s section at offset %#x: %v", sectionName(id), start, err)
		}
	}
	switch {
	case importedGlobals > 0:
		return nil, nil, no("it imports globals")
	case memories != 1:
		return nil, nil, no("it defines %d memories, not one", max(memories, 0))
	case exports.end == 0 && len(snap.Globals) > 0:
		return nil, nil, no("it has no export section")
	}

	// The export section grows by the globals' exports; the data and data
	// count sections go.
	var add []byte
	for _, g := range snap.Globals {
		add = appendU32(add, uint32(len(g.Export)))
		add = append(add, g.Export...)
		add = append(add, 0x03)
		add = appendU32(add, g.Index)
	}
	out := make([]byte, 0, len(bin)+len(add)+10)
	prev := 0
	cut := func(sp span, with []byte) {
		if sp.end == 0 {
			return
		}
		out = append(out, bin[prev:sp.start]...)
		out = append(out, with...)
		prev = sp.end
	}
	if exports.end != 0 && len(add) > 0 {
		sec, err := grownExports(bin[exports.start:exports.end], add, len(snap.Globals))
		if err != nil {
			return nil, nil, no("%v", err)
		}
		cut(exports, sec)
	}
	// In the binary's order: the data count section comes before the
	// code section, the data section after it, both after the exports.
	cut(dataCount, nil)
	cut(data, nil)
	out = append(out, bin[prev:]...)
	return out, snap, nil
}

func sectionName(id byte) string {
	if int(id) < len(sectionNames) {
		return sectionNames[id]
	}
	return "unknown (" + strconv.Itoa(int(id)) + ")"
}

// snapImports counts imported globals and refuses imported memories.
func snapImports(s *reader) (globals int, err error) {
	n, err := s.count("import")
	if err != nil {
		return 0, err
	}
	for i := range n {
		if _, err := s.name(); err != nil {
			return 0, err
		}
		if _, err := s.name(); err != nil {
			return 0, err
		}
		kind, err := s.byte()
		if err != nil {
			return 0, err
		}
		switch kind {
		case 0x00:
			_, err = s.u32()
		case 0x03:
			globals++
			if err = valType(s); err == nil {
				_, err = s.byte()
			}
		default:
			return 0, fmt.Errorf("import %d imports a %s", i, [...]string{"function", "table", "memory", "global", "tag"}[min(int(kind), 4)])
		}
		if err != nil {
			return 0, err
		}
	}
	return globals, nil
}

// snapMemories reads the memory section: its count and the first
// memory's minimum; a shared memory is refused.
func snapMemories(s *reader) (int, uint32, error) {
	n, err := s.count("memory")
	if err != nil || n == 0 {
		return 0, 0, err
	}
	flags, err := s.byte()
	if err != nil {
		return 0, 0, err
	}
	if flags&0x02 != 0 {
		return 0, 0, errors.New("its memory is shared")
	}
	if flags > 1 {
		return 0, 0, fmt.Errorf("memory limits flags 0x%02x", flags)
	}
	min, err := s.u32()
	if err != nil {
		return 0, 0, err
	}
	s.off = len(s.b)
	return int(n), min, nil
}

// snapGlobals lists the mutable globals (after imported ones), refusing
// those not of a numeric type.
func snapGlobals(s *reader, imported uint32, prefix string) ([]Global, error) {
	n, err := s.count("global")
	if err != nil {
		return nil, err
	}
	var gs []Global
	for i := range n {
		t, err := s.byte()
		if err != nil {
			return nil, err
		}
		if t == 0x63 || t == 0x64 { // (ref null ht), (ref ht)
			if _, err := s.signed(33); err != nil {
				return nil, err
			}
		}
		mut, err := s.byte()
		if err != nil {
			return nil, err
		}
		if err := constExpr(s); err != nil {
			return nil, fmt.Errorf("global %d: %w", i, err)
		}
		if mut == 0 {
			continue
		}
		if t != 0x7f && t != 0x7e && t != 0x7d && t != 0x7c {
			return nil, fmt.Errorf("global %d is mutable and of type 0x%02x, not a number", imported+i, t)
		}
		idx := imported + i
		gs = append(gs, Global{Index: idx, Type: t, Export: prefix + strconv.FormatUint(uint64(idx), 10)})
	}
	return gs, nil
}

// snapExports refuses an export whose name begins with prefix.
func snapExports(s *reader, prefix string) error {
	n, err := s.count("export")
	if err != nil {
		return err
	}
	for range n {
		name, err := s.name()
		if err != nil {
			return err
		}
		if strings.HasPrefix(string(name), prefix) {
			return fmt.Errorf("it exports %s, a name of the runner's", quote(name))
		}
		if _, err := s.byte(); err != nil {
			return err
		}
		if _, err := s.u32(); err != nil {
			return err
		}
	}
	return nil
}

// snapData reads the data segments: active ones of memory 0 at an
// i32.const offset are returned, passive ones (inert without memory.init)
// dropped.
func snapData(s *reader) ([]Segment, error) {
	n, err := s.count("data segment")
	if err != nil {
		return nil, err
	}
	segs := make([]Segment, 0, n)
	for i := range n {
		flags, err := s.u32()
		if err != nil {
			return nil, err
		}
		active := true
		switch flags {
		case 0:
		case 1:
			active = false
		case 2:
			var mem uint32
			if mem, err = s.u32(); err == nil && mem != 0 {
				err = fmt.Errorf("memory %d", mem)
			}
		default:
			err = fmt.Errorf("flags %d", flags)
		}
		var off uint32
		if err == nil && active {
			off, err = i32ConstExpr(s)
		}
		var b []byte
		if err == nil {
			b, err = s.name()
		}
		if err != nil {
			return nil, fmt.Errorf("data segment %d: %w", i, err)
		}
		if active {
			segs = append(segs, Segment{Offset: off, Data: b})
		}
	}
	return segs, nil
}

// i32ConstExpr reads a constant expression that must be i32.const N end.
func i32ConstExpr(s *reader) (uint32, error) {
	op, err := s.byte()
	if err != nil {
		return 0, err
	}
	if op != 0x41 {
		return 0, fmt.Errorf("offset expression begins with 0x%02x, not i32.const", op)
	}
	v, err := s.signed(32)
	if err != nil {
		return 0, err
	}
	if end, err := s.byte(); err != nil || end != 0x0b {
		return 0, errors.New("offset expression is more than an i32.const")
	}
	return uint32(int32(v)), nil
}

// grownExports returns the export section sec (header included) with the
// entries add (n of them) appended.
func grownExports(sec, add []byte, n int) ([]byte, error) {
	r := reader{b: sec, off: 1}
	if _, err := r.u32(); err != nil { // section size
		return nil, err
	}
	count, err := r.u32()
	if err != nil {
		return nil, err
	}
	entries := sec[r.off:]
	if uint64(count)+uint64(n) > math.MaxUint32 {
		return nil, errors.New("too many exports")
	}
	body := appendU32(nil, count+uint32(n))
	body = append(body, entries...)
	body = append(body, add...)
	if len(body) > math.MaxUint32 {
		return nil, errors.New("export section too large")
	}
	out := append([]byte{secExport}, appendU32(nil, uint32(len(body)))...)
	return append(out, body...), nil
}
