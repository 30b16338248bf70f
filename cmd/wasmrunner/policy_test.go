package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/syncbuf"
)

// copyGuest writes the test guest guest into dir as name.wasm, with a
// manifest if one is given.
func copyGuest(t *testing.T, dir, guest, name, manifest string) {
	t.Helper()
	src := filepath.Join("..", "..", "testdata", "guests", guest+".wasm")
	data, err := os.ReadFile(src)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing: scripts/build-guests must run first", src)
		}
		t.Skipf("%s missing: run scripts/build-guests", src)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".wasm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if manifest != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The operator's policy, through serve: manifests asking beyond it are
// cut (one line in the job log, a count), an untrusted cpu =
// "uninterrupted" spinner stops at its timeout, and a tenant cannot reach
// another tenant's modules.
func TestServePolicy(t *testing.T) {
	a, b := gitlabtest.NewServer(), gitlabtest.NewServer()
	defer a.Close()
	defer b.Close()
	modsA, modsB := t.TempDir(), t.TempDir()
	copyGuest(t, modsA, "probe", "probe", "[limits]\nmemory = \"1GiB\"\n[http]\nallow = [\"*\", \"api.example.com\"]\n")
	copyGuest(t, modsA, "probe", "spin", "[limits]\ncpu = \"uninterrupted\"\n")
	copyGuest(t, modsB, "probe", "bonly", "")
	addr := freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "wasmrunner.toml")
	entry := func(name string, s *gitlabtest.Server, mods, policy string) string {
		return fmt.Sprintf("[[runners]]\nname = %q\nurl = %q\ntoken = %q\nmodules = %q\ncheck_interval = \"20ms\"\n%s",
			name, s.URL, s.RunnerToken, mods, policy)
	}
	config := fmt.Sprintf("concurrency = 4\nlisten = %q\nbuilds_dir = %q\n[policy]\nmemory = \"64MiB\"\n\n", addr, t.TempDir()) +
		entry("team-a", a, modsA, "[runners.policy]\nhttp_allow = [\"*.example.com\"]\n") + entry("team-b", b, modsB, "")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"wasmrunner", "--log-format", "json", "serve", "--config", cfg}, &out, &errOut)
	}()
	wait := func(s *gitlabtest.Server, id int64) gitlabtest.JobRecord {
		t.Helper()
		wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer wcancel()
		rec, err := s.WaitForState(wctx, id, gitlab.StateSuccess, gitlab.StateFailed)
		if err != nil {
			t.Fatalf("%v\n%s\nlog:\n%s", err, rec.Trace, errOut.String())
		}
		return rec
	}

	rec := wait(a, a.Enqueue(gitlabtest.NewJob("cut").Image("probe").Script("e hi")))
	want := "WARNING: handler probe's manifest asks for more than the operator allows; it gets limits.memory 1GiB -> 64MiB; " +
		"http.allow [*, api.example.com] -> [api.example.com] (outside the operator's allow-list: *)"
	if rec.State != gitlab.StateSuccess || !strings.Contains(string(rec.Trace), want) {
		t.Errorf("cut job: %s\n%s", rec.State, rec.Trace)
	}

	// The spinner asked for cpu = "uninterrupted" but is not trusted: it
	// is interrupted at its timeout, and its instance is free again.
	rec = wait(a, a.Enqueue(gitlabtest.NewJob("spin").Image("spin").Timeout(time.Second).Script("l")))
	if rec.FailureReason != gitlab.JobExecutionTimeout || !strings.Contains(string(rec.Trace), "limits.cpu uninterrupted -> interrupt (the handler is not trusted)") {
		t.Errorf("spinner: %s %s\n%s", rec.State, rec.FailureReason, rec.Trace)
	}
	metric := func(name string) string {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
				return line
			}
		}
		return ""
	}
	deadline := time.Now().Add(5 * time.Second)
	for metric("wasmrunner_instances") != "wasmrunner_instances 0" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if m := metric("wasmrunner_instances"); m != "wasmrunner_instances 0" {
		t.Errorf("the spinning guest still holds its instance: %s", m)
	}
	if m := metric("wasmrunner_manifest_cuts_total"); !strings.Contains(m, `handler="probe"`) {
		t.Errorf("cuts metric: %q", m)
	}

	// Team a's jobs cannot reach team b's module, whatever the image says.
	rec = wait(a, a.Enqueue(gitlabtest.NewJob("cross").Image(filepath.Join(modsB, "bonly")).Script("e stolen")))
	if rec.State != gitlab.StateFailed || strings.Contains(string(rec.Trace), "stolen") ||
		!strings.Contains(string(rec.Trace), `"bonly" is not loaded (available: probe, spin)`) {
		t.Errorf("cross-tenant job: %s\n%s", rec.State, rec.Trace)
	}
	if rec := wait(b, b.Enqueue(gitlabtest.NewJob("own").Image("bonly").Script("e team b"))); rec.State != gitlab.StateSuccess {
		t.Errorf("team b's own job: %s\n%s", rec.State, rec.Trace)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestModulesCheckConfig(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	mods := t.TempDir()
	copyGuest(t, mods, "probe", "probe", "[limits]\nmemory = \"1GiB\"\ncpu = \"uninterrupted\"\n")
	cfg := filepath.Join(t.TempDir(), "wasmrunner.toml")
	config := fmt.Sprintf("[policy]\nmemory = \"256MiB\"\ntrusted = [\"probe\"]\n\n[[runners]]\nname = \"lab\"\nurl = %q\ntoken = %q\nmodules = %q\n"+
		"[runners.policy]\ntrusted = []\n", srv.URL, srv.RunnerToken, mods)
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, context.Background(), "modules", "check", "--config", cfg)
	for _, want := range []string{
		"runner lab: " + mods, "256MiB", "interrupt",
		"cut by the operator's policy (manifest asks -> gets):",
		"probe: limits.memory 1GiB -> 256MiB",
		"probe: limits.cpu uninterrupted -> interrupt (the handler is not trusted)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != exitOK {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
