package hostfuncs

import (
	"context"
	"math"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

func sleepMillis(ctx context.Context, e *Env, _ api.Module, stack []uint64) int64 {
	ms := s64(stack[0])
	if ms < 0 {
		return errno(abi.ErrInvalid)
	}
	if e.stopped(ctx) {
		return errno(abi.ErrCanceled)
	}
	if ms == 0 {
		return 0
	}
	d := time.Duration(math.MaxInt64)
	if ms < int64(math.MaxInt64/time.Millisecond) {
		d = time.Duration(ms) * time.Millisecond
	}
	if e.Idle != nil {
		e.Idle(d)
	}
	var stop <-chan struct{}
	if e.Stop != nil {
		stop = e.Stop.Done()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return 0
	case <-stop:
	case <-ctx.Done():
	}
	return errno(abi.ErrCanceled)
}

func isCanceled(ctx context.Context, e *Env, _ api.Module, _ []uint64) int64 {
	if e.stopped(ctx) {
		return 1
	}
	return 0
}
