package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/mask"
)

// testJob is a job whose log is buf.
func testJob(buf *bytes.Buffer, secrets ...string) *Job {
	return &Job{log: &jobLog{m: mask.New(buf, secrets, nil)}}
}

func (j *Job) flushLog() { j.log.close() }

func TestJobLogFormat(t *testing.T) {
	tm := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		log  func(*slog.Logger)
		want string
	}{
		{"message", func(l *slog.Logger) { l.Info("submitted") }, "\x1b[36;1mINFO\x1b[0;m submitted\n"},
		{"levels", func(l *slog.Logger) {
			l.Warn("w")
			l.Error("e")
			l.Log(t.Context(), slog.LevelError+4, "worse")
			l.Log(t.Context(), slog.LevelInfo+2, "i2")
		}, "\x1b[33;1mWARN\x1b[0;m w\n\x1b[31;1mERROR\x1b[0;m e\n\x1b[31;1mERROR+4\x1b[0;m worse\n\x1b[36;1mINFO+2\x1b[0;m i2\n"},
		{"debug is below the default level", func(l *slog.Logger) { l.Debug("hidden") }, ""},
		{"attributes", func(l *slog.Logger) {
			l.Info("lab busy", "lab", "hw-7", "attempt", 2, "wait", 30*time.Second, "ok", false, "at", tm)
		}, "\x1b[36;1mINFO\x1b[0;m lab busy lab=hw-7 attempt=2 wait=30s ok=false at=2026-12-04T10:00:00.000Z\n"},
		{"quoting", func(l *slog.Logger) {
			l.Info("q", "space", "a b", "eq", "a=b", "quote", `say "hi"`, "empty", "", "nl", "a\nb", "esc", "\x1b[31m", "uni", "café")
		}, "\x1b[36;1mINFO\x1b[0;m q space=\"a b\" eq=\"a=b\" quote=\"say \\\"hi\\\"\" empty=\"\" nl=\"a\\nb\" esc=\"\\x1b[31m\" uni=café\n"},
		{"errors", func(l *slog.Logger) { l.Error("failed", "error", errors.New("lab down: 503")) }, "\x1b[31;1mERROR\x1b[0;m failed error=\"lab down: 503\"\n"},
		{"groups", func(l *slog.Logger) {
			l.With("job", "x").WithGroup("lab").With("id", 7).Info("m", "state", "queued", slog.Group("board", "rev", "b"))
		}, "\x1b[36;1mINFO\x1b[0;m m job=x lab.id=7 lab.state=queued lab.board.rev=b\n"},
		{"trailing newline of the message", func(l *slog.Logger) { l.Info("line\n\n") }, "\x1b[36;1mINFO\x1b[0;m line\n"},
		{"empty message", func(l *slog.Logger) { l.Info("", "k", 1) }, "\x1b[36;1mINFO\x1b[0;m k=1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			j := testJob(&buf)
			tc.log(j.Logger())
			j.flushLog()
			if got := buf.String(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestJobLogMasked(t *testing.T) {
	var buf bytes.Buffer
	j := testJob(&buf, "hunter2-secret")
	j.Logger().Info("login hunter2-secret", "password", "hunter2-secret", slog.Group("g", "p", "xhunter2-secretx"))
	j.flushLog()
	if got := buf.String(); strings.Contains(got, "hunter2") || strings.Count(got, "[MASKED]") != 3 {
		t.Errorf("not masked: %q", got)
	}
}

// TestJobLogHandlerConformance runs testing/slogtest against the job log
// handler, parsing its lines back. The job log has no time (GitLab
// timestamps lines), so slogtest's check for a time key is the one
// failure expected.
func TestJobLogHandlerConformance(t *testing.T) {
	var buf bytes.Buffer
	j := testJob(&buf)
	j.level = slog.LevelDebug
	err := slogtest.TestHandler(j.logHandler(), func() []map[string]any {
		j.flushLog()
		var out []map[string]any
		for line := range strings.Lines(buf.String()) {
			m, err := parseLogLine(strings.TrimSuffix(line, "\n"))
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			out = append(out, m)
		}
		return out
	})
	timeMissing := 0
	for _, e := range unwrapJoined(err) {
		if strings.Contains(e.Error(), `missing key "time"`) {
			timeMissing++
		} else {
			t.Error(e)
		}
	}
	if timeMissing == 0 {
		t.Error("slogtest did not notice the missing time: did it run?")
	}
}

func unwrapJoined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// parseLogLine reads a job log record back into slogtest's shape.
func parseLogLine(line string) (map[string]any, error) {
	m := map[string]any{}
	level, rest, _ := strings.Cut(line, colourReset)
	level = level[strings.LastIndexByte(level, 'm')+1:]
	m[slog.LevelKey] = level
	rest = strings.TrimPrefix(rest, " ")
	// The message: up to the first key=value token.
	var msg []string
	for rest != "" {
		tok, after, _ := strings.Cut(rest, " ")
		if strings.Contains(tok, "=") {
			break
		}
		msg, rest = append(msg, tok), after
	}
	m[slog.MessageKey] = strings.Join(msg, " ")
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			return nil, errors.New("no = in " + rest)
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				return nil, err
			}
			val, _ = strconv.Unquote(q)
			after = after[len(q):]
		} else {
			val, after, _ = strings.Cut(after, " ")
			after = " " + after
		}
		rest = strings.TrimPrefix(after, " ")
		// Dotted keys are groups.
		parts := strings.Split(key, ".")
		cur := m
		for _, p := range parts[:len(parts)-1] {
			sub, ok := cur[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				cur[p] = sub
			}
			cur = sub
		}
		cur[parts[len(parts)-1]] = val
	}
	return m, nil
}

func FuzzJobLogAttr(f *testing.F) {
	f.Add("k", "v")
	f.Add("a.b", "x y=\"z\"\n")
	f.Fuzz(func(t *testing.T, key, val string) {
		if key == "" || needsQuote(key) || strings.Contains(key, ".") {
			t.Skip()
		}
		var buf bytes.Buffer
		j := testJob(&buf)
		j.Logger().Info("m", key, val)
		j.flushLog()
		line := buf.String()
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Fatalf("a record is not one line: %q", line)
		}
		m, err := parseLogLine(strings.TrimSuffix(line, "\n"))
		if err != nil {
			t.Fatal(err)
		}
		if m[key] != val {
			t.Errorf("%q=%q read back as %q", key, val, m[key])
		}
	})
}
