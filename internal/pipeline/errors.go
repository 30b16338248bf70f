package pipeline

import (
	"fmt"
	"strconv"
	"strings"
)

// FileName is the name used for the configuration in messages.
const FileName = ".gitlab-ci.yml"

// Error is an invalid configuration: bad YAML, a value of the wrong type, a
// reference to an unknown job, a cycle, and the like.
type Error struct {
	File string // the included file concerned; "" for the main one
	Line int    // 1-based line of the offending value; 0 when not known
	Job  string // job or template concerned; "" for the top level or default:
	Msg  string // what is wrong, without the location
	Err  error  // underlying cause, if any
}

// Error formats the error as `.gitlab-ci.yml:LINE: job "NAME": MESSAGE`.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString(FileName)
	}
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Job != "" {
		fmt.Fprintf(&b, "job %q: ", e.Job)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// errAt builds an *Error located at v (which may be nil).
func errAt(v *value, job, format string, args ...any) *Error {
	e := &Error{Job: job, Msg: fmt.Sprintf(format, args...)}
	if v != nil {
		e.Line, e.File = v.line, v.file
	}
	return e
}
