package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// Phase is the part of the job a step belongs to.
type Phase int

// Phases of a job, in the order they run.
const (
	// Script is the job's script (before_script and script joined).
	Script Phase = iota
	// AfterScript runs after Script whatever its result (but not after a
	// timeout or a hard cancel); its result does not change the job's.
	AfterScript
)

// String returns GitLab's name of the phase's step.
func (p Phase) String() string {
	switch p {
	case Script:
		return "script"
	case AfterScript:
		return "after_script"
	}
	return fmt.Sprintf("Phase(%d)", int(p))
}

// Handler does the work of one job. The engine calls Step for each phase
// that has script lines, then Cleanup exactly once.
type Handler interface {
	// Step runs the script lines of one phase. ctx ends when the job times
	// out or is cancelled; a handler must return soon after. A nil error
	// is success; an [*ExitError] fails the step with its exit code; a
	// [*JobError] fails the job with its GitLab failure reason; any other
	// error fails it as a script failure.
	Step(ctx context.Context, script []string, phase Phase) error
	// Cleanup releases what the handler holds. It always runs once the
	// handler exists, also after a cancellation or timeout, with a context
	// of its own.
	Cleanup(ctx context.Context)
}

// StepAbandoner is a [Handler] whose Step returns on its own soon after
// its context ends, abandoning whatever does not stop (engine/modules'
// WebAssembly handlers do, within resource.Stop.Interrupt and a little
// more). The engine calls its Step on the job's own goroutine instead of
// on one it could abandon: a goroutine fewer for every running job, which
// counts when thousands of jobs wait at once.
type StepAbandoner interface {
	Handler
	// AbandonsStep marks the handler; it does nothing.
	AbandonsStep()
}

// HandlerFactory creates the handler of a job. An error fails the job as a
// runner system failure, with the error's message in the job log.
type HandlerFactory func(ctx context.Context, job *Job) (Handler, error)

// ExitError is a step that ended with a non-zero exit code.
type ExitError struct {
	Code int
}

// Exit returns an error for a step that ended with exit code code.
func Exit(code int) error { return &ExitError{Code: code} }

func (e *ExitError) Error() string { return fmt.Sprintf("exit code %d", e.Code) }

// JobError fails a job with a given GitLab failure reason. Reasons GitLab
// does not accept for the job are sent as unknown_failure.
type JobError struct {
	Reason gitlab.FailureReason
	Err    error
}

// NewJobError returns a [*JobError] for reason wrapping err.
func NewJobError(reason gitlab.FailureReason, err error) error {
	return &JobError{Reason: reason, Err: err}
}

func (e *JobError) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return e.Err.Error()
}

func (e *JobError) Unwrap() error { return e.Err }

// Errors the engine reports as job results; test them with errors.Is.
var (
	// ErrTimeout: the job ran longer than its timeout.
	ErrTimeout = errors.New("job execution timeout")
	// ErrCanceled: the job was cancelled in GitLab.
	ErrCanceled = errors.New("job canceled")
	// ErrAborted: the runner aborted the job while shutting down.
	ErrAborted = errors.New("job aborted: the runner is shutting down")
	// ErrHandlerPanic: the handler panicked.
	ErrHandlerPanic = errors.New("handler panicked")
)
