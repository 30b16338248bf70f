package resource

import "time"

// Defaults of [CompileLimits].
const (
	DefaultMaxModuleSize  = 32 << 20
	DefaultCompileMemory  = 2 << 30
	DefaultCompileTimeout = 60 * time.Second
)

// CompileLimits bound loading and compiling one handler module. Compiling
// with wazero's optimizing compiler costs ~20 MB per MB of a Go or Rust
// guest, but memory that grows faster than linearly with the size of a
// module's largest function (a generated module of one 2.3 MB function
// needed 660 MB for 4 s; see engine/modules/compile.go), so the registry
// compiles in a child process held to Memory and Timeout, one compilation
// at a time ([Process.Compiles]).
type CompileLimits struct {
	// MaxModuleSize is the most bytes of a .wasm file; larger ones are
	// refused unread. Default 32 MiB.
	MaxModuleSize int64
	// Memory is the most memory (address space beyond the compiler
	// process's start-up, and Go heap) one compilation may use. Default
	// 2 GiB.
	Memory int64
	// Timeout is the most wall time one compilation may take. Default
	// 60 s.
	Timeout time.Duration
}

// WithDefaults returns c with unset (zero or negative) fields set to their
// defaults.
func (c CompileLimits) WithDefaults() CompileLimits {
	if c.MaxModuleSize <= 0 {
		c.MaxModuleSize = DefaultMaxModuleSize
	}
	if c.Memory <= 0 {
		c.Memory = DefaultCompileMemory
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultCompileTimeout
	}
	return c
}
