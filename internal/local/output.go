package local

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sync"
)

// Style is how the logs of jobs that run at the same time are shown.
type Style string

const (
	// Raw writes each job's log as it comes, unchanged: for one job at a
	// time.
	Raw Style = "raw"
	// Prefix writes each line as it comes, after the job's name.
	Prefix Style = "prefix"
	// Group writes each job's log in one piece when the job ends.
	Group Style = "group"
)

// ParseStyle reads a --output value: raw, prefix or group.
func ParseStyle(s string) (Style, error) {
	switch st := Style(s); st {
	case Raw, Prefix, Group:
		return st, nil
	}
	return "", fmt.Errorf("%q is not an output style (raw, prefix or group)", s)
}

// maxGroup bounds what Group keeps of one job's log before it writes it
// (the engine bounds each log with its output limit too).
const maxGroup = 64 << 20

// Output writes the logs of jobs and the source's own messages to one
// writer, in a Style, with or without colours. It is safe for concurrent
// use.
type Output struct {
	w     io.Writer
	style Style
	color bool

	mu      sync.Mutex
	names   map[int64]string
	pending map[int64][]byte // Prefix: a partial last line; Group: the log so far
}

// NewOutput returns an Output on w. Without colour, ANSI escape sequences
// are removed from everything written.
func NewOutput(w io.Writer, style Style, color bool) *Output {
	return &Output{w: w, style: style, color: color, names: map[int64]string{}, pending: map[int64][]byte{}}
}

// ansi matches the escape sequences job logs use (SGR colours, erase
// line).
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// section matches GitLab's collapsible section markers, which only its
// web page shows as sections.
var section = regexp.MustCompile(`section_(?:start|end):[0-9]+:[A-Za-z0-9_.-]+(?:\[[^\]\n]*\])?\r?(?:\x1b\[0K)?`)

func (o *Output) clean(p []byte) []byte {
	p = section.ReplaceAll(p, nil)
	if !o.color {
		p = ansi.ReplaceAll(p, nil)
	}
	return p
}

// Printf writes a message of the source's own.
func (o *Output) Printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = o.w.Write(o.clean(fmt.Appendf(nil, format, args...)))
}

// Start announces a job: raw and prefixed logs print header now; a
// grouped one keeps it for the job's log.
func (o *Output) Start(id int64, name, header string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.names[id] = name
	if o.style == Group {
		o.pending[id] = append(o.pending[id][:0], header...)
		return
	}
	_, _ = o.w.Write(o.clean([]byte(header)))
}

// Write adds log bytes of job id.
func (o *Output) Write(id int64, p []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch o.style {
	case Group:
		if len(o.pending[id])+len(p) <= maxGroup {
			o.pending[id] = append(o.pending[id], p...)
		}
	case Prefix:
		buf := append(o.pending[id], p...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			o.writeLine(id, buf[:i+1])
			buf = buf[i+1:]
		}
		o.pending[id] = append([]byte(nil), buf...)
		if len(o.pending[id]) > 64<<10 { // a very long line: write what there is
			o.writeLine(id, append(o.pending[id], '\n'))
			o.pending[id] = nil
		}
	default:
		_, _ = o.w.Write(o.clean(p))
	}
}

func (o *Output) writeLine(id int64, line []byte) {
	prefix := o.names[id] + " | "
	if o.color {
		prefix = "\x1b[36m" + o.names[id] + "\x1b[0m | "
	}
	_, _ = o.w.Write(append([]byte(prefix), o.clean(line)...))
}

// End writes what is left of job id's log.
func (o *Output) End(id int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	rest := o.clean(o.pending[id])
	delete(o.pending, id)
	if len(rest) == 0 {
		return
	}
	if rest[len(rest)-1] != '\n' {
		rest = append(rest, '\n')
	}
	switch o.style {
	case Group:
		_, _ = o.w.Write(rest)
	case Prefix:
		o.writeLine(id, rest)
	}
}
