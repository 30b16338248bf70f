package hostfuncs

import (
	"context"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

// lineScratch is the longest log_line that reuses Env's scratch buffer;
// longer lines get a buffer of their own, not kept.
const lineScratch = 4096

func logWrite(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	b, err := input(m, u32(stack[0]), u32(stack[1]), abi.MaxLogWrite)
	if err != abi.OK {
		return errno(err)
	}
	if e.Log == nil || len(b) == 0 {
		return 0
	}
	if _, err := e.Log.Write(b); err != nil {
		return errno(abi.ErrIO)
	}
	return 0
}

func logLine(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	b, err := input(m, u32(stack[0]), u32(stack[1]), abi.MaxLogWrite)
	if err != abi.OK {
		return errno(err)
	}
	if e.Log == nil {
		return 0
	}
	if e.writeLine(b) != nil {
		return errno(abi.ErrIO)
	}
	return 0
}

// writeLine writes b and a newline to the log in one Write, so that
// nothing else written to the log comes between them.
func (e *Env) writeLine(b []byte) error {
	if len(b) > lineScratch {
		line := make([]byte, len(b)+1)
		copy(line, b)
		line[len(b)] = '\n'
		_, err := e.Log.Write(line)
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.line = append(append(e.line[:0], b...), '\n')
	_, err := e.Log.Write(e.line)
	return err
}

func sectionStart(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	sec, err := name(m, u32(stack[0]), u32(stack[1]))
	if err != abi.OK {
		return errno(err)
	}
	header, err := input(m, u32(stack[2]), u32(stack[3]), abi.MaxLogWrite)
	if err != abi.OK {
		return errno(err)
	}
	if e.Sections != nil {
		e.Sections.StartSection(sec, string(header))
	}
	return 0
}

func sectionEnd(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	sec, err := name(m, u32(stack[0]), u32(stack[1]))
	if err != abi.OK {
		return errno(err)
	}
	if e.Sections != nil {
		e.Sections.EndSection(sec)
	}
	return 0
}
