package engine

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Handler code (and the libraries it calls) can log with log/slog into
// the job's log, the way the Rust gitlab-runner crate's tracing layer
// lets `tracing` events inside a job's span land in that job's trace:
//
//   - [Job.Logger] is a logger whose records go to the job's log;
//   - every context the engine passes a handler (to the HandlerFactory, to
//     Step and to Cleanup) carries its job, so a process whose default
//     logger has a [NewLogHandler] handler sends the records of
//     slog.InfoContext(ctx, ...) and its siblings, called with such a
//     context anywhere below the handler, to that job's log.
//
// A record in the job log is one line: the level (coloured), the message
// and the attributes as key=value, groups as dotted keys, values quoted
// when they hold spaces, '=', quotes or control characters:
//
//	WARN lab busy, retrying lab=hw-7 attempt=2 wait=30s
//
// No time is written (GitLab timestamps job log lines itself). Records
// are masked like all output and count against the job's output limit.
// They stay out of the operator log unless [Config.ForwardJobLogs] says
// otherwise.

type jobKey struct{}

// withJob returns a context carrying job, for [JobFromContext].
func withJob(ctx context.Context, job *Job) context.Context {
	return context.WithValue(ctx, jobKey{}, job)
}

// JobFromContext returns the job of a context the engine passed a
// handler (or one derived from it).
func JobFromContext(ctx context.Context) (*Job, bool) {
	j, ok := ctx.Value(jobKey{}).(*Job)
	return j, ok && j != nil
}

// Logger returns a logger whose records go to the job's log (see
// [NewLogHandler] for the format), those at [Config.JobLogLevel] and
// above; with [Config.ForwardJobLogs] they also go to the operator log,
// with the job's id.
func (j *Job) Logger() *slog.Logger {
	return slog.New(j.logHandler())
}

func (j *Job) logHandler() *jobLogHandler {
	return &jobLogHandler{job: j}
}

// NewLogHandler returns a handler for a process's default logger
// (slog.SetDefault): a record logged with a context carrying a job (see
// [JobFromContext]) goes to that job's log as [Job.Logger]'s records do;
// every other record goes to next, the operator's handler (nil: dropped).
// Attributes and groups added with WithAttrs and WithGroup apply to both.
func NewLogHandler(next slog.Handler) slog.Handler {
	if next == nil {
		next = slog.DiscardHandler
	}
	return &routeHandler{next: next}
}

// routeHandler sends a record to its context's job or to next.
type routeHandler struct {
	next slog.Handler
	ops  []logOp // WithAttrs and WithGroup calls, replayed on a job's handler
}

// logOp is a WithGroup (group != "") or a WithAttrs call.
type logOp struct {
	group string
	attrs []slog.Attr
}

var _ slog.Handler = (*routeHandler)(nil)

func (h *routeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if j, ok := JobFromContext(ctx); ok {
		return l >= j.logLevel()
	}
	return h.next.Enabled(ctx, l)
}

func (h *routeHandler) Handle(ctx context.Context, r slog.Record) error {
	j, ok := JobFromContext(ctx)
	if !ok {
		return h.next.Handle(ctx, r)
	}
	var jh slog.Handler = j.logHandler()
	for _, op := range h.ops {
		if op.group != "" {
			jh = jh.WithGroup(op.group)
		} else {
			jh = jh.WithAttrs(op.attrs)
		}
	}
	return jh.Handle(ctx, r)
}

func (h *routeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return &routeHandler{next: h.next.WithAttrs(attrs), ops: append(slices.Clip(h.ops), logOp{attrs: attrs})}
}

func (h *routeHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &routeHandler{next: h.next.WithGroup(name), ops: append(slices.Clip(h.ops), logOp{group: name})}
}

// jobLogHandler writes records to a job's log.
type jobLogHandler struct {
	job    *Job
	pre    []byte       // attributes of WithAttrs, formatted
	prefix string       // open groups, "a.b."
	fwd    slog.Handler // the operator's handler with the same attributes, or nil
	fwdSet bool         // fwd was derived (WithAttrs/WithGroup called)
}

var _ slog.Handler = (*jobLogHandler)(nil)

func (h *jobLogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.job.logLevel()
}

func (h *jobLogHandler) forward() slog.Handler {
	if h.fwdSet {
		return h.fwd
	}
	return h.job.forward
}

func (h *jobLogHandler) Handle(ctx context.Context, r slog.Record) error {
	buf := make([]byte, 0, 128)
	buf = appendLogRecord(buf, r, h.pre, h.prefix)
	h.job.log.writeBytes(buf)
	if f := h.forward(); f != nil && f.Enabled(ctx, r.Level) {
		return f.Handle(ctx, r)
	}
	return nil
}

func (h *jobLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.pre = slices.Clip(h.pre)
	for _, a := range attrs {
		h2.pre = appendLogAttr(h2.pre, a, h.prefix)
	}
	if f := h.forward(); f != nil {
		h2.fwd, h2.fwdSet = f.WithAttrs(attrs), true
	}
	return &h2
}

func (h *jobLogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	if f := h.forward(); f != nil {
		h2.fwd, h2.fwdSet = f.WithGroup(name), true
	}
	return &h2
}

// Level colours, as GitLab's job log renders ANSI escapes.
const (
	colourError = "\x1b[31;1m"
	colourWarn  = "\x1b[33;1m"
	colourInfo  = "\x1b[36;1m"
	colourDebug = "\x1b[0;90m"
	colourReset = "\x1b[0;m"
)

// appendLogRecord appends r as a job log line: pre holds attributes
// already formatted (with a leading space each), prefix the open groups.
func appendLogRecord(buf []byte, r slog.Record, pre []byte, prefix string) []byte {
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
		buf = appendLogAttr(buf, a, prefix)
		return true
	})
	return append(buf, '\n')
}

// appendLogAttr appends " key=value" for a (nothing for an empty
// attribute, a group's attributes with dotted keys).
func appendLogAttr(buf []byte, a slog.Attr, prefix string) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			buf = appendLogAttr(buf, g, prefix)
		}
		return buf
	}
	buf = append(buf, ' ')
	buf = appendLogString(buf, prefix+a.Key)
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
	return appendLogString(buf, s)
}

// appendLogString appends s, quoted if it is empty or holds a space,
// '=', a quote or a character that is not printable.
func appendLogString(buf []byte, s string) []byte {
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
