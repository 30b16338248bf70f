package modules

import (
	"context"
	"errors"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmrunner/wasmrunner/internal/wasmbin"
)

// instantiateInterruptCheck instantiates in rt the host function that the
// checks wasmbin.Interruptible adds to a module call.
func instantiateInterruptCheck(ctx context.Context, rt wazero.Runtime) (api.Closer, error) {
	return rt.NewHostModuleBuilder(wasmbin.InterruptModule).NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(interruptCheck), nil, nil).
		WithName(wasmbin.InterruptFunc).
		Export(wasmbin.InterruptFunc).
		Instantiate(ctx)
}

// interruptCheck ends the guest's call when its context is done (the
// job's time is up, or it was cancelled, and the grace is over), as
// wazero's close-on-context-done would: the module is closed with the
// exit code wazero uses for it, and the call returns that *sys.ExitError
// (see handler.guestError). Otherwise it returns at once: being called is
// what gives Go's scheduler the goroutine back.
func interruptCheck(ctx context.Context, m api.Module, _ []uint64) {
	err := ctx.Err()
	if err == nil {
		return
	}
	code := sys.ExitCodeContextCanceled
	if errors.Is(err, context.DeadlineExceeded) {
		code = sys.ExitCodeDeadlineExceeded
	}
	_ = m.CloseWithExitCode(context.Background(), code)
	panic(sys.NewExitError(code))
}
