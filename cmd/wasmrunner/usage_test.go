package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageErrorsExit2: every kind of usage error of every command exits
// 2 with a message: unknown flags and commands, bad flag values (also
// from the environment), missing flags and arguments, extra arguments,
// bad config files.
func TestUsageErrorsExit2(t *testing.T) {
	t.Setenv("WASMRUNNER_TOKEN", "")
	t.Setenv("WASMRUNNER_URL", "")
	t.Setenv("WASMRUNNER_MODULES", "")
	dir := t.TempDir()
	mods := modulesDirWith(t, "shell.wasm")
	badConfig := filepath.Join(dir, "bad.toml")
	os.WriteFile(badConfig, []byte("concurrent = \"many\"\n"), 0o600)
	pipelineFile := filepath.Join(dir, "ci.yml")
	os.WriteFile(pipelineFile, []byte("job:\n  script: [echo]\n"), 0o600)
	u := "http://127.0.0.1:1"
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no command", nil, nil, "a command is required"},
		{"unknown command", nil, []string{"serv"}, `unknown command "serv"; did you mean "serve"?`},
		{"unknown global flag", nil, []string{"--verbose", "version"}, "unknown flag --verbose (see wasmrunner --help)"},
		{"global flag typo", nil, []string{"--log-levl", "debug", "version"}, "unknown flag --log-levl; did you mean --log-level?"},
		{"bad log level", nil, []string{"--log-level", "loud", "version"}, `invalid --log-level: "loud" is not a log level`},
		{"bad log format", nil, []string{"--log-format", "xml", "version"}, `invalid --log-format: "xml" is not a log format`},
		{"bad log level env", map[string]string{"WASMRUNNER_LOG_LEVEL": "loud"}, []string{"version"}, "invalid --log-level"},
		{"version arg", nil, []string{"version", "x"}, "version takes no arguments"},

		{"serve unknown flag", nil, []string{"serve", "--modules-dir", "m"}, "unknown flag --modules-dir (see wasmrunner serve --help)"},
		{"serve no url", nil, []string{"serve"}, "--url (or WASMRUNNER_URL) is required"},
		{"serve no token", nil, []string{"serve", "--url", u}, "--token, --token-file or WASMRUNNER_TOKEN is required"},
		{"serve no modules", nil, []string{"serve", "--url", u, "--token", "x"}, "--modules (or WASMRUNNER_MODULES) is required"},
		{"serve token twice", nil, []string{"serve", "--url", u, "--token", "x", "--token-file", "f"}, "not both"},
		{"serve token file", nil, []string{"serve", "--url", u, "--token-file", filepath.Join(dir, "none")}, "reading --token-file"},
		{"serve bad int", nil, []string{"serve", "--concurrency", "many"}, `invalid value "many" for flag -concurrency`},
		{"serve bad int env", map[string]string{"WASMRUNNER_CONCURRENCY": "many"}, []string{"serve"}, "WASMRUNNER_CONCURRENCY"},
		{"serve negative concurrency", nil, []string{"serve", "--url", u, "--token", "x", "--modules", mods, "--concurrency", "-1"}, "invalid --concurrency -1"},
		{"serve bad duration", nil, []string{"serve", "--check-interval", "3"}, "-check-interval"},
		{"serve bad size", nil, []string{"serve", "--url", u, "--token", "x", "--modules", mods, "--output-limit", "lots"}, "invalid --output-limit"},
		{"serve bad url", nil, []string{"serve", "--url", "gitlab.example.com", "--token", "x", "--modules", mods}, "scheme must be http or https"},
		{"serve no modules dir", nil, []string{"serve", "--url", u, "--token", "x", "--modules", filepath.Join(dir, "none")}, "modules:"},
		{"serve default handler", nil, []string{"serve", "--url", u, "--token", "x", "--modules", mods, "--default-handler", "sh"}, `--default-handler "sh": no module in`},
		{"serve args", nil, []string{"serve", mods, "--url", u}, "serve takes no arguments"},
		{"serve bad config", nil, []string{"serve", "--config", badConfig}, "bad.toml:1: concurrent"},
		{"serve no config", nil, []string{"serve", "--config", filepath.Join(dir, "none.toml")}, "none.toml"},

		{"exec no modules", nil, []string{"exec"}, "--modules (or WASMRUNNER_MODULES) is required"},
		{"exec modules missing", nil, []string{"exec", "--modules", filepath.Join(dir, "none")}, "--modules:"},
		{"exec no file", nil, []string{"exec", "--modules", mods, "--file", filepath.Join(dir, "none.yml")}, "reading the pipeline"},
		{"exec unknown job", nil, []string{"exec", "--modules", mods, "--file", pipelineFile, "nojob"}, "nojob"},
		{"exec bad var", nil, []string{"exec", "--modules", mods, "--file", pipelineFile, "--var", "X"}, `variable "X" is not KEY=VALUE`},
		{"exec bad output limit", nil, []string{"exec", "--modules", mods, "--output-limit", "0"}, "invalid --output-limit"},
		{"exec default handler", nil, []string{"exec", "--modules", mods, "--default-handler", "nope"}, `--default-handler "nope"`},
		{"exec unknown flag", nil, []string{"exec", "--image", "x"}, "unknown flag --image"},

		{"modules no command", nil, []string{"modules"}, "modules needs a command (check"},
		{"modules unknown command", nil, []string{"modules", "chek"}, `unknown command "chek" of modules; did you mean "check"?`},
		{"modules check no dir", nil, []string{"modules", "check"}, "takes one directory"},
		{"modules check two dirs", nil, []string{"modules", "check", "a", "b"}, "takes one directory"},
		{"modules check bad config", nil, []string{"modules", "check", "--config", badConfig}, "bad.toml:1: concurrent"},
		{"modules check unknown flag", nil, []string{"modules", "check", "--policy", "x"}, "unknown flag --policy (see wasmrunner modules check --help)"},

		{"verify no url", nil, []string{"verify", "--token", "x"}, "--url (or WASMRUNNER_URL) is required"},
		{"verify no token", nil, []string{"verify", "--url", u}, "--token, --token-file or WASMRUNNER_TOKEN is required"},
		{"verify bad url", nil, []string{"verify", "--url", "ftp://x", "--token", "x"}, "scheme must be http or https"},
		{"verify args", nil, []string{"verify", "--url", u, "--token", "x", "extra"}, "verify takes no arguments"},
		{"verify unknown flag", nil, []string{"verify", "--tokn", "x"}, "unknown flag --tokn; did you mean --token? (see wasmrunner verify --help)"},

		{"register no url", nil, []string{"register", "--access-token", "x"}, "--url (or WASMRUNNER_URL) is required"},
		{"register no token", nil, []string{"register", "--url", u}, "--access-token or --registration-token is required"},
		{"register both tokens", nil, []string{"register", "--url", u, "--access-token", "a", "--registration-token", "r"}, "not both"},
		{"register config no modules", nil, []string{"register", "--url", u, "--access-token", "a", "--config", "c.toml"}, "--config needs --modules"},
		{"register bad int", nil, []string{"register", "--url", u, "--project-id", "p"}, `invalid value "p" for flag -project-id`},
		{"register args", nil, []string{"register", "x"}, "register takes no arguments"},

		{"help unknown", nil, []string{"help", "nosuch"}, "nosuch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, _, errOut := runCLI(t, context.Background(), tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, exitUsage, tt.want)
			}
		})
	}
}

// TestHelpExits0: asking for help is no error.
func TestHelpExits0(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"help"}, {"serve", "--help"}, {"help", "serve"}, {"modules", "check", "--help"}, {"modules", "--help"}, {"--version"}} {
		if code, out, errOut := runCLI(t, context.Background(), args...); code != exitOK || out == "" {
			t.Errorf("%q: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
}
