package modules

import (
	"bytes"
	"encoding/binary"
)

// toolchain is what a module's custom sections say of how it was built;
// its zero value knows nothing (a stripped module).
type toolchain struct {
	// goRuntime: built by Go (a go:buildid section, or Go in the
	// producers section), whose runtime must be initialized (_start or
	// _initialize) before any export is called.
	goRuntime bool
	// language and processedBy are the producers section's first entries.
	language, processedBy string
	// ctors: the name section names a __wasm_call_ctors function (the
	// constructors wasm-ld gathers, which _initialize or _start runs).
	ctors bool
	// commandExports: wasm-ld wrapped the exports of a command module
	// (names ending in ".command_export"): each export runs the
	// constructors before it and the destructors after it.
	commandExports bool
	// exports are the names of the exported functions.
	exports map[string]bool
	// sdkRefreshEnv: the name section names the Go SDK's refreshEnv (see
	// sdkRefreshEnv).
	sdkRefreshEnv bool
}

// toolchainOf reads the custom sections of bin, a module wasmbin.Check
// accepted. Anything it cannot read is left unknown.
func toolchainOf(bin []byte) toolchain {
	var tc toolchain
	if len(bin) < 8 {
		return tc
	}
	b := bin[8:]
	for len(b) > 0 {
		id := b[0]
		size, n := binary.Uvarint(b[1:])
		if n <= 0 || size > uint64(len(b)-1-n) {
			return tc
		}
		body := b[1+n : 1+n+int(size)]
		b = b[1+n+int(size):]
		if id == 7 {
			tc.exportNames(body)
		}
		if id != 0 {
			continue
		}
		name, rest, ok := wasmString(body)
		if !ok {
			continue
		}
		switch name {
		case "go:buildid", "go:version":
			tc.goRuntime = true
		case "producers":
			tc.producers(rest)
		case "name":
			tc.names(rest)
		}
	}
	return tc
}

// exportNames reads the function names of an export section.
func (tc *toolchain) exportNames(b []byte) {
	count, b, ok := wasmU32(b)
	for i := uint32(0); ok && i < count; i++ {
		var name string
		if name, b, ok = wasmString(b); !ok || len(b) < 1 {
			return
		}
		kind := b[0]
		if _, b, ok = wasmU32(b[1:]); !ok {
			return
		}
		if kind == 0 {
			if tc.exports == nil {
				tc.exports = map[string]bool{}
			}
			tc.exports[name] = true
		}
	}
}

// producers reads a producers section: fields of (name, version) values.
func (tc *toolchain) producers(b []byte) {
	fields, b, ok := wasmU32(b)
	for i := uint32(0); ok && i < fields; i++ {
		var field string
		var values uint32
		if field, b, ok = wasmString(b); !ok {
			return
		}
		if values, b, ok = wasmU32(b); !ok {
			return
		}
		for j := uint32(0); j < values; j++ {
			var name string
			if name, b, ok = wasmString(b); !ok {
				return
			}
			if _, b, ok = wasmString(b); !ok { // version
				return
			}
			switch {
			case field == "language" && tc.language == "":
				tc.language = name
			case field == "processed-by" && tc.processedBy == "":
				tc.processedBy = name
			}
			if name == "Go" && (field == "language" || field == "processed-by") {
				tc.goRuntime = true
			}
		}
	}
}

// names reads the function names of a name section.
func (tc *toolchain) names(b []byte) {
	for len(b) > 0 {
		id := b[0]
		size, n := binary.Uvarint(b[1:])
		if n <= 0 || size > uint64(len(b)-1-n) {
			return
		}
		sub := b[1+n : 1+n+int(size)]
		b = b[1+n+int(size):]
		if id != 1 { // function names
			continue
		}
		count, sub, ok := wasmU32(sub)
		for i := uint32(0); ok && i < count; i++ {
			var name string
			if _, sub, ok = wasmU32(sub); !ok {
				return
			}
			if name, sub, ok = wasmString(sub); !ok {
				return
			}
			switch {
			case name == "__wasm_call_ctors":
				tc.ctors = true
			case name == sdkRefreshEnv:
				tc.sdkRefreshEnv = true
			case bytes.HasSuffix([]byte(name), []byte(".command_export")):
				tc.commandExports = true
			}
		}
	}
}

func wasmU32(b []byte) (uint32, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 || v > 1<<32-1 {
		return 0, nil, false
	}
	return uint32(v), b[n:], true
}

func wasmString(b []byte) (string, []byte, bool) {
	n, b, ok := wasmU32(b)
	if !ok || uint64(n) > uint64(len(b)) {
		return "", nil, false
	}
	return string(b[:n]), b[n:], true
}
