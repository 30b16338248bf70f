//go:build wasip1

package wasmrunner

import (
	"bytes"
	"os"
	"unsafe"
)

//go:wasmimport wasi_snapshot_preview1 environ_sizes_get
//go:noescape
func wasiEnvironSizesGet(count, size unsafe.Pointer) int32

//go:wasmimport wasi_snapshot_preview1 environ_get
//go:noescape
func wasiEnvironGet(environ, buf unsafe.Pointer) int32

// refreshEnv makes the process environment (os.Getenv) the host's
// environment of this step: Go reads it once, when the module starts, but
// it changes between steps (after_script has CI_JOB_STATUS).
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
	os.Clearenv()
	for _, kv := range bytes.Split(buf[:size], []byte{0}) {
		if k, v, ok := bytes.Cut(kv, []byte("=")); ok && len(k) > 0 {
			os.Setenv(string(k), string(v))
		}
	}
}
