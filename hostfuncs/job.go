package hostfuncs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

func jobID(_ context.Context, e *Env, _ api.Module, _ []uint64) int64 { return e.Job.ID }

func jobProjectID(_ context.Context, e *Env, _ api.Module, _ []uint64) int64 {
	return e.Job.ProjectID
}

func jobTimeout(_ context.Context, e *Env, _ api.Module, _ []uint64) int64 {
	return int64(e.Job.Timeout / time.Second)
}

func jobString(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	var s string
	switch abi.Field(s32(stack[0])) {
	case abi.FieldName:
		s = e.Job.Name
	case abi.FieldStage:
		s = e.Job.Stage
	case abi.FieldProjectName:
		s = e.Job.ProjectName
	case abi.FieldImage:
		s = e.Job.Image
	default:
		return errno(abi.ErrNotFound)
	}
	buf, capacity := u32(stack[1]), u32(stack[2])
	if err := checkOutput(m, buf, capacity); err != abi.OK {
		return errno(err)
	}
	return outString(m, buf, capacity, s)
}

func phase(_ context.Context, e *Env, _ api.Module, _ []uint64) int64 { return int64(e.Phase) }

// lookupVar returns the last variable named key.
func (e *Env) lookupVar(key string) (Var, bool) {
	for i := len(e.Vars) - 1; i >= 0; i-- {
		if e.Vars[i].Name == key {
			return e.Vars[i], true
		}
	}
	return Var{}, false
}

func varGet(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	key, err := name(m, u32(stack[0]), u32(stack[1]))
	if err != abi.OK {
		return errno(err)
	}
	buf, capacity := u32(stack[2]), u32(stack[3])
	if err := checkOutput(m, buf, capacity); err != abi.OK {
		return errno(err)
	}
	v, ok := e.lookupVar(key)
	if !ok {
		e.sayHidden(abi.FuncVarGet, key)
		return errno(abi.ErrNotFound)
	}
	return outString(m, buf, capacity, v.Value)
}

// sayHidden tells the job log, once per name, why a variable the guest
// asked for is hidden from it.
func (e *Env) sayHidden(fn, key string) {
	if e.Hidden == nil || e.Log == nil {
		return
	}
	why := e.Hidden(key)
	if why == "" {
		return
	}
	e.mu.Lock()
	said := e.saidHidden[key]
	if !said {
		if e.saidHidden == nil {
			e.saidHidden = map[string]bool{}
		}
		e.saidHidden[key] = true
	}
	e.mu.Unlock()
	if !said {
		fmt.Fprintf(e.Log, "wasmrunner: %s: %s is hidden from this handler: %s\n", fn, logSafe(key), why)
	}
}

func varMasked(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	key, err := name(m, u32(stack[0]), u32(stack[1]))
	if err != abi.OK {
		return errno(err)
	}
	v, ok := e.lookupVar(key)
	switch {
	case !ok:
		return errno(abi.ErrNotFound)
	case v.Masked:
		return 1
	}
	return 0
}

func varNames(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	buf, capacity := u32(stack[0]), u32(stack[1])
	if err := checkOutput(m, buf, capacity); err != abi.OK {
		return errno(err)
	}
	var b strings.Builder
	seen := make(map[string]bool, len(e.Vars))
	for _, v := range e.Vars {
		if seen[v.Name] {
			continue
		}
		if len(seen) > 0 {
			b.WriteByte(0)
		}
		seen[v.Name] = true
		b.WriteString(v.Name)
	}
	return outString(m, buf, capacity, b.String())
}

func scriptCount(_ context.Context, e *Env, _ api.Module, _ []uint64) int64 {
	return int64(len(e.Script))
}

func scriptLine(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	i, buf, capacity := s32(stack[0]), u32(stack[1]), u32(stack[2])
	if i < 0 || int(i) >= len(e.Script) {
		return errno(abi.ErrInvalid)
	}
	if err := checkOutput(m, buf, capacity); err != abi.OK {
		return errno(err)
	}
	return outString(m, buf, capacity, e.Script[i])
}
