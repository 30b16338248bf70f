package hostfuncs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"math"
	"strings"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

func depCount(_ context.Context, e *Env, _ api.Module, _ []uint64) int64 {
	return int64(len(e.Deps))
}

// dep returns the dependency at index i.
func (e *Env) dep(i int32) (Dependency, abi.Errno) {
	if i < 0 || int(i) >= len(e.Deps) || e.Deps[i] == nil {
		return nil, abi.ErrInvalid
	}
	return e.Deps[i], abi.OK
}

func depID(_ context.Context, e *Env, _ api.Module, stack []uint64) int64 {
	d, err := e.dep(s32(stack[0]))
	if err != abi.OK {
		return errno(err)
	}
	return d.ID()
}

func depName(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	d, err := e.dep(s32(stack[0]))
	if err != abi.OK {
		return errno(err)
	}
	buf, capacity := u32(stack[1]), u32(stack[2])
	if err := checkOutput(m, buf, capacity); err != abi.OK {
		return errno(err)
	}
	return outString(m, buf, capacity, d.Name())
}

func depFiles(ctx context.Context, e *Env, m api.Module, stack []uint64) int64 {
	d, err := e.dep(s32(stack[0]))
	if err != abi.OK {
		return errno(err)
	}
	buf, capacity := u32(stack[1]), u32(stack[2])
	if err := checkOutput(m, buf, capacity); err != abi.OK {
		return errno(err)
	}
	ctx, cancel := e.blocking(ctx)
	defer cancel()
	files, ferr := d.Files(ctx)
	if ferr != nil {
		return e.blockingErr(ctx, abi.FuncDepFiles, ferr)
	}
	return outString(m, buf, capacity, strings.Join(files, "\x00"))
}

// depFile decodes the (index, name_ptr, name_len) arguments at stack[0:3].
func (e *Env) depFile(m api.Module, stack []uint64) (Dependency, string, abi.Errno) {
	d, err := e.dep(s32(stack[0]))
	if err != abi.OK {
		return nil, "", err
	}
	file, err := name(m, u32(stack[1]), u32(stack[2]))
	if err != abi.OK {
		return nil, "", err
	}
	return d, file, abi.OK
}

// open opens a file of d for the host function fn; a negative result is
// an error code.
func (e *Env) open(ctx context.Context, fn string, d Dependency, file string) (io.ReaderAt, int64) {
	ctx, cancel := e.blocking(ctx)
	defer cancel()
	r, size, err := d.Open(ctx, file)
	switch {
	case err != nil:
		return nil, e.blockingErr(ctx, fn, err)
	case r == nil || size < 0:
		return nil, e.failed(fn, errors.New("the dependency returned no file"))
	}
	return r, size
}

func depFileSize(ctx context.Context, e *Env, m api.Module, stack []uint64) int64 {
	d, file, err := e.depFile(m, stack)
	if err != abi.OK {
		return errno(err)
	}
	_, size := e.open(ctx, abi.FuncDepFileSize, d, file)
	return size
}

func depRead(ctx context.Context, e *Env, m api.Module, stack []uint64) int64 {
	d, file, err := e.depFile(m, stack)
	if err != abi.OK {
		return errno(err)
	}
	off, buf, capacity := s64(stack[3]), u32(stack[4]), u32(stack[5])
	if off < 0 {
		return errno(abi.ErrInvalid)
	}
	if err := checkOutput(m, buf, capacity); err != abi.OK {
		return errno(err)
	}
	r, size := e.open(ctx, abi.FuncDepRead, d, file)
	if size < 0 {
		return size
	}
	if off >= size || capacity == 0 {
		return 0
	}
	p, _ := memory(m).Read(buf, uint32(min(int64(capacity), size-off, math.MaxInt32)))
	n, rerr := r.ReadAt(p, off)
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return e.failed(abi.FuncDepRead, rerr)
	}
	return int64(n)
}

func artifactAddFile(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	rel, err := name(m, u32(stack[0]), u32(stack[1]))
	if err != abi.OK {
		return errno(err)
	}
	if e.Artifacts == nil {
		return errno(abi.ErrDenied)
	}
	return e.artifactErr(abi.FuncArtifactAddFile, e.Artifacts.AddFile(rel))
}

func artifactAddData(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	file, err := name(m, u32(stack[0]), u32(stack[1]))
	if err != abi.OK {
		return errno(err)
	}
	data, err := input(m, u32(stack[2]), u32(stack[3]), abi.MaxArtifactData)
	if err != abi.OK {
		return errno(err)
	}
	if e.Artifacts == nil {
		return errno(abi.ErrDenied)
	}
	// data is a view of the guest's memory, valid for the call: the sink
	// writes it out before returning (no 64 MiB copy on the host's heap).
	return e.artifactErr(abi.FuncArtifactAddData, e.Artifacts.AddData(file, data))
}

func (e *Env) artifactErr(fn string, err error) int64 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, fs.ErrInvalid):
		return errno(abi.ErrInvalid)
	case errors.Is(err, fs.ErrNotExist):
		return errno(abi.ErrNotFound)
	case errors.Is(err, ErrLimit):
		e.failed(fn, err)
		return errno(abi.ErrTooLarge)
	}
	return e.failed(fn, err)
}
