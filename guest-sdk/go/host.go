package wasmrunner

import "github.com/wasmrunner/wasmrunner/guest-sdk/go/internal/hostabi"

// hostABI is the host module "wasmrunner:host/v1" as Go methods (see
// hostabi.Host). The package calls the host only through the variable
// host: the real import module in a wasip1 build, elsewhere the fake a test
// installed with package sdktest (or a stub that panics).
type hostABI = hostabi.Host

// Job fields for job_string.
const (
	fieldName        = 0
	fieldStage       = 1
	fieldProjectName = 2
	fieldImage       = 3
)

// firstBuffer is the size of the buffer the first call of a function with
// output gets: most names and values fit, so one call usually does.
const firstBuffer = 256

// maxAttempts bounds the calls readGrowing makes: the host returns the
// same length again, so a second call always suffices unless the result
// changed in between.
const maxAttempts = 4

// readGrowing calls a host function with output until its result fits:
// call writes at most len(buf) bytes to buf and returns the full length of
// the result, or a negative Errno. first is the size of the first buffer
// (0 asks for the length first).
func readGrowing(first int, call func(buf []byte) int32) ([]byte, error) {
	buf := make([]byte, first)
	for range maxAttempts {
		n := call(buf)
		switch {
		case n < 0:
			return nil, Errno(n)
		case int(n) <= len(buf):
			return buf[:n:n], nil
		}
		buf = make([]byte, n)
	}
	return nil, ErrTooLarge
}

// readString is readGrowing for a text result.
func readString(call func(buf []byte) int32) (string, error) {
	b, err := readGrowing(firstBuffer, call)
	return string(b), err
}

// splitList splits a NUL-separated list of names. The empty string is the
// empty list; an empty name between two NULs is kept.
func splitList(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	n := 1
	for _, c := range b {
		if c == 0 {
			n++
		}
	}
	out := make([]string, 0, n)
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return append(out, string(b[start:]))
}
