package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/syncbuf"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut syncbuf.Buffer
	code := run(ctx, append([]string{"wasmrunner"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// guestsDir returns a modules dir holding the probe test guest.
func guestsDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		src := filepath.Join("..", "..", "testdata", "guests", n+".wasm")
		data, err := os.ReadFile(src)
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s missing: scripts/build-guests must run first", src)
			}
			t.Skipf("%s missing: run scripts/build-guests", src)
		}
		if err := os.WriteFile(filepath.Join(dir, n+".wasm"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServeUsageErrors(t *testing.T) {
	t.Setenv("WASMRUNNER_TOKEN", "")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve"}, "--url (or WASMRUNNER_URL) is required"},
		{[]string{"serve", "--url", "http://127.0.0.1:1"}, "--token, --token-file or WASMRUNNER_TOKEN is required"},
		{[]string{"serve", "--url", "http://127.0.0.1:1", "--token", "x"}, "--modules (or WASMRUNNER_MODULES) is required"},
		{[]string{"serve", "--url", "http://127.0.0.1:1", "--token", "x", "--token-file", "f"}, "not both"},
		{[]string{"serve", "--url", "http://127.0.0.1:1", "--token", "x", "--modules", ".", "--output-limit", "lots"}, "invalid --output-limit"},
		{[]string{"--log-format", "xml", "version"}, ""},
	}
	for _, tt := range tests {
		code, _, errOut := runCLI(t, context.Background(), tt.args...)
		if tt.want == "" {
			continue
		}
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, exitUsage, tt.want)
		}
	}
}

// TestServe runs the command against the fake GitLab: flags from the
// environment, the token from a file, jobs run, metrics and health served,
// and a cancelled context aborts.
func TestServe(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	dir := guestsDir(t, "probe")
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(srv.RunnerToken+"\n"), 0o600)
	addr := freeAddr(t)
	t.Setenv("WASMRUNNER_URL", srv.URL)
	t.Setenv("WASMRUNNER_MODULES", dir)
	t.Setenv("WASMRUNNER_CHECK_INTERVAL", "20ms")

	id := srv.Enqueue(gitlabtest.NewJob("hello").Image("probe").Script("e hello from serve"))
	failing := srv.Enqueue(gitlabtest.NewJob("bad").Image("probe").Script("x"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"wasmrunner", "--log-format", "json", "serve", "--token-file", tokenFile,
			"--builds-dir", t.TempDir(), "--listen", addr, "--concurrency", "2"}, &out, &errOut)
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	rec, err := srv.WaitForState(wctx, id, gitlab.StateSuccess, gitlab.StateFailed)
	if err != nil || rec.State != gitlab.StateSuccess || !strings.Contains(string(rec.Trace), "hello from serve") ||
		!strings.Contains(string(rec.Trace), "Running with wasmrunner "+version+"\x1b") {
		t.Fatalf("job: %s %v\n%s\nlog:\n%s", rec.State, err, rec.Trace, errOut.String())
	}
	if rec, _ := srv.WaitForState(wctx, failing, gitlab.StateFailed); rec.ExitCode != 7 {
		t.Errorf("failing job exit %d", rec.ExitCode)
	}

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz %d", code)
	}
	wantMetrics := []string{
		`gitlab_runner_jobs_total{runner="default"} 2`,
		`gitlab_runner_failed_jobs_total{failure_reason="script_failure",runner="default"} 1`,
		`wasmrunner_jobs_finished_total{failure_reason="",handler="probe",result="success",runner="default"} 1`,
		`gitlab_runner_api_request_statuses_total{endpoint="request_job",runner="default",status="201"} 2`,
		`gitlab_runner_api_request_statuses_total{endpoint="update_job",runner="default",status="200"}`,
		"gitlab_runner_concurrent 2",
		`gitlab_runner_job_duration_seconds_count{runner="default"} 2`,
		`wasmrunner_module_compile_seconds_count{module="probe",runner="default"} 1`,
		`wasmrunner_module_instantiate_seconds_count{module="probe",runner="default"} 2`,
	}
	// A job is counted just after GitLab hears of its end.
	var metrics string
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		_, metrics = get("/metrics")
		if strings.Contains(metrics, `gitlab_runner_job_duration_seconds_count{runner="default"} 2`) {
			break
		}
	}
	for _, want := range wantMetrics {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Errorf("exit %d\n%s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	log := errOut.String()
	for _, want := range []string{`"msg":"handlers loaded"`, `"handlers":"probe(memory=128MiB)"`, `"msg":"job finished"`, `"job":` + fmt.Sprint(id)} {
		if !strings.Contains(log, want) {
			t.Errorf("operator log lacks %s", want)
		}
	}
	if strings.Contains(log, srv.RunnerToken) || strings.Contains(out.String(), srv.RunnerToken) {
		t.Error("the runner token was logged")
	}
}

// TestServeSignals: SIGQUIT finishes running jobs, SIGTERM aborts them, a
// second signal exits at once.
func TestServeSignals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		signals []os.Signal
		code    int
	}{
		{"SIGQUIT finishes", []os.Signal{syscall.SIGQUIT}, exitOK},
		{"SIGTERM aborts", []os.Signal{syscall.SIGTERM}, exitOK},
		{"second signal exits", []os.Signal{syscall.SIGQUIT, syscall.SIGQUIT}, exitForced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := gitlabtest.NewServer()
			defer srv.Close()
			o := serveOptions{
				url: srv.URL, token: srv.RunnerToken, modulesDir: guestsDir(t, "probe"), buildsDir: t.TempDir(),
				concurrency: 2, checkInterval: 20 * time.Millisecond, shutdownTimeout: 10 * time.Second,
				reloadInterval: time.Second, outputLimit: 1 << 20, updateInterval: 50 * time.Millisecond,
			}
			// A job that runs until its 2 s timeout ends it.
			long := srv.Enqueue(gitlabtest.NewJob("long").Image("probe").Script("e started", "s").Timeout(2 * time.Second))
			sigs := make(chan os.Signal, 4)
			done := make(chan error, 1)
			// Discarded: after "second signal exits" jobs outlive the test.
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			go func() { done <- serve(context.Background(), o, logger, sigs) }()
			deadline := time.Now().Add(15 * time.Second)
			for !strings.Contains(string(srv.Job(long).Trace), "started") {
				if time.Now().After(deadline) {
					t.Fatal("job did not start")
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, s := range tc.signals {
				sigs <- s
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not return")
			}
			code := exitOK
			if err != nil {
				code = exitFailure
				if e, ok := err.(interface{ ExitCode() int }); ok {
					code = e.ExitCode()
				}
			}
			if code != tc.code {
				t.Errorf("exit %d (%v), want %d", code, err, tc.code)
			}
			rec := srv.Job(long)
			switch tc.name {
			case "SIGQUIT finishes":
				// The job ran to its own end, not aborted by the runner.
				if rec.FailureReason != gitlab.JobExecutionTimeout || strings.Contains(string(rec.Trace), "shutting down") {
					t.Errorf("drained job: %s %s\n%s", rec.State, rec.FailureReason, rec.Trace)
				}
			case "SIGTERM aborts":
				if rec.State != gitlab.StateFailed || !strings.Contains(string(rec.Trace), "the runner is shutting down") {
					t.Errorf("aborted job: %s\n%s", rec.State, rec.Trace)
				}
			}
		})
	}
}

func TestModulesCheck(t *testing.T) {
	code, out, _ := runCLI(t, context.Background(), "modules", "check", guestsDir(t, "probe"))
	if code != exitOK || !strings.Contains(out, "probe") || !strings.Contains(out, "wasmrunner_step") {
		t.Errorf("good dir: exit %d\n%s", code, out)
	}
	code, out, errOut := runCLI(t, context.Background(), "modules", "check", guestsDir(t, "probe", "bad_import"))
	if code != exitFailure || !strings.Contains(out, "imports unknown function wasmrunner:host/v1.format_disk") || !strings.Contains(errOut, "1 broken module") {
		t.Errorf("broken dir: exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestVerifyAndRegister(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	ctx := context.Background()
	if code, out, errOut := runCLI(t, ctx, "verify", "--url", srv.URL, "--token", srv.RunnerToken); code != exitOK || !strings.Contains(out, "token is valid") {
		t.Errorf("verify: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, ctx, "verify", "--url", srv.URL, "--token", "glrt-wrongwrongwrong"); code != exitFailure || !strings.Contains(errOut, "403") || strings.Contains(errOut, "wrongwrongwrong") {
		t.Errorf("verify bad token: %d %s", code, errOut)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	code, out, errOut := runCLI(t, ctx, "register", "--url", srv.URL, "--access-token", srv.AccessToken(), "--runner-type", "project_type", "--project-id", "7", "--tags", "wasm", "--token-file", tokenFile)
	if code != exitOK || !strings.Contains(out, "token written to") {
		t.Fatalf("register: %d %s %s", code, out, errOut)
	}
	tok, _ := os.ReadFile(tokenFile)
	if code, _, _ := runCLI(t, ctx, "verify", "--url", srv.URL, "--token-file", tokenFile); code != exitOK || !strings.HasPrefix(string(tok), "glrt-") {
		t.Errorf("registered token %q does not verify", tok)
	}
	code, out, _ = runCLI(t, ctx, "register", "--url", srv.URL, "--registration-token", srv.RegistrationToken())
	if code != exitOK || !strings.Contains(out, "glrt-") {
		t.Errorf("legacy register: %d %s", code, out)
	}
	// Into a config file that serve --config then loads.
	cfg := filepath.Join(t.TempDir(), "wasmrunner.toml")
	for _, name := range []string{"team-a", "team-b"} {
		code, out, errOut := runCLI(t, ctx, "register", "--url", srv.URL, "--access-token", srv.AccessToken(), "--config", cfg, "--name", name, "--modules", "/srv/handlers")
		if code != exitOK || !strings.Contains(out, "added to") {
			t.Fatalf("register --config: %d %s %s", code, out, errOut)
		}
	}
	fc, err := loadConfig(cfg)
	if err != nil || len(fc.Runners) != 2 || fc.Runners[1].Name != "team-b" || !strings.HasPrefix(fc.Runners[0].Token, "glrt-") {
		t.Errorf("config after register: %+v %v", fc, err)
	}
	if fi, _ := os.Stat(cfg); fi.Mode().Perm() != 0o600 {
		t.Errorf("config mode %v", fi.Mode())
	}
	if code, _, errOut := runCLI(t, ctx, "register", "--url", srv.URL); code != exitUsage || !strings.Contains(errOut, "is required") {
		t.Errorf("register without token: %d %s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, context.Background(), "version")
	if code != exitOK || !strings.Contains(out, "wasmrunner:host/v1") {
		t.Errorf("version: %d %s", code, out)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	tests := []struct{ body, want string }{
		{"concurrency = 2\n[[runners]]\nurl = \"http://x\"\ntokn = \"t\"\n", `c.toml:4: unknown key "runners.tokn"`},
		{"concurrency = \"many\"\n", "c.toml:1: concurrency must be an integer, not a string; e.g. concurrency = 4"},
		{"[[runners]]\nurl = \"http://x\"\ntoken = \"t\"\noutput_limit = \"huge\"\n", "c.toml:4: runners.output_limit:"},
		{"listen = \":1\"\n", "no [[runners]]"},
		{"[[runners]]\nname = \"a\"\nurl = \"http://x\"\ntoken = \"t\"\nmodules = \"m\"\n[[runners]]\nname = \"a\"\nurl = \"http://y\"\ntoken_file = \"/nonexistent\"\nmodules = \"m\"\n",
			`name "a" is used twice`},
		{"[[runners]]\nurl = \"http://x\"\nmodules = \"m\"\n", "token or token_file is required"},
	}
	for i, tt := range tests {
		path := write("c.toml", tt.body)
		code, _, errOut := runCLI(t, context.Background(), "serve", "--config", path)
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("case %d: exit %d, stderr %q; want %q", i, code, errOut, tt.want)
		}
	}
}

// TestConfigReload serves two GitLabs from one config file: SIGHUP adds a
// runner without disturbing the first, and a runner's handler allow-list
// is enforced.
func TestConfigReload(t *testing.T) {
	a, b := gitlabtest.NewServer(), gitlabtest.NewServer()
	defer a.Close()
	defer b.Close()
	mods := guestsDir(t, "probe")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "wasmrunner.toml")
	entry := func(name string, s *gitlabtest.Server, handlers string) string {
		return fmt.Sprintf("[[runners]]\nname = %q\nurl = %q\ntoken = %q\nmodules = %q\nhandlers = %s\ncheck_interval = \"20ms\"\n",
			name, s.URL, s.RunnerToken, mods, handlers)
	}
	os.WriteFile(cfgPath, []byte("concurrency = 4\n"+entry("team-a", a, `["probe"]`)), 0o600)
	base := serveOptions{buildsDir: t.TempDir(), concurrency: 2, checkInterval: 20 * time.Millisecond,
		shutdownTimeout: 10 * time.Second, reloadInterval: time.Second, outputLimit: 1 << 20, updateInterval: 50 * time.Millisecond}
	sigs := make(chan os.Signal, 4)
	done := make(chan error, 1)
	go func() {
		done <- serveSet(context.Background(), configSet(cfgPath, base), slog.New(slog.NewTextHandler(io.Discard, nil)), sigs)
	}()
	wait := func(s *gitlabtest.Server, id int64) gitlabtest.JobRecord {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		rec, err := s.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed)
		if err != nil {
			t.Fatalf("%v\n%s", err, rec.Trace)
		}
		return rec
	}
	if rec := wait(a, a.Enqueue(gitlabtest.NewJob("a1").Image("probe").Script("e from team a"))); rec.State != gitlab.StateSuccess {
		t.Fatalf("team-a job: %s\n%s", rec.State, rec.Trace)
	}
	if rec := wait(a, a.Enqueue(gitlabtest.NewJob("a2").Image("other").Script("e x"))); rec.State != gitlab.StateFailed ||
		!strings.Contains(string(rec.Trace), `handler "other" is not allowed for this runner`) {
		t.Errorf("allow-list: %s\n%s", rec.State, rec.Trace)
	}
	// Add team-b and reload.
	bJob := b.Enqueue(gitlabtest.NewJob("b1").Image("probe").Script("e from team b"))
	os.WriteFile(cfgPath, []byte("concurrency = 4\n"+entry("team-a", a, `["probe"]`)+entry("team-b", b, `[]`)), 0o600)
	sigs <- syscall.SIGHUP
	if rec := wait(b, bJob); rec.State != gitlab.StateSuccess {
		t.Errorf("team-b job after reload: %s\n%s", rec.State, rec.Trace)
	}
	// A broken config on reload keeps the running set.
	os.WriteFile(cfgPath, []byte("concurrency = [\n"), 0o600)
	sigs <- syscall.SIGHUP
	if rec := wait(a, a.Enqueue(gitlabtest.NewJob("a3").Image("probe").Script("e still here"))); rec.State != gitlab.StateSuccess {
		t.Errorf("team-a after a bad reload: %s", rec.State)
	}
	sigs <- syscall.SIGQUIT
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestFlagsFromEnvironmentAndPrecedence(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	// The environment supplies what flags do not; a flag beats the environment.
	t.Setenv("WASMRUNNER_URL", "http://127.0.0.1:1") // wrong: the flag must win
	t.Setenv("WASMRUNNER_TOKEN", srv.RunnerToken)
	code, out, errOut := runCLI(t, context.Background(), "verify", "--url", srv.URL)
	if code != exitOK || !strings.Contains(out, "token is valid") {
		t.Errorf("exit %d %s %s", code, out, errOut)
	}
}
