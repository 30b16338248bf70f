package hostfuncs

import (
	"context"
	"encoding/binary"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// wasiFault is WASI's errno for a bad address (ERRNO_FAULT).
const wasiFault = 21

// InstantiateWASI defines the WASI module (wasi_snapshot_preview1) in r as
// wazero implements it, except that environ_get and environ_sizes_get read
// the environment of the [Env] attached to the guest call ([Env.Environ]),
// not one fixed when the instance started: a reactor guest that reads its
// environment in after_script sees that step's (CI_JOB_STATUS), and no job
// variable can stand in for a variable the runner sets. A call without an
// Env sees an empty environment.
func InstantiateWASI(ctx context.Context, r wazero.Runtime) (api.Closer, error) {
	b := r.NewHostModuleBuilder(wasi_snapshot_preview1.ModuleName)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(environSizesGet), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("result.environc", "result.environv_len").
		Export("environ_sizes_get")
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(environGet), []api.ValueType{i32, i32}, []api.ValueType{i32}).
		WithParameterNames("environ", "environ_buf").
		Export("environ_get")
	return b.Instantiate(ctx)
}

func environOf(ctx context.Context) []string {
	if e := envFrom(ctx); e != nil {
		return e.Environ
	}
	if c, ok := ctx.Value(initKey{}).(*InitCalls); ok {
		return c.environ
	}
	return nil
}

func environSizesGet(ctx context.Context, m api.Module, stack []uint64) {
	env := environOf(ctx)
	size := 0
	for _, kv := range env {
		size += len(kv) + 1
	}
	mem := memory(m)
	if mem == nil || !mem.WriteUint32Le(uint32(stack[0]), uint32(len(env))) || !mem.WriteUint32Le(uint32(stack[1]), uint32(size)) {
		stack[0] = wasiFault
		return
	}
	stack[0] = 0
}

func environGet(ctx context.Context, m api.Module, stack []uint64) {
	env := environOf(ctx)
	mem := memory(m)
	ptrs, buf := uint32(stack[0]), uint32(stack[1])
	size := 0
	for _, kv := range env {
		size += len(kv) + 1
	}
	if mem == nil || uint64(ptrs)+4*uint64(len(env)) > uint64(mem.Size()) || uint64(buf)+uint64(size) > uint64(mem.Size()) {
		stack[0] = wasiFault
		return
	}
	p, _ := mem.Read(ptrs, uint32(4*len(env)))
	b, _ := mem.Read(buf, uint32(size))
	off := 0
	for i, kv := range env {
		binary.LittleEndian.PutUint32(p[4*i:], buf+uint32(off))
		off += copy(b[off:], kv)
		b[off] = 0
		off++
	}
	stack[0] = 0
}
