package wasmrunner

// hostABI is the host module "wasmrunner:host/v1" as Go methods: one per
// host function, with Go strings and slices in place of (ptr, len) pairs.
// Results are those of the ABI: a length or value, or a negative Errno.
//
// The package calls the host only through the variable host, which is the
// real import module in a wasip1 build, a stub that panics elsewhere, and a
// fake in the package's tests.
type hostABI interface {
	logWrite(b []byte) int32
	logLine(b []byte) int32
	sectionStart(name, header string) int32
	sectionEnd(name string) int32

	jobID() int64
	jobProjectID() int64
	jobTimeout() int64
	jobString(field int32, buf []byte) int32
	phase() int32
	scriptCount() int32
	scriptLine(index int32, buf []byte) int32

	varGet(name string, buf []byte) int32
	varMasked(name string) int32
	varNames(buf []byte) int32

	depCount() int32
	depID(index int32) int64
	depName(index int32, buf []byte) int32
	depFiles(index int32, buf []byte) int32
	depFileSize(index int32, name string) int64
	depRead(index int32, name string, offset int64, buf []byte) int32

	artifactAddFile(path string) int32
	artifactAddData(name string, data []byte) int32

	sleepMillis(ms int64) int32
	isCanceled() int32

	httpRequest(req, buf []byte) int32
	httpResponse(buf []byte) int32
}

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
