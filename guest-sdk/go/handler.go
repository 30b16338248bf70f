package wasmrunner

import (
	"fmt"
	"math"
	"runtime/debug"
)

// Handler runs the jobs routed to this module. Each job has a fresh
// instance of the module, so a Handler's fields live exactly as long as
// one job.
type Handler interface {
	// Step runs one phase of the job: PhaseScript with the job's script
	// lines (before_script and script), then, if the job has any,
	// PhaseAfterScript with its after_script lines. It returns the
	// phase's exit code: 0 is success. After a cancel or timeout
	// (Canceled reports true, Sleep and HTTP return ErrCanceled) it should
	// return soon: a grace period later it is interrupted.
	Step(script []string, phase Phase) int
	// Cleanup is called once after the last step, also after a cancel,
	// a timeout or a failed step, when the job's instance is about to be
	// discarded.
	Cleanup()
}

var registered Handler

// Handle registers the module's handler; call it from an init function of
// the main package. A later call replaces the handler.
func Handle(h Handler) { registered = h }

// runStep is the body of the wasmrunner_step export: it reads the step's
// script and runs the registered handler on it. A panic in the handler is
// logged to the job log and fails the step with exit code 1.
func runStep(phase Phase) (code int32) {
	if registered == nil {
		Println("wasmrunner: this module registered no handler (call wasmrunner.Handle from an init function)")
		return 1
	}
	defer func() {
		if p := recover(); p != nil {
			reportPanic("step", p)
			code = 1
		}
	}()
	refreshEnv()
	script, err := Script()
	if err != nil {
		Println("wasmrunner: reading the script:", err)
		return 1
	}
	return exitCode(registered.Step(script, phase))
}

// runCleanup is the body of the wasmrunner_cleanup export.
func runCleanup() {
	if registered == nil {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			reportPanic("cleanup", p)
		}
	}()
	registered.Cleanup()
}

// reportPanic writes a recovered panic and the stack to the job log.
func reportPanic(where string, p any) {
	_ = writeLog(fmt.Appendf(nil, "wasmrunner: the handler panicked in %s: %v\n%s", where, p, debug.Stack()))
}

// exitCode fits a handler's exit code into the ABI's i32.
func exitCode(code int) int32 {
	if code < math.MinInt32 || code > math.MaxInt32 {
		return 1
	}
	return int32(code)
}
