package hostfuncs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"reflect"
	"runtime/debug"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// impl is the body of a host function. It reads its parameters from
// stack and returns its result: a value or a negative abi.Errno, which the
// wrapper stores as the function's i32 or i64 result.
type impl func(ctx context.Context, e *Env, m api.Module, stack []uint64) int64

// hostFunc describes one function of the module.
type hostFunc struct {
	name   string
	params []string        // parameter names
	types  []api.ValueType // parameter types
	result api.ValueType
	fn     impl
}

// functions lists the module's functions in the order of abi.
var functions = []hostFunc{
	{abi.FuncLogWrite, names("ptr", "len"), types(i32, i32), i32, logWrite},
	{abi.FuncLogLine, names("ptr", "len"), types(i32, i32), i32, logLine},
	{abi.FuncSectionStart, names("name_ptr", "name_len", "header_ptr", "header_len"), types(i32, i32, i32, i32), i32, sectionStart},
	{abi.FuncSectionEnd, names("name_ptr", "name_len"), types(i32, i32), i32, sectionEnd},

	{abi.FuncJobID, nil, nil, i64, jobID},
	{abi.FuncJobProjectID, nil, nil, i64, jobProjectID},
	{abi.FuncJobTimeout, nil, nil, i64, jobTimeout},
	{abi.FuncJobString, names("field", "buf", "cap"), types(i32, i32, i32), i32, jobString},
	{abi.FuncPhase, nil, nil, i32, phase},

	{abi.FuncVarGet, names("name_ptr", "name_len", "buf", "cap"), types(i32, i32, i32, i32), i32, varGet},
	{abi.FuncVarMasked, names("name_ptr", "name_len"), types(i32, i32), i32, varMasked},
	{abi.FuncVarNames, names("buf", "cap"), types(i32, i32), i32, varNames},

	{abi.FuncScriptCount, nil, nil, i32, scriptCount},
	{abi.FuncScriptLine, names("index", "buf", "cap"), types(i32, i32, i32), i32, scriptLine},

	{abi.FuncDepCount, nil, nil, i32, depCount},
	{abi.FuncDepID, names("index"), types(i32), i64, depID},
	{abi.FuncDepName, names("index", "buf", "cap"), types(i32, i32, i32), i32, depName},
	{abi.FuncDepFiles, names("index", "buf", "cap"), types(i32, i32, i32), i32, depFiles},
	{abi.FuncDepFileSize, names("index", "name_ptr", "name_len"), types(i32, i32, i32), i64, depFileSize},
	{abi.FuncDepRead, names("index", "name_ptr", "name_len", "offset", "buf", "cap"), types(i32, i32, i32, i64, i32, i32), i32, depRead},

	{abi.FuncArtifactAddFile, names("path_ptr", "path_len"), types(i32, i32), i32, artifactAddFile},
	{abi.FuncArtifactAddData, names("name_ptr", "name_len", "data_ptr", "data_len"), types(i32, i32, i32, i32), i32, artifactAddData},

	{abi.FuncSleep, names("millis"), types(i64), i32, sleepMillis},
	{abi.FuncCanceled, nil, nil, i32, isCanceled},

	{abi.FuncHTTPRequest, names("req_ptr", "req_len", "buf", "cap"), types(i32, i32, i32, i32), i32, httpRequest},
	{abi.FuncHTTPResponse, names("buf", "cap"), types(i32, i32), i32, httpResponse},
}

func names(n ...string) []string               { return n }
func types(t ...api.ValueType) []api.ValueType { return t }

// Instantiate defines the host module [ModuleName] in r. Its functions act
// on the [Env] attached ([WithEnv]) to the context of the guest call that
// reaches them; a call without an Env gets [abi.ErrPhase]. Closing the
// result (or r) removes the module.
func Instantiate(ctx context.Context, r wazero.Runtime) (api.Closer, error) {
	b := r.NewHostModuleBuilder(ModuleName)
	for i := range functions {
		f := &functions[i]
		b.NewFunctionBuilder().
			WithGoModuleFunction(f.goFunc(), f.types, []api.ValueType{f.result}).
			WithParameterNames(f.params...).
			WithResultNames("result").
			Export(f.name)
	}
	return b.Instantiate(ctx)
}

// goFunc wraps f.fn: it finds the Env, stores the result and turns a
// panic into ErrIO.
func (f *hostFunc) goFunc() api.GoModuleFunc {
	fn, name, wide := f.fn, f.name, f.result == i64
	return func(ctx context.Context, m api.Module, stack []uint64) {
		e := envFrom(ctx)
		defer func() {
			if v := recover(); v != nil {
				setResult(stack, wide, int64(abi.ErrIO))
				if e != nil && e.Logger != nil {
					e.Logger.Error("host function panicked", "func", name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				}
			}
		}()
		r := int64(abi.ErrPhase)
		if e != nil {
			r = fn(ctx, e, m, stack)
		} else if c, ok := ctx.Value(initKey{}).(*InitCalls); ok {
			c.calls.Add(1)
		}
		setResult(stack, wide, r)
	}
}

func setResult(stack []uint64, wide bool, r int64) {
	if wide {
		stack[0] = uint64(r)
	} else {
		stack[0] = uint64(uint32(int32(r)))
	}
}

func errno(e abi.Errno) int64 { return int64(e) }

// Parameter decoding.

func u32(v uint64) uint32 { return uint32(v) }
func s32(v uint64) int32  { return int32(uint32(v)) }
func s64(v uint64) int64  { return int64(v) }

// memory returns the guest's memory, or nil if it has none.
func memory(m api.Module) api.Memory {
	mem := m.Memory()
	if mem == nil {
		return nil
	}
	// wazero returns a typed nil for a module without memory.
	if v := reflect.ValueOf(mem); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil
	}
	return mem
}

// input returns a view of the guest's bytes [ptr, ptr+n), at most limit
// of them.
func input(m api.Module, ptr, n, limit uint32) ([]byte, abi.Errno) {
	if n > limit {
		return nil, abi.ErrTooLarge
	}
	mem := memory(m)
	if mem == nil {
		return nil, abi.ErrFault
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return nil, abi.ErrFault
	}
	return b, abi.OK
}

// name returns a name (variable, file, section, path) from guest memory.
func name(m api.Module, ptr, n uint32) (string, abi.Errno) {
	b, err := input(m, ptr, n, abi.MaxName)
	if err != abi.OK {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", abi.ErrInvalid
	}
	return string(b), abi.OK
}

// checkOutput checks that the output buffer (buf, cap) lies in memory.
func checkOutput(m api.Module, buf, capacity uint32) abi.Errno {
	if capacity == 0 {
		return abi.OK
	}
	mem := memory(m)
	if mem == nil {
		return abi.ErrFault
	}
	if _, ok := mem.Read(buf, capacity); !ok {
		return abi.ErrFault
	}
	return abi.OK
}

// outString writes s to (buf, cap) if it fits and returns its length.
func outString(m api.Module, buf, capacity uint32, s string) int64 {
	if len(s) > math.MaxInt32 {
		return errno(abi.ErrTooLarge)
	}
	if len(s) > 0 && uint64(len(s)) <= uint64(capacity) {
		if !memory(m).WriteString(buf, s) {
			return errno(abi.ErrFault)
		}
	}
	return int64(len(s))
}

// outBytes writes b to (buf, cap) if it fits and returns its length.
func outBytes(m api.Module, buf, capacity uint32, b []byte) int64 {
	if len(b) > math.MaxInt32 {
		return errno(abi.ErrTooLarge)
	}
	if len(b) > 0 && uint64(len(b)) <= uint64(capacity) {
		if !memory(m).Write(buf, b) {
			return errno(abi.ErrFault)
		}
	}
	return int64(len(b))
}

// stopped reports whether the step should stop.
func (e *Env) stopped(ctx context.Context) bool {
	return ctx.Err() != nil || (e.Stop != nil && e.Stop.Err() != nil)
}

// blocking returns a context for a blocking call: it ends with the guest
// call's context or with e.Stop.
func (e *Env) blocking(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	if e.Stop == nil {
		return ctx, cancel
	}
	stop := context.AfterFunc(e.Stop, cancel)
	return ctx, func() { stop(); cancel() }
}

// failed reports a host failure in the job log and returns ErrIO.
func (e *Env) failed(fn string, err error) int64 {
	if e.Log != nil {
		fmt.Fprintf(e.Log, "wasmrunner: %s: %v\n", fn, err)
	}
	return errno(abi.ErrIO)
}

// blockingErr maps an error of a blocking call made with ctx (from
// blocking) to an error code.
func (e *Env) blockingErr(ctx context.Context, fn string, err error) int64 {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errno(abi.ErrNotFound)
	case ctx.Err() != nil:
		return errno(abi.ErrCanceled)
	}
	return e.failed(fn, err)
}
