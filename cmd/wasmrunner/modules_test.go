package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/goguest"
)

// checkDirOf writes a modules dir: test guests by module stem ("shell",
// "shell@1.0"), Go guests, and other files by name.
func checkDirOf(t *testing.T, guests map[string]string, gomods map[string][]byte, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for stem, g := range guests {
		copyGuest(t, dir, g, stem, "")
	}
	for stem, bin := range gomods {
		if err := os.WriteFile(filepath.Join(dir, stem+".wasm"), bin, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestModulesCheckJSON: --format json is one document of a stable shape,
// with every module and version, its limits, cuts and problems, and the
// dir's problems; the exit code says whether there is any.
func TestModulesCheckJSON(t *testing.T) {
	dir := checkDirOf(t,
		map[string]string{"shell": "probe", "shell@1.0": "probe", "shell@2.0": "bad_import"},
		map[string][]byte{"gocmd": goguest.Module(t, goguest.SDK, false)},
		map[string]string{
			"shell@1.0.toml": "[limits]\nmemory = \"1GiB\"\ntimeout = \"90m\"\n[http]\nallow = [\"api.example.com\"]\n",
			"orphan.toml":    "",
		})
	code, out, errOut := runCLI(t, context.Background(), "modules", "check", "--format", "json", dir)
	if code != exitFailure || !strings.Contains(errOut, "2 broken module(s); 3 problem(s) in all") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// The shape: these keys, no others.
	var raw map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if keys := sortedNames(raw); !slices.Equal(keys, []string{"format", "ok", "runners"}) || raw["format"] != 1.0 || raw["ok"] != false {
		t.Errorf("top level: %v", raw)
	}
	runner := raw["runners"].([]any)[0].(map[string]any)
	if keys := sortedNames(runner); !slices.Equal(keys, []string{"modules", "modules_dir", "problems"}) {
		t.Errorf("runner keys %v", keys)
	}
	for _, m := range runner["modules"].([]any) {
		m := m.(map[string]any)
		if m["image"] == "shell:1.0" {
			want := []string{"abi", "cuts", "entry", "image", "limits", "loaded", "manifest", "name", "path", "sha256", "size", "tag"}
			if keys := sortedNames(m); !slices.Equal(keys, want) {
				t.Errorf("module keys %v, want %v", keys, want)
			}
			lim := m["limits"].(map[string]any)
			want = []string{"cpu", "disk_bytes", "files", "http", "instances", "log_bytes", "memory_bytes", "open_files", "timeout_seconds"}
			if keys := sortedNames(lim); !slices.Equal(keys, want) {
				t.Errorf("limits keys %v, want %v", keys, want)
			}
		}
	}

	var got checkOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	r := got.Runners[0]
	probe, _ := os.ReadFile(filepath.Join(dir, "shell.wasm"))
	sum := sha256.Sum256(probe)
	byImage := map[string]checkModule{}
	var images []string
	for _, m := range r.Modules {
		byImage[m.Image] = m
		images = append(images, m.Image)
	}
	if !slices.Equal(images, []string{"gocmd", "shell", "shell:1.0", "shell:2.0"}) {
		t.Errorf("modules %v", images)
	}
	shell := byImage["shell"]
	if !shell.Loaded || shell.Name != "shell" || shell.Tag != "" || shell.Entry != "wasmrunner_step" || shell.ABI != "v1" ||
		shell.SHA256 != hex.EncodeToString(sum[:]) || shell.Size != int64(len(probe)) || shell.Manifest != "" ||
		shell.Limits == nil || shell.Limits.MemoryBytes != 128<<20 || shell.Limits.CPU != "interrupt" || len(shell.Problems) > 0 {
		t.Errorf("shell: %+v", shell)
	}
	v1 := byImage["shell:1.0"]
	if !v1.Loaded || v1.Tag != "1.0" || v1.Path != filepath.Join(dir, "shell@1.0.wasm") || v1.Manifest != filepath.Join(dir, "shell@1.0.toml") ||
		v1.Limits.TimeoutSeconds != 5400 || !slices.Equal(v1.Limits.HTTP.Allow, []string{"api.example.com"}) ||
		v1.Limits.HTTP.TimeoutSeconds != 30 || v1.Limits.HTTP.MaxBodyBytes != 10<<20 ||
		len(v1.Cuts) != 1 || v1.Cuts[0] != (checkCut{Key: "limits.memory", Asked: "1GiB", Got: "128MiB"}) {
		t.Errorf("shell:1.0: %+v %+v", v1, v1.Limits)
	}
	if m := byImage["shell:2.0"]; m.Loaded || m.Limits != nil || len(m.Problems) != 1 || m.Problems[0].Code != "import" ||
		m.Problems[0].Message != "imports unknown function wasmrunner:host/v1.format_disk" {
		t.Errorf("shell:2.0: %+v", m)
	}
	if m := byImage["gocmd"]; m.Loaded || len(m.Problems) != 1 || m.Problems[0].Code != "go_command" ||
		!strings.HasSuffix(m.Problems[0].Message, "build with -buildmode=c-shared: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared") {
		t.Errorf("gocmd: %+v", m)
	}
	if len(r.Problems) != 1 || r.Problems[0].Code != "manifest_without_module" {
		t.Errorf("dir problems %+v", r.Problems)
	}

	// A dir without problems: ok, exit 0.
	code, out, _ = runCLI(t, context.Background(), "modules", "check", "--format", "json", checkDirOf(t, map[string]string{"shell": "probe"}, nil, nil))
	if code != exitOK || !strings.Contains(out, `"ok": true`) {
		t.Errorf("good dir: exit %d\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, context.Background(), "modules", "check", "--format", "yaml", dir); code != exitUsage || !strings.Contains(errOut, `invalid --format "yaml" (text or json)`) {
		t.Errorf("bad format: %d %s", code, errOut)
	}
}

// TestModulesCheckText: every limit in human units, versions, problems
// with their codes and fixes, and the dir's problems.
func TestModulesCheckText(t *testing.T) {
	dir := checkDirOf(t, map[string]string{"shell": "probe", "shell@1.0": "probe", "lab": "probe", "Case": "probe"}, nil, map[string]string{
		"shell@1.0.toml": "[limits]\ntimeout = \"90m\"\nlog = \"1MiB\"\ninstances = 2\n[http]\nallow = [\"api.example.com\"]\nmax_body = \"1MiB\"\n",
		"lab.toml":       "[limits]\nmemory = 64\n",
		"case.toml":      "",
		"orphan.toml":    "",
	})
	code, out, _ := runCLI(t, context.Background(), "modules", "check", dir)
	if code != exitFailure {
		t.Errorf("exit %d", code)
	}
	probe, err := os.Stat(filepath.Join(dir, "shell.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	size := fmt.Sprintf("(%dB, sha256 ", probe.Size())
	for _, want := range []string{
		"modules dir " + dir,
		"shell  ok\n  file:     shell.wasm " + size,
		"  limits:   memory 128MiB, timeout the job's, log the runner's output limit, disk 1GiB, files 100000, open files 256, instances the runner's, cpu interrupt\n",
		"  http:     allow none (no HTTP); timeout 30s, max body 10MiB\n",
		"shell:1.0  ok\n  file:     shell@1.0.wasm " + size,
		"), manifest shell@1.0.toml\n  entry:    wasmrunner_step (reactor), ABI v1\n",
		"  limits:   memory 128MiB, timeout 1h30m, log 1MiB, disk 1GiB, files 100000, open files 256, instances 2, cpu interrupt\n",
		"  http:     allow api.example.com; timeout 30s, max body 1MiB\n",
		"lab  NOT LOADED: jobs naming it fail\n  file:     lab.wasm, manifest lab.toml\n",
		`  problem:  manifest: lab.toml:2: limits.memory = 64 has no unit: write "64MiB" (or "64B" for bytes) [manifest]`,
		"Case  NOT LOADED: jobs naming it fail\n  file:     Case.wasm\n  problem:  there is no Case.toml, but case.toml differs from it only by case: rename it Case.toml",
		"problems of the modules dir and the runner's settings:\n  orphan.toml has no orphan.wasm beside it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "134217728") || strings.Contains(out, "10485760") {
		t.Errorf("a size in bytes:\n%s", out)
	}
}

// TestModulesCheckConfigHandlers: with --config, only a runner's handlers
// load; a config whose handlers or default_handler name no module is
// refused, in a JSON document too.
func TestModulesCheckConfigHandlers(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	dir := checkDirOf(t, map[string]string{"shell": "probe", "shell@1.0": "probe", "lab": "probe"}, nil, nil)
	cfg := filepath.Join(t.TempDir(), "wasmrunner.toml")
	writeConfig := func(handlers, def string) {
		t.Helper()
		config := fmt.Sprintf("[[runners]]\nname = \"a\"\nurl = %q\ntoken = %q\nmodules = %q\nhandlers = %s\ndefault_handler = %q\n\n"+
			"[[runners]]\nname = \"b\"\nurl = %q\ntoken = %q\nmodules = %q\n",
			srv.URL, srv.RunnerToken, dir, handlers, def, srv.URL, srv.RunnerToken, dir)
		if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(`["shell"]`, "shell")
	code, out, errOut := runCLI(t, context.Background(), "modules", "check", "--config", cfg, "--format", "json")
	if code != exitOK {
		t.Errorf("exit %d: %s", code, errOut)
	}
	var got checkOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got.Runners) != 2 {
		t.Fatalf("runners: %+v", got.Runners)
	}
	a, b := got.Runners[0], got.Runners[1]
	var images []string
	for _, m := range a.Modules {
		images = append(images, m.Image)
	}
	if a.Runner != "a" || !slices.Equal(images, []string{"shell", "shell:1.0"}) || !slices.Equal(a.Skipped, []string{"lab"}) ||
		!slices.Equal(a.Handlers, []string{"shell"}) || a.DefaultHandler != "shell" || len(a.Problems) > 0 {
		t.Errorf("runner a: %+v", a)
	}
	if b.Runner != "b" || len(b.Modules) != 3 || len(b.Skipped) > 0 || len(b.Problems) > 0 {
		t.Errorf("runner b: %+v", b)
	}
	code, out, _ = runCLI(t, context.Background(), "modules", "check", "--config", cfg)
	for _, want := range []string{
		"runner a: " + dir + " (handlers: shell) (default handler: shell)",
		"not loaded, not in this runner's handlers: lab",
		"runner b: " + dir + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if code != exitOK {
		t.Errorf("text: exit %d", code)
	}

	writeConfig(`["shell", "ghost"]`, "shell")
	code, out, errOut = runCLI(t, context.Background(), "modules", "check", "--config", cfg, "--format", "json")
	got = checkOutput{}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitUsage || got.OK || !strings.Contains(got.Error, `"ghost"`) || !strings.Contains(errOut, `"ghost"`) {
		t.Errorf("a handler that is no module's: exit %d %+v %v\n%s", code, got, err, errOut)
	}
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
