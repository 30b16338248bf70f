package wasmrunner

import "strconv"

// Errno is an error code a host function returned. The codes are the
// negative numbers of the guest ABI; compare with errors.Is or ==.
type Errno int32

// Error codes of the guest ABI.
const (
	// ErrFault: a pointer and length did not lie inside guest memory.
	ErrFault Errno = -1
	// ErrTooLarge: an argument exceeded a limit of the host.
	ErrTooLarge Errno = -2
	// ErrNotFound: no such variable, dependency, file or field.
	ErrNotFound Errno = -3
	// ErrInvalid: a malformed argument (bad UTF-8, index, path, request).
	ErrInvalid Errno = -4
	// ErrPhase: the function cannot be called now.
	ErrPhase Errno = -5
	// ErrDenied: the handler's manifest does not allow it.
	ErrDenied Errno = -6
	// ErrCanceled: the job was cancelled or timed out meanwhile.
	ErrCanceled Errno = -7
	// ErrIO: the host failed (network, disk); the job log says why.
	ErrIO Errno = -8
)

// Error returns the code's name.
func (e Errno) Error() string {
	var s string
	switch e {
	case ErrFault:
		s = "fault"
	case ErrTooLarge:
		s = "too large"
	case ErrNotFound:
		s = "not found"
	case ErrInvalid:
		s = "invalid"
	case ErrPhase:
		s = "wrong phase"
	case ErrDenied:
		s = "denied"
	case ErrCanceled:
		s = "canceled"
	case ErrIO:
		s = "i/o error"
	default:
		s = "error " + strconv.Itoa(int(e))
	}
	return "wasmrunner: " + s
}

// Limits of single host calls (the host refuses more with ErrTooLarge).
const (
	// MaxLogWrite is the most bytes one log call takes; the log functions
	// of this package split longer text.
	MaxLogWrite = 1 << 20
	// MaxName is the longest name (variable, file, section) accepted.
	MaxName = 4096
	// MaxArtifactData is the most bytes AddArtifactData takes.
	MaxArtifactData = 64 << 20
	// MaxHTTPRequest is the largest encoded HTTP request accepted.
	MaxHTTPRequest = 16 << 20
)

// status turns the result of a host function without output into an error.
func status(r int32) error {
	if r < 0 {
		return Errno(r)
	}
	return nil
}
