// Package joblog is a log/slog handler for Go job handlers: records go to
// the job log, formatted as the runner formats the slog records of its
// own (native Go) handlers, so library code that logs with log/slog
// reaches the job log without a job handle threaded through it.
//
// One line in init makes every slog call of the module write to the job
// log:
//
//	func init() {
//		slog.SetDefault(slog.New(joblog.NewHandler(nil)))
//		wasmrunner.Handle(myHandler{})
//	}
//
// A record is one line: the level (coloured for GitLab's log view), the
// message and the attributes as key=value, groups as dotted keys, values
// quoted when they hold spaces, '=', quotes or control characters:
//
//	WARN lab busy, retrying lab=hw-7 attempt=2 wait=30s
//
// No time is written: GitLab timestamps job log lines itself. The runner
// masks records like all output, and they count against the handler's
// limits.log. Without the handler, slog's default logger writes to
// standard error, which reaches the job log too, in log's format.
//
// It is a package of its own so that handlers that do not log with slog
// do not link log/slog.
package joblog

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
)

// Options configure a handler.
type Options struct {
	// Level is the least level of the records written; default
	// slog.LevelInfo.
	Level slog.Leveler
}

// NewHandler returns a handler writing records to the job log (opts may
// be nil).
func NewHandler(opts *Options) slog.Handler {
	return newHandler(wasmrunner.Log, opts)
}

// New returns a logger writing to the job log, for records of level Info
// and above.
func New() *slog.Logger { return slog.New(NewHandler(nil)) }

func newHandler(w io.Writer, opts *Options) *handler {
	h := &handler{out: &output{w: w}, level: slog.LevelInfo}
	if opts != nil && opts.Level != nil {
		h.level = opts.Level
	}
	return h
}

// output is where a handler and those derived from it write.
type output struct {
	mu sync.Mutex
	w  io.Writer
}

type handler struct {
	out    *output
	level  slog.Leveler
	pre    []byte // attributes of WithAttrs, formatted
	prefix string // open groups, "a.b."
}

var _ slog.Handler = (*handler)(nil)

func (h *handler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	buf := appendRecord(make([]byte, 0, 128), r, h.pre, h.prefix)
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	_, err := h.out.w.Write(buf)
	return err
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.pre = slices.Clip(h.pre)
	for _, a := range attrs {
		h2.pre = appendAttr(h2.pre, a, h.prefix)
	}
	return &h2
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

// Level colours: the ANSI escapes the runner uses in job logs.
const (
	colourError = "\x1b[31;1m"
	colourWarn  = "\x1b[33;1m"
	colourInfo  = "\x1b[36;1m"
	colourDebug = "\x1b[0;90m"
	colourReset = "\x1b[0;m"
)

func appendRecord(buf []byte, r slog.Record, pre []byte, prefix string) []byte {
	switch {
	case r.Level >= slog.LevelError:
		buf = append(buf, colourError...)
	case r.Level >= slog.LevelWarn:
		buf = append(buf, colourWarn...)
	case r.Level >= slog.LevelInfo:
		buf = append(buf, colourInfo...)
	default:
		buf = append(buf, colourDebug...)
	}
	buf = append(buf, r.Level.String()...)
	buf = append(buf, colourReset...)
	if msg := strings.TrimRight(r.Message, "\n"); msg != "" {
		buf = append(buf, ' ')
		buf = append(buf, msg...)
	}
	buf = append(buf, pre...)
	r.Attrs(func(a slog.Attr) bool {
		buf = appendAttr(buf, a, prefix)
		return true
	})
	return append(buf, '\n')
}

func appendAttr(buf []byte, a slog.Attr, prefix string) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			buf = appendAttr(buf, g, prefix)
		}
		return buf
	}
	buf = append(buf, ' ')
	buf = appendString(buf, prefix+a.Key)
	buf = append(buf, '=')
	var s string
	switch a.Value.Kind() {
	case slog.KindTime:
		s = a.Value.Time().Format("2006-01-02T15:04:05.000Z07:00")
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			s = err.Error()
			break
		}
		s = a.Value.String()
	default:
		s = a.Value.String()
	}
	return appendString(buf, s)
}

func appendString(buf []byte, s string) []byte {
	if s == "" || needsQuote(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

func needsQuote(s string) bool {
	for _, c := range s {
		if c <= ' ' || c == '=' || c == '"' || c == 0x7f || c == utf8.RuneError || !strconv.IsPrint(c) {
			return true
		}
	}
	return false
}
