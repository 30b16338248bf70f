package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/ocisource/ocitest"
)

// shellDir returns a modules dir with the example shell handler and, if
// manifest is not empty, its shell.toml.
func shellDir(t *testing.T, manifest string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "examples", "modules", "shell.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "shell.wasm"), data, 0o644)
	if manifest != "" {
		os.WriteFile(filepath.Join(dir, "shell.toml"), []byte(manifest), 0o644)
	}
	return dir
}

// The two versions of the handler differ by their manifests: v1's jobs
// do not see the variable B, v2's do not see A. A job echoing "[$A$B]"
// says which version ran it.
const (
	manifestV1 = "[variables]\ndeny = [\"B\"]\n"
	manifestV2 = "[variables]\ndeny = [\"A\"]\n"
	manifestV3 = "[variables]\ndeny = [\"A\", \"B\"]\n"
)

var pushedDigest = regexp.MustCompile(`@(sha256:[0-9a-f]{64})\n`)

// pushCLI runs modules push and returns the digest it printed.
func pushCLI(t *testing.T, dir, ref string, args ...string) digest.Digest {
	t.Helper()
	code, out, errOut := runCLI(t, context.Background(), append(append([]string{"modules", "push"}, args...), dir, ref)...)
	m := pushedDigest.FindStringSubmatch(out)
	if code != exitOK || m == nil {
		t.Fatalf("modules push %s: exit %d\n%s\n%s", ref, code, out, errOut)
	}
	return digest.Digest(m[1])
}

// versionJob is a job of the shell handler that says which version ran
// it; with hold, it first touches the file "started-NAME" and then waits
// (at most about 60 s) until a file "release" is beside it.
func versionJob(name string, hold bool) *gitlabtest.JobBuilder {
	var script []string
	if hold {
		script = append(script, "touch started-"+name)
		for range 600 {
			script = append(script, "test -f release || sleep 0.1")
		}
	}
	script = append(script, `echo "version [$A$B]"`)
	return gitlabtest.NewJob(name).Image("shell").Var("A", "one").Var("B", "two").Script(script...)
}

func versionOf(trace []byte) string {
	m := regexp.MustCompile(`version \[(\w*)\]`).FindSubmatch(trace)
	if m == nil {
		return "?"
	}
	return string(m[1])
}

// TestServeOCIModules: a runner whose modules are a tag of a registry
// that requires auth (credentials from a docker config file) runs jobs
// with the pushed handler; a new version pushed under the tag serves new
// jobs within a pull interval while a job in flight finishes on the old
// one; a corrupted blob is refused and the last good version keeps
// serving, counted in the metrics; another runner pinned to a digest
// keeps its version.
func TestServeOCIModules(t *testing.T) {
	reg := ocitest.New(t)
	reg.RequireAuth("ci", "hunter2")
	authFile := filepath.Join(reg.DockerConfig(t, "ci", "hunter2"), "config.json")
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // nothing: the file is named in the config
	tag := reg.Ref("team/handlers:stable")
	d1 := pushCLI(t, shellDir(t, manifestV1), tag, "--registry-auth-file", authFile)
	pinned := reg.Ref("team/handlers@" + d1.String())

	buildsDir := t.TempDir()
	addr := freeAddr(t)
	global := fmt.Sprintf("pull_interval = \"100ms\"\nregistry_auth_file = %q\nbuilds_dir = %q\nlisten = %q\n", authFile, buildsDir, addr)
	ts := startTenants(t, tag, pinned, global, serveOptions{})
	defer ts.stop(t, syscall.SIGTERM, 30*time.Second)

	run := func(s *gitlabtest.Server, name string) string {
		t.Helper()
		rec := ts.wait(t, s, s.Enqueue(versionJob(name, false)), 60*time.Second)
		if rec.State != gitlab.StateSuccess {
			t.Fatalf("%s: %s\n%s", name, rec.State, rec.Trace)
		}
		return versionOf(rec.Trace)
	}
	if v := run(ts.a, "first"); v != "one" {
		t.Fatalf("first job ran version %q", v)
	}

	// A job in flight on v1.
	held := ts.a.Enqueue(versionJob("held", true))
	var heldDir string
	eventually(t, "the held job to start", func() bool {
		filepath.WalkDir(buildsDir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "started-held" {
				heldDir = filepath.Dir(path)
			}
			return nil
		})
		return heldDir != ""
	})

	d2 := pushCLI(t, shellDir(t, manifestV2), tag, "--registry-auth-file", authFile)
	eventually(t, "new jobs on v2", func() bool { return run(ts.a, "next") == "two" })
	if err := os.WriteFile(filepath.Join(heldDir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rec := ts.wait(t, ts.a, held, 60*time.Second)
	if rec.State != gitlab.StateSuccess || versionOf(rec.Trace) != "one" {
		t.Errorf("the job in flight: %s, version %q", rec.State, versionOf(rec.Trace))
	}
	if v := run(ts.b, "pinned"); v != "one" {
		t.Errorf("the pinned runner ran version %q", v)
	}

	// v3 with its manifest's blob served wrong: refused, v2 serves on.
	v3 := shellDir(t, manifestV3)
	reg.Corrupt(digest.FromString(manifestV3).String(), ocitest.Flip)
	pushCLI(t, v3, tag, "--registry-auth-file", authFile)
	eventually(t, "the corrupted version refused", func() bool {
		return strings.Contains(ts.log.String(), "mismatched digest")
	})
	errorsBefore := metricValue(t, addr, `wasmrunner_modules_source_errors_total{runner="team-a"}`)
	if errorsBefore < 1 {
		t.Errorf("errors metric %v", errorsBefore)
	}
	if v := run(ts.a, "after the bad push"); v != "two" {
		t.Errorf("after the corrupted push, version %q ran", v)
	}
	metrics := getMetrics(t, addr)
	for _, want := range []string{
		fmt.Sprintf(`wasmrunner_modules_source_digest_info{digest=%q,runner="team-a"} 1`, d2),
		fmt.Sprintf(`wasmrunner_modules_source_digest_info{digest=%q,runner="team-b"} 1`, d1),
		`wasmrunner_modules_source_resolved_timestamp_seconds{runner="team-a"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, fmt.Sprintf(`digest=%q,runner="team-a"`, d1)) {
		t.Errorf("the old digest is still exported for team-a")
	}
	if strings.Contains(ts.log.String(), "hunter2") {
		t.Error("the registry password was logged")
	}
}

func getMetrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func metricValue(t *testing.T, addr, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(getMetrics(t, addr), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}

// eventually polls cond for up to a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestModulesPushAndCheckOCI: push checks the modules first and prints
// the digest; check pulls a reference and checks it; errors exit as
// documented.
func TestModulesPushAndCheckOCI(t *testing.T) {
	reg := ocitest.New(t)
	ref := reg.Ref("handlers:v1")
	d := pushCLI(t, shellDir(t, manifestV1), ref)

	code, out, errOut := runCLI(t, context.Background(), "modules", "check", ref)
	if code != exitOK || !strings.Contains(out, ref+": "+d.String()) || !regexp.MustCompile(`(?m)^shell\s+ok$`).MatchString(out) {
		t.Errorf("check: exit %d\n%s\n%s", code, out, errOut)
	}

	broken := shellDir(t, "")
	os.WriteFile(filepath.Join(broken, "bad.wasm"), []byte("\x00asm\x01\x00\x00\x00\xff"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"modules", "push", broken, reg.Ref("handlers:broken")}, exitFailure, "1 broken module(s), 1 problem(s): not pushed"},
		{[]string{"modules", "push", t.TempDir(), reg.Ref("handlers:empty")}, exitFailure, "no modules"},
		{[]string{"modules", "push", broken}, exitUsage, "takes a directory and an oci:// reference"},
		{[]string{"modules", "push", broken, "registry.example.com/x:1"}, exitUsage, "takes a directory and an oci:// reference"},
		{[]string{"modules", "push", broken, "oci://registry.example.com/x"}, exitUsage, "a tag (:TAG) or a digest"},
		{[]string{"modules", "check", reg.Ref("handlers:missing")}, exitFailure, "not found"},
		{[]string{"serve", "--url", "http://127.0.0.1:1", "--token", "x", "--modules", "oci://x/y"}, exitUsage, "--modules: bad reference"},
	} {
		code, out, errOut := runCLI(t, context.Background(), tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d\n%s\n%s\nwant %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
	// With --no-check a broken module is pushed (and check says so).
	if _, _, err := runCLIErr(t, "modules", "push", "--no-check", broken, reg.Ref("handlers:broken")); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, context.Background(), "modules", "check", reg.Ref("handlers:broken"))
	if code != exitFailure || !strings.Contains(out, "bad") {
		t.Errorf("check of a broken artifact: exit %d\n%s", code, out)
	}
}

func runCLIErr(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	code, out, errOut := runCLI(t, context.Background(), args...)
	if code != exitOK {
		return out, errOut, fmt.Errorf("%q: exit %d\n%s\n%s", args, code, out, errOut)
	}
	return out, errOut, nil
}

// TestConfigOCIModules: the config file takes oci:// modules and the
// registry keys; a bad reference is a usage error naming the runner.
func TestConfigOCIModules(t *testing.T) {
	path := writeConfig(t, `pull_interval = "30s"
insecure_registries = ["registry.lan:5000"]
registry_auth_file = "/etc/wasmrunner/docker.json"

[[runners]]
name = "a"
url = "https://gitlab.example.com"
token = "t"
modules = "oci://registry.lan:5000/handlers:v1"
default_handler = "shell"

[[runners]]
name = "b"
url = "https://gitlab.example.com"
token = "t"
modules = "oci://registry.lan:5000/handlers:v1"
pull_interval = "5m"
registry_auth_file = "/etc/wasmrunner/b.json"
`)
	_, runners, err := configSet(path, serveOptions{})()
	if err != nil {
		t.Fatal(err)
	}
	a, b := runners[0].oci, runners[1].oci
	if a.pullInterval != 30*time.Second || a.authFile != "/etc/wasmrunner/docker.json" || len(a.insecure) != 1 || a.insecure[0] != "registry.lan:5000" {
		t.Errorf("a: %+v", a)
	}
	if b.pullInterval != 5*time.Minute || b.authFile != "/etc/wasmrunner/b.json" {
		t.Errorf("b: %+v", b)
	}
	bad := writeConfig(t, "[[runners]]\nname = \"x\"\nurl = \"https://gitlab.example.com\"\ntoken = \"t\"\nmodules = \"oci://registry.lan/handlers\"\n")
	if _, err := loadConfig(bad); err == nil || !strings.Contains(err.Error(), "runners[0] (x): modules: bad reference") {
		t.Errorf("bad reference: %v", err)
	}
}
