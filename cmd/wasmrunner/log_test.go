package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/syncbuf"
)

// TestLogDurations: durations are seconds in JSON logs and rounded in
// text ones, under their own keys.
func TestLogDurations(t *testing.T) {
	var buf bytes.Buffer
	logger, err := newLogger(&buf, slog.LevelInfo, "json")
	if err != nil {
		t.Fatal(err)
	}
	logger.Info("job finished", "duration", 1500*time.Millisecond, slog.Group("g", "retry_in", 250*time.Microsecond), "n", 3)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if rec["duration"] != 1.5 || rec["g"].(map[string]any)["retry_in"] != 0.00025 || rec["n"] != 3.0 {
		t.Errorf("JSON: %s", buf.Bytes())
	}

	buf.Reset()
	if logger, err = newLogger(&buf, slog.LevelInfo, "text"); err != nil {
		t.Fatal(err)
	}
	logger.Info("job finished", "duration", 1234567891*time.Nanosecond, "compile", 12345678*time.Nanosecond, "timeout", 90*time.Minute+123*time.Millisecond, "tiny", 1500*time.Nanosecond)
	for _, want := range []string{"duration=1.235s", "compile=12.346ms", "timeout=1h30m0s", "tiny=1.5µs"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("text log lacks %q: %s", want, buf.String())
		}
	}
	if _, err := newLogger(&buf, slog.LevelInfo, "runner"); err != nil {
		t.Errorf("log format runner: %v", err)
	}
}

func TestParseLogLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "warning": slog.LevelWarn,
		"error": slog.LevelError, "fatal": slog.LevelError, "panic": slog.LevelError, "debug+2": slog.LevelDebug + 2} {
		if got, err := parseLogLevel(in); err != nil || got != want {
			t.Errorf("parseLogLevel(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := parseLogLevel("loud"); err == nil {
		t.Error("loud is a level")
	}
}

// TestServeLogSettingsFromConfig: the config file's log_level and
// log_format apply unless the global flags are given.
func TestServeLogSettingsFromConfig(t *testing.T) {
	for _, v := range []string{"WASMRUNNER_LOG_LEVEL", "WASMRUNNER_LOG_FORMAT"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	path := writeConfig(t, "log_level = \"warning\"\nlog_format = \"runner\"\ncheck_interval = 1\n[[runners]]\nname = \"quiet\"\nurl = \"http://"+freeAddr(t)+"\"\ntoken = \"t\"\nmodules = \""+modulesDirWith(t)+"\"\n")
	serveUntil := func(want string, args ...string) string {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errOut syncbuf.Buffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, append(append([]string{"wasmrunner"}, args...), "serve", "--builds-dir", t.TempDir(), "--config", path), &out, &errOut)
		}()
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && !strings.Contains(errOut.String(), want); {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("%q: exit %d\n%s", args, code, errOut.String())
		}
		return errOut.String()
	}
	// The file's: text, warnings and errors only.
	log := serveUntil("GitLab request failed")
	if !strings.Contains(log, "WRN GitLab request failed") || strings.Contains(log, "INF") || strings.Contains(log, `"level"`) {
		t.Errorf("log_level and log_format of the file:\n%s", log)
	}
	// The flags win.
	log = serveUntil(`"msg":"runner started"`, "--log-level", "info", "--log-format", "json")
	if !strings.Contains(log, `"level":"INFO","msg":"handlers loaded"`) {
		t.Errorf("--log-level and --log-format:\n%s", log)
	}
}
