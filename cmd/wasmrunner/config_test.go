package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// writeConfig writes a config file into a temporary dir and returns its
// path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// modulesDirWith returns a modules dir holding empty files of those names.
func modulesDirWith(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestConfigOfficialNames: GitLab Runner's config.toml keys that mean the
// same are taken, in its units.
func TestConfigOfficialNames(t *testing.T) {
	mods := modulesDirWith(t, "shell.wasm")
	path := writeConfig(t, `
concurrent = 6
check_interval = 10
log_level = "warning"
log_format = "runner"
listen_address = "127.0.0.1:9999"
shutdown_timeout = 45

[[runners]]
name = "official"
url = "https://gitlab.example.com"
token = "glrt-x"
limit = 2
output_limit = 8192
request_concurrency = 1
builds_dir = "/srv/builds"
modules = "`+mods+`"

[[runners]]
name = "native"
url = "https://gitlab.example.com"
token = "glrt-y"
concurrency = 3
output_limit = "1MiB"
check_interval = "500ms"
modules = "`+mods+`"
`)
	base := serveOptions{concurrency: 2, checkInterval: 3 * time.Second, outputLimit: 4 << 20, buildsDir: "/default", shutdownTimeout: time.Second}
	level := new(slog.LevelVar)
	global, runners, err := configSetWith(path, base, 0, level)()
	if err != nil {
		t.Fatal(err)
	}
	if global.concurrency != 6 || global.listen != "127.0.0.1:9999" || global.shutdownTimeout != 45*time.Second || level.Level() != slog.LevelWarn {
		t.Errorf("global: concurrency %d, listen %q, shutdown timeout %v, level %v", global.concurrency, global.listen, global.shutdownTimeout, level.Level())
	}
	o, n := runners[0], runners[1]
	if o.concurrency != 2 || o.outputLimit != 8<<20 || o.checkInterval != 10*time.Second || o.buildsDir != "/srv/builds" {
		t.Errorf("official runner: concurrency %d, output limit %d, check interval %v, builds dir %q", o.concurrency, o.outputLimit, o.checkInterval, o.buildsDir)
	}
	if n.concurrency != 3 || n.outputLimit != 1<<20 || n.checkInterval != 500*time.Millisecond || n.buildsDir != "/default" {
		t.Errorf("native runner: concurrency %d, output limit %d, check interval %v, builds dir %q", n.concurrency, n.outputLimit, n.checkInterval, n.buildsDir)
	}
	if f, err := parseLogFormat("runner"); err != nil || f != "text" {
		t.Errorf("log_format runner: %q %v", f, err)
	}
}

// TestConfigTLS: a runner's TLS files, under wasmrunner's names or GitLab
// Runner's, over the flags' defaults.
func TestConfigTLS(t *testing.T) {
	mods := modulesDirWith(t, "shell.wasm")
	path := writeConfig(t, `
[[runners]]
name = "official"
url = "https://gitlab.example.com"
token = "glrt-x"
modules = "`+mods+`"
tls-ca-file = "/etc/gitlab-runner/certs/ca.crt"
tls-cert-file = "/etc/gitlab-runner/certs/client.crt"
tls-key-file = "/etc/gitlab-runner/certs/client.key"

[[runners]]
name = "native"
url = "https://gitlab.example.com"
token = "glrt-y"
modules = "`+mods+`"
tls_ca_file = "/etc/wasmrunner/ca.pem"

[[runners]]
name = "defaults"
url = "https://gitlab.example.com"
token = "glrt-z"
modules = "`+mods+`"
`)
	base := serveOptions{tls: gitlab.TLSOptions{CAFile: "/flag/ca.pem", CertFile: "/flag/c.pem", KeyFile: "/flag/k.pem"}}
	_, runners, err := configSet(path, base)()
	if err != nil {
		t.Fatal(err)
	}
	want := []gitlab.TLSOptions{
		{CAFile: "/etc/gitlab-runner/certs/ca.crt", CertFile: "/etc/gitlab-runner/certs/client.crt", KeyFile: "/etc/gitlab-runner/certs/client.key"},
		{CAFile: "/etc/wasmrunner/ca.pem", CertFile: "/flag/c.pem", KeyFile: "/flag/k.pem"},
		base.tls,
	}
	for i, r := range runners {
		if r.runner().TLS != want[i] {
			t.Errorf("%s: TLS %+v, want %+v", r.name, r.runner().TLS, want[i])
		}
	}
}

func TestConfigErrorsNamesAndHints(t *testing.T) {
	mods := modulesDirWith(t, "shell.wasm", "lab@v2.wasm", "lab@v3.wasm", "tool.toml", "other@.wasm.bak")
	runner := func(extra string) string {
		return "[[runners]]\nname = \"r\"\nurl = \"http://x\"\ntoken = \"t\"\nmodules = \"" + mods + "\"\n" + extra
	}
	tests := []struct {
		name, body string
		want       []string
	}{
		{"typo", runner("tokn_file = \"f\"\n"), []string{`c.toml:6: unknown key "runners.tokn_file": did you mean "runners.token_file"?`}},
		{"global typo", "concurency = 2\n" + runner(""), []string{`c.toml:1: unknown key "concurency": did you mean "concurrency"?`}},
		{"dashes", runner("default-handler = \"shell\"\n"), []string{`did you mean "runners.default_handler"?`}},
		{"official unsupported", "sentry_dsn = \"x\"\n[session_server]\nsession_timeout = 1\n" + runner("executor = \"shell\"\nid = 3\n[runners.docker]\nimage = \"x\"\n[runners.cache]\n"),
			[]string{`unknown key "sentry_dsn": GitLab Runner's Sentry reporting`, `unknown key "session_server": GitLab Runner's interactive web terminal`,
				`unknown key "runners.executor": wasmrunner has one executor`, `unknown key "runners.id": written by gitlab-runner register`,
				`unknown key "runners.docker": a GitLab Runner executor's settings`, `unknown key "runners.cache": GitLab Runner's cache`}},
		{"runner key globally", "modules = \"x\"\n" + runner(""), []string{`unknown key "modules": a runner's key`}},
		{"no hint", runner("frobnicate = 1\n"), []string{`unknown key "runners.frobnicate"` + "\n"}},
		{"both global", "concurrency = 2\nconcurrent = 2\nlisten = \":1\"\nlisten_address = \":2\"\n" + runner(""),
			[]string{"concurrency and concurrent are one setting (concurrent is GitLab Runner's name for concurrency): keep one",
				"listen and listen_address are one setting"}},
		{"both runner", runner("concurrency = 1\nlimit = 1\n"), []string{"runners[0]: concurrency and limit are one setting"}},
		{"handlers", runner("handlers = [\"shell\", \"lab\", \"nope\", \"tool\", \"other\"]\n"),
			[]string{`runners[0] (r): no module in ` + mods + ` provides the handlers "nope", "tool", "other" (NAME.wasm or NAME@TAG.wasm)`}},
		{"default handler", runner("default_handler = \"gone\"\n"), []string{`provides the handler "gone" (`}},
		{"default not allowed", runner("handlers = [\"shell\"]\ndefault_handler = \"lab\"\n"), []string{`default_handler "lab" is not in handlers`}},
		{"runner above global", "concurrent = 2\n" + runner("limit = 3\n"), []string{"runners[0] (r): limit = 3 is more than the global concurrent = 2"}},
		{"request concurrency", runner("request_concurrency = 4\n"), []string{"request_concurrency must be 1"}},
		{"log level", "log_level = \"loud\"\n" + runner(""), []string{`log_level: "loud" is not a log level`}},
		{"log format", "log_format = \"xml\"\n" + runner(""), []string{`log_format: "xml" is not a log format`}},
		{"output limit", runner("output_limit = \"lots\"\n"), []string{"c.toml:6: runners.output_limit:"}},
		{"check interval", runner("check_interval = \"-3s\"\n"), []string{"c.toml:6: runners.check_interval:"}},
		{"tls both names", runner("tls_ca_file = \"a.pem\"\ntls-ca-file = \"b.pem\"\n"), []string{"runners[0]: tls_ca_file and tls-ca-file are one setting"}},
		{"tls cert without key", runner("tls-cert-file = \"c.pem\"\n"), []string{"runners[0] (r): tls_cert_file and tls_key_file go together"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.body)
			_, err := loadConfig(path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := strings.ReplaceAll(err.Error(), path, "c.toml") + "\n"
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			// The command exits 2 with the same message.
			code, _, errOut := runCLI(t, context.Background(), "serve", "--config", path)
			if code != exitUsage || !strings.Contains(errOut, strings.TrimSuffix(strings.ReplaceAll(tt.want[0], "c.toml", path), "\n")) {
				t.Errorf("serve: exit %d\n%s", code, errOut)
			}
		})
	}
}

// TestConfigHandlerNamesLater: a modules dir that cannot be read yet does
// not make its runner's handler names errors (handlers may come later).
func TestConfigHandlerNamesLater(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "later")
	path := writeConfig(t, "[[runners]]\nurl = \"http://x\"\ntoken = \"t\"\nmodules = \""+missing+"\"\nhandlers = [\"shell\"]\ndefault_handler = \"shell\"\n")
	if _, err := loadConfig(path); err != nil {
		t.Errorf("missing modules dir: %v", err)
	}
	if got := missingHandlers(missing, []string{"a"}); got != nil {
		t.Errorf("missingHandlers of a missing dir = %q", got)
	}
	// A handler added to the dir is found.
	dir := modulesDirWith(t)
	if got := missingHandlers(dir, []string{"a", "b"}); len(got) != 2 {
		t.Errorf("empty dir: %q", got)
	}
	os.WriteFile(filepath.Join(dir, "a@1.2.wasm"), nil, 0o644)
	if got := missingHandlers(dir, []string{"a", "b"}); len(got) != 1 || got[0] != "b" {
		t.Errorf("after adding a@1.2.wasm: %q", got)
	}
}

// TestConfigConcurrencyFlag: with no global concurrency in the file, a
// runner's may not exceed --concurrency.
func TestConfigConcurrencyFlag(t *testing.T) {
	path := writeConfig(t, "[[runners]]\nname = \"big\"\nurl = \"http://x\"\ntoken = \"t\"\nmodules = \"m\"\nconcurrency = 8\n")
	if _, _, err := configSetWith(path, serveOptions{concurrency: 4}, 4, nil)(); err == nil || !strings.Contains(err.Error(), "(big): concurrency = 8 is more than --concurrency 4") {
		t.Errorf("err = %v", err)
	}
	// The CPU count default bounds nothing.
	if _, _, err := configSetWith(path, serveOptions{concurrency: 1}, 0, nil)(); err != nil {
		t.Errorf("without --concurrency: %v", err)
	}
	code, _, errOut := runCLI(t, context.Background(), "serve", "--concurrency", "2", "--config", path)
	if code != exitUsage || !strings.Contains(errOut, "more than --concurrency 2") {
		t.Errorf("serve: exit %d %s", code, errOut)
	}
	// --concurrency 0 is the default: it bounds nothing either (the
	// modules dir "m" does not exist: the error is about that, later).
	code, _, errOut = runCLI(t, context.Background(), "serve", "--concurrency", "0", "--config", path)
	if code != exitUsage || strings.Contains(errOut, "more than") || !strings.Contains(errOut, "modules") {
		t.Errorf("serve --concurrency 0: exit %d %s", code, errOut)
	}
}

func TestConfigUnits(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{{"3", 3 * time.Second, true}, {"0", 0, true}, {"1m30s", 90 * time.Second, true}, {"250ms", 250 * time.Millisecond, true}, {"-1", 0, false}, {"3x", 0, false}, {"99999999999999999999", 0, false}} {
		var d seconds
		err := d.UnmarshalText([]byte(tt.in))
		if (err == nil) != tt.ok || d.d != tt.want {
			t.Errorf("seconds %q = %v, %v", tt.in, d.d, err)
		}
	}
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{{"4096", 4 << 20, true}, {"4MiB", 4 << 20, true}, {"512KiB", 512 << 10, true}, {"1", 1024, true}, {"lots", 0, false}, {"9999999999999999999", 0, false}} {
		n, err := parseKiBSize(tt.in)
		if (err == nil) != tt.ok || n != tt.want {
			t.Errorf("parseKiBSize %q = %d, %v", tt.in, n, err)
		}
	}
}

// TestConfigTokenRotation: token_rotation, global and per runner, over
// --token-rotation.
func TestConfigTokenRotation(t *testing.T) {
	mods := modulesDirWith(t, "shell.wasm")
	entry := func(name, extra string) string {
		return fmt.Sprintf("[[runners]]\nname = %q\nurl = \"https://gitlab.example.com\"\ntoken = \"glrt-%s\"\nmodules = %q\n%s", name, name, mods, extra)
	}
	for _, tc := range []struct {
		name string
		body string
		flag bool
		want []bool
	}{
		{"the flag's default", entry("a", ""), true, []bool{true}},
		{"--token-rotation=false", entry("a", ""), false, []bool{false}},
		{"off in the file, on for one runner", "token_rotation = false\n" + entry("a", "") + entry("b", "token_rotation = true\n"), true, []bool{false, true}},
		{"on in the file over the flag", "token_rotation = true\n" + entry("a", ""), false, []bool{true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, runners, err := configSet(writeConfig(t, tc.body), serveOptions{rotateToken: tc.flag})()
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range runners {
				if r.runner().RotateToken != tc.want[i] {
					t.Errorf("%s: RotateToken %v, want %v", r.name, r.runner().RotateToken, tc.want[i])
				}
			}
		})
	}
}

// TestConfigReportDeadline: report_deadline is a global key, given to
// every runner; --report-deadline must be positive; a runner's own key is
// an error that says it is global.
func TestConfigReportDeadline(t *testing.T) {
	mods := modulesDirWith(t, "shell.wasm")
	path := writeConfig(t, `
report_deadline = "10m"

[[runners]]
name = "a"
url = "https://gitlab.example.com"
token = "glrt-x"
modules = "`+mods+`"
`)
	base := serveOptions{concurrency: 2, checkInterval: 3 * time.Second, outputLimit: 4 << 20, buildsDir: "/default", reportDeadline: time.Hour}
	global, runners, err := configSet(path, base)()
	if err != nil {
		t.Fatal(err)
	}
	if global.reportDeadline != 10*time.Minute || runners[0].reportDeadline != 10*time.Minute || runners[0].runner().ReportDeadline != 10*time.Minute {
		t.Errorf("report deadline: global %v, runner %v", global.reportDeadline, runners[0].reportDeadline)
	}
	bad := writeConfig(t, `
[[runners]]
name = "a"
url = "https://gitlab.example.com"
token = "glrt-x"
modules = "`+mods+`"
report_deadline = "10m"
`)
	if _, _, err := configSet(bad, base)(); err == nil || !strings.Contains(err.Error(), "a global key") {
		t.Errorf("a runner's report_deadline: %v", err)
	}
	code, _, errOut := runCLI(t, context.Background(), "serve", "--url", "http://127.0.0.1:1", "--token", "x", "--modules", mods, "--report-deadline", "0s")
	if code != exitUsage || !strings.Contains(errOut, "--report-deadline") {
		t.Errorf("--report-deadline 0s: exit %d, %q", code, errOut)
	}
}
