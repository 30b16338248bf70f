//go:build !wasip1

package joblog_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
	"github.com/wasmrunner/wasmrunner/guest-sdk/go/joblog"
	"github.com/wasmrunner/wasmrunner/guest-sdk/go/sdktest"
)

// The cases and lines are those of the runner's own job log handler
// (engine.Job.Logger, engine/joblog_internal_test.go): a record logged by
// a Go guest reads as one logged by a native handler.
func TestFormat(t *testing.T) {
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
			host := sdktest.Install(t, &sdktest.Host{})
			tc.log(joblog.New())
			if got := host.Log(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// A handler's default logger, set to the job log, takes the records of
// library code; they are masked like all output; Level lets debug records
// through.
func TestDefaultLogger(t *testing.T) {
	host := sdktest.Install(t, &sdktest.Host{
		Variables: []wasmrunner.Variable{{Name: "LAB_TOKEN", Value: "t0k3n-very-secret", Masked: true}},
	})
	old := slog.Default()
	t.Cleanup(func() { slog.SetDefault(old) })
	slog.SetDefault(slog.New(joblog.NewHandler(&joblog.Options{Level: slog.LevelDebug})))

	token, _ := wasmrunner.Var("LAB_TOKEN")
	slog.Debug("connecting", "token", token)
	slog.Warn("slow")
	want := "\x1b[0;90mDEBUG\x1b[0;m connecting token=[MASKED]\n\x1b[33;1mWARN\x1b[0;m slow\n"
	if got := host.Log(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if strings.Contains(host.Log(), "t0k3n") {
		t.Error("the masked variable is in the log")
	}
}
