//go:build wasip1

package wasmrunner

import (
	"bytes"
	"os"
	"strings"
	"unsafe"
)

//go:wasmimport wasi_snapshot_preview1 environ_sizes_get
//go:noescape
func wasiEnvironSizesGet(count, size unsafe.Pointer) int32

//go:wasmimport wasi_snapshot_preview1 environ_get
//go:noescape
func wasiEnvironGet(environ, buf unsafe.Pointer) int32

// refreshEnv makes the process environment (os.Getenv) the host's
// environment of this step: Go reads it once, when the module starts (for
// a snapshot, when the runner loaded the module), but it changes between
// steps (after_script has CI_JOB_STATUS).
//
// Every job pays for it, with 60 to 100 variables, so this touches as few
// bytes as it can (a loop iteration in WebAssembly costs several times
// what it does natively): the entries are found
// from WASI's pointers (not by scanning for their ends), and only the
// variables that differ are set (os.Setenv checks every byte of its
// arguments) or unset.
func refreshEnv() {
	var count, size uint32
	if wasiEnvironSizesGet(unsafe.Pointer(&count), unsafe.Pointer(&size)) != 0 {
		return
	}
	// Pointers are 32-bit in wasm memory: one uint32 per entry.
	ptrs := make([]uint32, count+1)
	buf := make([]byte, size+1)
	if wasiEnvironGet(unsafe.Pointer(&ptrs[0]), unsafe.Pointer(&buf[0])) != 0 {
		return
	}
	base := uint32(uintptr(unsafe.Pointer(&buf[0])))
	// One string for the whole block: names and values are parts of it,
	// not an allocation each.
	block := string(buf[:size])
	var vars []string // "NAME=value", the host's
	for i, p := range ptrs[:count] {
		start, end, ok := environEntry(buf[:size], p-base, ptrs[i+1:count], base)
		if !ok {
			continue
		}
		kv := block[start:end]
		eq := strings.IndexByte(kv, '=')
		if eq <= 0 {
			continue
		}
		vars = append(vars, kv)
		if old, ok := os.LookupEnv(kv[:eq]); !ok || old != kv[eq+1:] {
			os.Setenv(kv[:eq], kv[eq+1:])
		}
	}
	// Every variable set is one of the host's unless there are more (or
	// the host gave a name twice: then look).
	if len(os.Environ()) == len(vars) {
		return
	}
	keys := make(map[string]struct{}, len(vars))
	for _, kv := range vars {
		keys[kv[:strings.IndexByte(kv, '=')]] = struct{}{}
	}
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "" {
			if _, ok := keys[k]; !ok {
				os.Unsetenv(k)
			}
		}
	}
}

// environEntry returns where the entry at offset off of the environment
// block buf ends (before its NUL): where the next entry starts (next[0],
// an address; base is buf's), which is where WASI's environ_get puts it;
// otherwise (the last one, or entries in another order) at its NUL.
func environEntry(buf []byte, off uint32, next []uint32, base uint32) (start, end int, ok bool) {
	if off >= uint32(len(buf)) {
		return 0, 0, false
	}
	if len(next) > 0 {
		if e := next[0] - base; e > off && e <= uint32(len(buf)) && buf[e-1] == 0 {
			return int(off), int(e - 1), true
		}
	}
	if n := bytes.IndexByte(buf[off:], 0); n >= 0 {
		return int(off), int(off) + n, true
	}
	return int(off), len(buf), true
}
