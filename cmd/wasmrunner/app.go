package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/lmittmann/tint"
	"github.com/urfave/cli/v2"
)

// Exit codes of wasmrunner.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (a job failed, a check found problems)
	exitUsage   = 2 // the command line was wrong
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is the whole program: it parses args, runs the command and returns
// the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &cli.App{
		Name:      "wasmrunner",
		Usage:     "run GitLab CI jobs through sandboxed WebAssembly handlers",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "operator log level: debug, info, warn, error", EnvVars: []string{"WASMRUNNER_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "operator log format: text, json, or auto (text on a terminal, else JSON)", EnvVars: []string{"WASMRUNNER_LOG_FORMAT"}},
		},
		Commands: []*cli.Command{
			serveCommand(),
			execCommand(),
			modulesCommand(),
			verifyCommand(),
			registerCommand(),
			versionCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	err := app.RunContext(ctx, args)
	if err == nil {
		return exitOK
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "wasmrunner: %s\n", msg)
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return exitFailure
}

// loggerFor returns the operator log the global flags ask for.
func loggerFor(c *cli.Context) (*slog.Logger, error) {
	return newLogger(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
}

// newLogger returns the operator log: tint-coloured text on a terminal,
// JSON otherwise, unless format says which.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.Exit(fmt.Sprintf("invalid --log-level %q", level), exitUsage)
	}
	switch format {
	case "auto", "":
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			format = "text"
		} else {
			format = "json"
		}
	case "text", "json":
	default:
		return nil, cli.Exit(fmt.Sprintf("invalid --log-format %q (text, json or auto)", format), exitUsage)
	}
	if format == "text" {
		noColor := true
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			noColor = false
		}
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: lv, TimeFormat: "15:04:05.000", NoColor: noColor})), nil
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv})), nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
