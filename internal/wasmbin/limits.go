package wasmbin

import (
	"errors"
	"fmt"
)

// Limits bound what a module may declare. Zero (or negative) fields mean
// "use the default" of DefaultLimits.
type Limits struct {
	// MaxTableElements bounds, per table, both its minimum and its maximum
	// (after Check gives a table without one its minimum as maximum).
	// wazero keeps 8 bytes per element, so the default costs 8 MB a table.
	MaxTableElements uint32
	// MaxTables bounds the tables a module defines.
	MaxTables int

	MaxTypes     int // function types, rec group members counted one by one
	MaxFunctions int // imported and defined
	MaxImports   int
	MaxExports   int
	MaxGlobals   int // defined (imported ones count as imports)

	MaxDataSegments    int // and the data count section's count
	MaxElementSegments int

	MaxFunctionSize int // bytes of one function body, locals declarations included
	MaxLocals       int // locals one function body declares (parameters not included)
	MaxParams       int // of one function type
	MaxResults      int // of one function type
}

// DefaultLimits returns the limits the WebAssembly JS API lists as
// implementation-defined ("Limits" in the WebAssembly JavaScript Interface
// spec), which every browser enforces, so that no module that runs in a
// browser is refused, plus two of ours: 100 tables, and 1,000,000 elements a
// table (8 MB in wazero).
func DefaultLimits() Limits {
	return Limits{
		MaxTableElements:   1_000_000,
		MaxTables:          100,
		MaxTypes:           1_000_000,
		MaxFunctions:       1_000_000,
		MaxImports:         100_000,
		MaxExports:         100_000,
		MaxGlobals:         1_000_000,
		MaxDataSegments:    100_000,
		MaxElementSegments: 10_000_000,
		MaxFunctionSize:    7_654_321,
		MaxLocals:          50_000,
		MaxParams:          1_000,
		MaxResults:         1_000,
	}
}

// withDefaults returns lim with every unset field set to its default.
func (lim Limits) withDefaults() Limits {
	d := DefaultLimits()
	if lim.MaxTableElements == 0 {
		lim.MaxTableElements = d.MaxTableElements
	}
	for _, f := range []struct{ v, d *int }{
		{&lim.MaxTables, &d.MaxTables},
		{&lim.MaxTypes, &d.MaxTypes},
		{&lim.MaxFunctions, &d.MaxFunctions},
		{&lim.MaxImports, &d.MaxImports},
		{&lim.MaxExports, &d.MaxExports},
		{&lim.MaxGlobals, &d.MaxGlobals},
		{&lim.MaxDataSegments, &d.MaxDataSegments},
		{&lim.MaxElementSegments, &d.MaxElementSegments},
		{&lim.MaxFunctionSize, &d.MaxFunctionSize},
		{&lim.MaxLocals, &d.MaxLocals},
		{&lim.MaxParams, &d.MaxParams},
		{&lim.MaxResults, &d.MaxResults},
	} {
		if *f.v <= 0 {
			*f.v = *f.d
		}
	}
	return lim
}

// Info describes what Check found.
type Info struct {
	Tables          []Table // defined tables, in index order
	Types           int
	Functions       int // imported and defined
	Imports         int
	Exports         int
	Globals         int // defined
	DataSegments    int
	ElementSegments int
	LargestFunction int // bytes of the largest function body
	MostLocals      int // most locals one function body declares
	// DataInstructions: some function has a memory.init or data.drop (it
	// reads the data segments after instantiation).
	DataInstructions bool
	// TableWrites: some function has an instruction that changes a table
	// (table.set, table.grow, table.fill, table.copy, table.init,
	// elem.drop).
	TableWrites bool
}

// Table is a defined table's size, as it is in Check's output, and whether
// the module's code may grow it.
type Table struct {
	Min, Max uint32
	Capped   bool // Max was added by Check: the input declared no maximum
	// Grows says that some function has a table.grow of this table
	// (whether or not it can run): growing a capped table past its
	// minimum then fails (returns -1) unseen by the host, which may want
	// to say that it may.
	Grows bool
}

// ErrMalformed is wrapped by the errors of binaries that cannot be read:
// bad preamble, sizes or counts past the end, over-long LEB128 numbers,
// unknown bytes where a kind is expected, instructions that do not fit
// their function's body.
var ErrMalformed = errors.New("malformed WebAssembly binary")

// ErrUnsupported is wrapped by the errors of well-formed binaries that use
// what this package refuses: imported tables, non-function types (GC),
// constant-expression instructions wazero does not know, instructions
// wazero does not compile with its default features (exception handling,
// tail calls, typed function references, threads, unknown opcodes), and
// select of a (ref ...) type, which wazero v1.12 validates and compiles
// differently.
var ErrUnsupported = errors.New("unsupported WebAssembly module")

// LimitError reports a declaration beyond a limit.
type LimitError struct {
	// What is exceeded: "types", "functions", "imports", "exports",
	// "globals", "data segments", "element segments", "tables" (module-wide,
	// Index -1); "table minimum", "table maximum" (Index: table index);
	// "function size", "locals" (Index: function index, imports included);
	// "params", "results" (Index: type index); "instrumented size"
	// (Interruptible: Got is where it stopped, Index -1).
	What  string
	Index int
	Got   uint64
	Limit uint64
}

func (e *LimitError) Error() string {
	var s string
	switch e.What {
	case "table minimum":
		s = fmt.Sprintf("table %d starts with %d elements", e.Index, e.Got)
	case "table maximum":
		s = fmt.Sprintf("table %d may grow to %d elements", e.Index, e.Got)
	case "function size":
		s = fmt.Sprintf("function %d has a body of %d bytes", e.Index, e.Got)
	case "locals":
		s = fmt.Sprintf("function %d declares %d locals", e.Index, e.Got)
	case "params", "results":
		s = fmt.Sprintf("type %d has %d %s", e.Index, e.Got, e.What)
	case "functions":
		s = fmt.Sprintf("module declares %d functions (imported and defined)", e.Got)
	case "instrumented size":
		s = fmt.Sprintf("module would grow past %d bytes once given its interruption checks (one at every function and loop)", e.Got)
	default:
		s = fmt.Sprintf("module declares %d %s", e.Got, e.What)
	}
	return fmt.Sprintf("%s, more than the limit of %d", s, e.Limit)
}
