package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/lmittmann/tint"
	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/internal/tomlfile"
)

// Exit codes of wasmrunner.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (a job failed, a check found problems)
	exitUsage   = 2 // the command line was wrong: a flag, its value, an argument, the config file
)

// run is the whole program: it parses args, runs the command and returns
// the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := &cli.App{
		Name:      "wasmrunner",
		Usage:     "run GitLab CI jobs through sandboxed WebAssembly handlers",
		Version:   version,
		Writer:    stdout,
		ErrWriter: stderr,
		Suggest:   true,
		// Shell completion (see completion.go).
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "operator log level: debug, info, warn, error (default: the config file's log_level, else info)", EnvVars: []string{"WASMRUNNER_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Value: "auto", Usage: "operator log format: text, json, or auto (text on a terminal, else JSON) (default: the config file's log_format, else auto)", EnvVars: []string{"WASMRUNNER_LOG_FORMAT"}},
		},
		Commands: []*cli.Command{
			serveCommand(),
			execCommand(),
			modulesCommand(),
			verifyCommand(),
			registerCommand(),
			unregisterCommand(),
			listCommand(),
			versionCommand(),
			completionCommand(),
		},
		Before: func(c *cli.Context) error {
			if _, err := parseLogLevel(c.String("log-level")); err != nil {
				return usageError(fmt.Sprintf("invalid --log-level: %v", err))
			}
			if _, err := parseLogFormat(c.String("log-format")); err != nil {
				return usageError(fmt.Sprintf("invalid --log-format: %v", err))
			}
			return nil
		},
		Action:         commandRequired,
		ExitErrHandler: func(*cli.Context, error) {},
	}
	app.OnUsageError = onUsageError
	for _, cmd := range app.Commands {
		setUsageErrors(cmd)
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
		// "help NAME" of no command: urfave/cli's exit code 3.
		if strings.HasPrefix(err.Error(), "No help topic for") {
			return exitUsage
		}
		return ec.ExitCode()
	}
	// urfave/cli's own errors that are not flag parsing ones (which
	// onUsageError turns into usage errors) are about the command line.
	return exitUsage
}

// onUsageError makes a flag that does not parse (an unknown flag, a bad
// value, a bad value in a flag's environment variable) a usage error.
func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	help := "wasmrunner --help"
	if isSubcommand {
		help = "wasmrunner " + commandPath(c) + " --help"
	}
	if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok && c.Command != nil {
		name = strings.TrimLeft(name, "-")
		var names []string
		for _, f := range c.Command.Flags {
			names = append(names, f.Names()...)
		}
		if s := tomlfile.Suggest(name, names); s != "" {
			return usageError(fmt.Sprintf("unknown flag --%s; did you mean --%s? (see %s)", name, s, help))
		}
		return usageError(fmt.Sprintf("unknown flag --%s (see %s)", name, help))
	}
	return usageError(fmt.Sprintf("%v (see %s)", err, help))
}

// commandPath names c's command with its parents ("modules check").
func commandPath(c *cli.Context) string {
	var names []string
	for _, l := range c.Lineage() {
		if l.Command != nil && l.Command.Name != "" && l.Command.Name != c.App.Name {
			names = append([]string{l.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

// setUsageErrors makes cmd's and its subcommands' flag errors, unknown
// subcommands and missing ones usage errors.
func setUsageErrors(cmd *cli.Command) {
	cmd.OnUsageError = onUsageError
	if len(cmd.Subcommands) > 0 && cmd.Action == nil {
		cmd.Action = commandRequired
	}
	for _, sub := range cmd.Subcommands {
		setUsageErrors(sub)
	}
}

// commandRequired is the action of the app and of commands that only
// group subcommands: an unknown or missing command is a usage error.
func commandRequired(c *cli.Context) error {
	var names []string
	for _, sub := range c.Command.Subcommands {
		if !sub.Hidden {
			names = append(names, sub.Name)
		}
	}
	root := c.Command.Name == c.App.Name
	if c.NArg() > 0 {
		arg := c.Args().First()
		msg := fmt.Sprintf("unknown command %q", arg)
		if !root {
			msg = fmt.Sprintf("unknown command %q of %s", arg, commandPath(c))
		}
		if s := tomlfile.Suggest(arg, names); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += fmt.Sprintf(" (commands: %s)", strings.Join(names, ", "))
		}
		return usageError(msg)
	}
	if root {
		_ = cli.ShowAppHelp(c)
		return usageError("a command is required")
	}
	_ = cli.ShowSubcommandHelp(c)
	return usageError(fmt.Sprintf("%s needs a command (%s)", commandPath(c), strings.Join(names, ", ")))
}

// noArgs is a usage error when a command that takes no arguments got some
// (urfave/cli stops reading flags at the first argument: "serve handlers
// --url ..." leaves --url unread).
func noArgs(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError(fmt.Sprintf("%s takes no arguments, got %q (flags go before arguments)", commandPath(c), c.Args().Slice()))
	}
	return nil
}

func usageError(msg string) error { return cli.Exit(msg, exitUsage) }

// loggerFor returns the operator log the global flags ask for.
func loggerFor(c *cli.Context) (*slog.Logger, error) {
	level, err := parseLogLevel(c.String("log-level"))
	if err != nil {
		return nil, usageError(fmt.Sprintf("invalid --log-level: %v", err))
	}
	return newLogger(c.App.ErrWriter, level, c.String("log-format"))
}

// parseLogLevel reads a log level: debug, info, warn, error as slog has
// them (case-insensitive, with an offset such as "debug-2"), and GitLab
// Runner's warning, fatal and panic (error).
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return slog.LevelInfo, nil
	case "warning":
		return slog.LevelWarn, nil
	case "fatal", "panic":
		return slog.LevelError, nil
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not a log level (debug, info, warn, error)", s)
	}
	return lv, nil
}

// parseLogFormat reads a log format: text, json, auto, or GitLab Runner's
// runner (text).
func parseLogFormat(s string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(s)); f {
	case "auto", "", "text", "json":
		return f, nil
	case "runner":
		return "text", nil
	}
	return "", fmt.Errorf("%q is not a log format (text, json or auto)", s)
}

// newLogger returns the operator log: tint-coloured text on a terminal,
// JSON otherwise, unless format says which. Durations are shown as people
// read them in text ("1.234s") and as seconds in JSON (1.234).
func newLogger(w io.Writer, level slog.Leveler, format string) (*slog.Logger, error) {
	format, err := parseLogFormat(format)
	if err != nil {
		return nil, usageError(fmt.Sprintf("invalid --log-format: %v", err))
	}
	terminal := false
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		terminal = true
	}
	if format == "auto" || format == "" {
		format = "json"
		if terminal {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: "15:04:05.000", NoColor: !terminal || os.Getenv("NO_COLOR") != "", ReplaceAttr: textDurations})), nil
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level, ReplaceAttr: jsonDurations})), nil
}

// jsonDurations writes durations as seconds (a float), not slog's
// nanoseconds; the key stays.
func jsonDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key, a.Value.Duration().Seconds())
	}
	return a
}

// textDurations rounds durations to about four digits.
func textDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Duration(a.Key, roundDuration(a.Value.Duration()))
	}
	return a
}

// roundDuration rounds d for people: to the millisecond from a second on,
// the microsecond from a millisecond, the second from a minute.
func roundDuration(d time.Duration) time.Duration {
	abs := d.Abs()
	switch {
	case abs >= time.Minute:
		return d.Round(time.Second)
	case abs >= time.Second:
		return d.Round(time.Millisecond)
	case abs >= time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
