package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/fleet"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// TestSaveRotatedToken: a replaced token is saved into the config file in
// place (or into the entry's token_file), and the file read again gives
// the runner entry the fleet now serves, so a SIGHUP keeps it running.
func TestSaveRotatedToken(t *testing.T) {
	mods := modulesDirWith(t, "shell.wasm")
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "b.token")
	os.WriteFile(tokenFile, []byte("glrt-b-old\n"), 0o600)
	body := fmt.Sprintf(`# the fleet's config
concurrency = 4

[[runners]]
  # team A
  name = "team-a"
  url = "https://gitlab.example.com"
  token = "glrt-a-old" # rotated by serve
  token_obtained_at = 2026-01-01T00:00:00Z
  token_expires_at = 2026-01-31T00:00:00Z
  modules = %q

[[runners]]
  name = "team-b"
  url = "https://gitlab.example.com"
  token_file = %q
  modules = %q
`, mods, tokenFile, mods)
	path := writeConfig(t, body)
	base := serveOptions{concurrency: 4}
	_, before, err := configSet(path, base)()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC); !before[0].runner().TokenExpiresAt.Equal(want) {
		t.Errorf("token_expires_at read as %v", before[0].runner().TokenExpiresAt)
	}
	at := time.Date(2026, 1, 23, 12, 0, 0, 0, time.UTC)
	newA := fleet.Token{Token: "glrt-a-new", ObtainedAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour)}
	newB := fleet.Token{Token: "glrt-b-new", ObtainedAt: at, ExpiresAt: at.Add(7 * 24 * time.Hour)}
	if err := saveRotatedToken(path, "team-a", newA); err != nil {
		t.Fatal(err)
	}
	if err := saveRotatedToken(path, "team-b", newB); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	want := strings.Replace(body, `  token = "glrt-a-old" # rotated by serve
  token_obtained_at = 2026-01-01T00:00:00Z
  token_expires_at = 2026-01-31T00:00:00Z`, `  token = "glrt-a-new" # rotated by serve
  token_obtained_at = 2026-01-23T12:00:00Z
  token_expires_at = 2026-02-22T12:00:00Z`, 1)
	want = strings.Replace(want, fmt.Sprintf("  modules = %q\n", mods), fmt.Sprintf("  modules = %q\n  token_obtained_at = 2026-01-23T12:00:00Z\n  token_expires_at = 2026-01-30T12:00:00Z\n", mods), 2)
	want = strings.Replace(want, fmt.Sprintf("  modules = %q\n  token_obtained_at = 2026-01-23T12:00:00Z\n  token_expires_at = 2026-01-30T12:00:00Z\n", mods), fmt.Sprintf("  modules = %q\n", mods), 1)
	if string(data) != want {
		t.Errorf("config after the rotations:\n%s\nwant:\n%s", data, want)
	}
	if tok, _ := os.ReadFile(tokenFile); string(tok) != "glrt-b-new\n" {
		t.Errorf("token file: %q", tok)
	}
	_, after, err := configSet(path, base)()
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range []fleet.Token{newA, newB} {
		e := before[i].runner()
		e.Token, e.TokenObtainedAt, e.TokenExpiresAt = tok.Token, tok.ObtainedAt, tok.ExpiresAt
		if got := after[i].runner(); !got.Equal(e) {
			t.Errorf("runner %d read back: %+v\nwant %+v", i, got, e)
		}
	}
	if err := saveRotatedToken(path, "team-c", newA); err == nil {
		t.Error("saved the token of an unknown runner")
	}
	if err := tokenFileSaver("")("default", newA); err == nil || !strings.Contains(err.Error(), "--token-file") {
		t.Errorf("saving a --token token: %v", err)
	}
}

// TestListAndUnregister: list shows the entries without their tokens;
// unregister deletes a runner from GitLab and its entry from the file,
// leaving the rest of the file as it was.
func TestListAndUnregister(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	a, b := srv.AddRunner(), srv.AddRunner()
	mods := modulesDirWith(t, "shell.wasm")
	entry := func(comment, name, token string) string {
		return fmt.Sprintf("%s[[runners]]\nname = %q\nurl = %q\ntoken = %q\nmodules = %q\n\n", comment, name, srv.URL, token, mods)
	}
	body := "# three tenants\nconcurrency = 2\n\n" + entry("# A\n", "team-a", a) + entry("# B\n", "team-b", b) + entry("", "gone", "glrt-deleteddeleteddel")
	path := writeConfig(t, body)
	ctx := context.Background()

	code, out, errOut := runCLI(t, ctx, "list", "--config", path, "--verify")
	if code != exitFailure || !strings.Contains(errOut, "1 of 3 runners' tokens not taken by GitLab") {
		t.Errorf("list --verify: exit %d\n%s", code, errOut)
	}
	for _, w := range []string{"NAME", "team-a", a[:13] + "...", "gone", "token not valid", "unknown"} {
		if !strings.Contains(out, w) {
			t.Errorf("list lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, a) || strings.Contains(out, b) {
		t.Errorf("list shows a whole token:\n%s", out)
	}

	code, out, errOut = runCLI(t, ctx, "unregister", "--config", path, "--name", "team-a")
	if code != exitOK || !strings.Contains(out, "runner team-a unregistered and removed") {
		t.Fatalf("unregister: exit %d\n%s\n%s", code, out, errOut)
	}
	if srv.RunnerValid(a) || !srv.RunnerValid(b) {
		t.Errorf("after unregistering team-a: a valid %v, b valid %v", srv.RunnerValid(a), srv.RunnerValid(b))
	}
	data, _ := os.ReadFile(path)
	if want := "# three tenants\nconcurrency = 2\n\n" + entry("# B\n", "team-b", b) + entry("", "gone", "glrt-deleteddeleteddel"); string(data) != want {
		t.Errorf("config after unregister:\n%s\nwant:\n%s", data, want)
	}

	code, out, errOut = runCLI(t, ctx, "unregister", "--config", path, "--all-runners")
	if code != exitOK || !strings.Contains(errOut, "runner gone: GitLab does not know its token") || !strings.Contains(out, "runner team-b unregistered") {
		t.Errorf("unregister --all-runners: exit %d\n%s\n%s", code, out, errOut)
	}
	data, _ = os.ReadFile(path)
	if string(data) != "# three tenants\nconcurrency = 2\n\n" || srv.RunnerValid(b) {
		t.Errorf("config after unregistering all: %q (b valid %v)", data, srv.RunnerValid(b))
	}

	// Without a config file.
	c := srv.AddRunner()
	if code, out, _ := runCLI(t, ctx, "unregister", "--url", srv.URL, "--token", c); code != exitOK || !strings.Contains(out, "runner unregistered") || srv.RunnerValid(c) {
		t.Errorf("unregister --token: exit %d %s", code, out)
	}
	if code, _, errOut := runCLI(t, ctx, "unregister", "--url", srv.URL, "--token", c); code != exitFailure || !strings.Contains(errOut, "403") {
		t.Errorf("unregister twice: exit %d %s", code, errOut)
	}
	for _, args := range [][]string{{"unregister"}, {"unregister", "--config", path}, {"unregister", "--name", "x", "--url", srv.URL}, {"list"}} {
		if code, _, _ := runCLI(t, ctx, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
