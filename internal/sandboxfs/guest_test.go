//go:build unix

package sandboxfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// guestWasm returns the bytes of a guest built by testdata/sandboxfs/build.sh.
// Tests do not build guests: a missing one skips the test, except under CI,
// where it fails.
func guestWasm(t *testing.T, name string) []byte {
	t.Helper()
	p := filepath.Join("..", "..", "testdata", "sandboxfs", name)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		msg := name + " is not built: run testdata/sandboxfs/build.sh (needs clang with the wasm32-wasi target and wasi-libc)"
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg + "; CI is set, so this is a failure")
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// runGuest runs a WASI command with fsCfg and returns its stdout; stderr is
// logged.
func runGuest(t *testing.T, wasm []byte, fsCfg wazero.FSConfig, args ...string) string {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var stdout, stderr bytes.Buffer
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(append([]string{"guest"}, args...)...).
		WithStdout(&stdout).
		WithStderr(&stderr).
		WithFSConfig(fsCfg)
	mod, err := r.InstantiateWithConfig(ctx, wasm, cfg)
	if mod != nil {
		mod.Close(ctx)
	}
	var exitErr *sys.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 0 {
		err = nil
	}
	if stderr.Len() > 0 {
		t.Logf("guest stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Errorf("guest: %v\nstdout:\n%s", err, stdout.String())
	}
	return stdout.String()
}

var attemptLine = regexp.MustCompile(`^[a-z0-9_]+: (blocked|ESCAPED .*)$`)

// escapeReport checks the shape of escape.wasm's output and returns the
// ESCAPED lines.
func escapeReport(t *testing.T, out string) (escapes []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	last := lines[len(lines)-1]
	n, err := strconv.Atoi(strings.TrimPrefix(last, "DONE "))
	if !strings.HasPrefix(last, "DONE ") || err != nil || n != len(lines)-1 || n < 30 {
		t.Fatalf("escape.wasm did not finish (want ≥30 attempts and DONE <count>):\n%s", out)
	}
	for _, l := range lines[:n] {
		if !attemptLine.MatchString(l) {
			t.Errorf("unexpected line %q", l)
		}
		if strings.Contains(l, ": ESCAPED") {
			escapes = append(escapes, l)
		}
	}
	return escapes
}

// TestGuestEscapes runs the hostile C guest with the build dir mounted as "/"
// through FS: every attempt must be blocked and nothing outside may change
// (the fixture checks the outside tree and the canary at cleanup).
func TestGuestEscapes(t *testing.T) {
	wasm := guestWasm(t, "escape.wasm")
	fx := newFixture(t)
	fsys := fx.newFS(t)
	out := runGuest(t, wasm, Mount(wazero.NewFSConfig(), fsys, "/"), fx.outside)
	t.Logf("escape.wasm on sandboxfs:\n%s", out)
	for _, l := range escapeReport(t, out) {
		t.Errorf("escape: %s", l)
	}
	// The guest's legitimate setup steps happened inside.
	for _, p := range []string{"mine", "mine_sec", "sub2/up", "up", "dang"} {
		if fi, err := os.Lstat(filepath.Join(fx.build, p)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("guest-made link %s: %v", p, err)
		}
	}
}

// TestGuestEscapesDirMount runs the same guest on wazero's WithDirMount to
// show that the hole exists there and that escape.wasm detects it: without
// this, a guest that escapes nothing would pass TestGuestEscapes.
func TestGuestEscapesDirMount(t *testing.T) {
	wasm := guestWasm(t, "escape.wasm")
	fx := newFixture(t)
	fx.outsideMayChange = true // it does, here
	out := runGuest(t, wasm, wazero.NewFSConfig().WithDirMount(fx.build, "/"), fx.outside)
	escapes := escapeReport(t, out)
	if len(escapes) == 0 {
		t.Fatalf("no escape detected on WithDirMount: the guest or the fixture is broken\n%s", out)
	}
	t.Logf("WithDirMount: %d escapes:\n%s", len(escapes), strings.Join(escapes, "\n"))
	if changes := diffSnapshots(fx.before, snapshot(t, fx.base, "build")); len(changes) == 0 {
		t.Error("WithDirMount: nothing outside changed, yet the guest tries to")
	} else {
		t.Logf("WithDirMount changed %d entries outside", len(changes))
	}
}

// TestGuestFSOK runs ordinary file work (C stdio and POSIX calls) on FS.
func TestGuestFSOK(t *testing.T) {
	wasm := guestWasm(t, "fs_ok.wasm")
	fx := newFixture(t)
	fsys := fx.newFS(t)
	out := runGuest(t, wasm, Mount(nil, fsys, "/"))
	if !hasLine(out, "ok") {
		t.Errorf("fs_ok.wasm on sandboxfs:\n%s", out)
	}
	if got := readHost(t, filepath.Join(fx.build, "out", "log.txt")); got != "hello\nworld\n" {
		t.Errorf("out/log.txt on the host = %q", got)
	}
}

// TestGuestFSOKDirMount checks fs_ok.wasm itself: it must pass on wazero's
// own DirFS too, so a failure on FS is the FS's.
func TestGuestFSOKDirMount(t *testing.T) {
	wasm := guestWasm(t, "fs_ok.wasm")
	fx := newFixture(t)
	out := runGuest(t, wasm, wazero.NewFSConfig().WithDirMount(fx.build, "/"))
	if !hasLine(out, "ok") {
		t.Errorf("fs_ok.wasm on WithDirMount:\n%s", out)
	}
}

// TestGuestOpenFilesLimit runs a guest that opens files without closing
// them: it gets an error (not a trap) at exactly the limit, its directory
// opens are refused too, its pre-opened dir still works at the limit,
// closing one descriptor lets it open one more, and the module's close gives
// every descriptor back.
func TestGuestOpenFilesLimit(t *testing.T) {
	wasm := guestWasm(t, "openloop.wasm")
	const limit = 7
	fx := newFixture(t)
	c := newTestCounter(t, limit)
	fsys, err := New(fx.build, WithOpenFiles(c))
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	out := runGuest(t, wasm, Mount(nil, fsys, "/"), "1000")
	want := []string{
		"refused: I/O error", // EIO: wazero has no EMFILE
		// The pre-opened dir holds no descriptor until the guest reads
		// it ("preopen ok" below): the guest's files get the whole limit.
		fmt.Sprintf("opened %d", limit),
		"dir refused: I/O error",
		"preopen ok",
		"reopen ok",
		"refused again: I/O error",
	}
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("openloop.wasm:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if !fsys.OpenFilesHit() {
		t.Error("OpenFilesHit is false")
	}
	if c.Used() != 0 || fsys.OpenFiles() != 0 {
		t.Errorf("after the module closed: counter has %d out, FS holds %d", c.Used(), fsys.OpenFiles())
	}
}

// TestGuestOpenFilesExhaustedByOther: a guest whose shared open-files
// counter another user has exhausted still starts (wazero opens its
// pre-opened dir at start and would trap it if that failed) and gets EIO on
// its own opens.
func TestGuestOpenFilesExhaustedByOther(t *testing.T) {
	wasm := guestWasm(t, "openloop.wasm")
	c := newTestCounter(t, 2)
	other, err := New(newFixture(t).build, WithOpenFiles(c))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for range 2 {
		if f, errno := other.OpenFile("inside.txt", rdonly, 0); errno != 0 {
			t.Fatal(errno)
		} else {
			defer f.Close()
		}
	}
	fx := newFixture(t)
	fsys, err := New(fx.build, WithOpenFiles(c))
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	out := runGuest(t, wasm, Mount(nil, fsys, "/"), "1000")
	if want := "refused: I/O error\nopened 0\ndir refused: I/O error\npreopen ok\n"; out != want {
		t.Errorf("openloop.wasm:\n%s\nwant:\n%s", out, want)
	}
	if c.Used() != 2 || fsys.OpenFiles() != 0 {
		t.Errorf("counter has %d out (want the other's 2), FS holds %d", c.Used(), fsys.OpenFiles())
	}
}

// TestGuestOpenFilesUnlimited shows that openloop.wasm does hoard: without a
// limit it opens all it asks for.
func TestGuestOpenFilesUnlimited(t *testing.T) {
	wasm := guestWasm(t, "openloop.wasm")
	fx := newFixture(t)
	fsys := fx.newFS(t)
	out := runGuest(t, wasm, Mount(nil, fsys, "/"), "300")
	if out != "opened 300\n" {
		t.Errorf("openloop.wasm without a limit:\n%s", out)
	}
	if fsys.OpenFilesHit() || fsys.OpenFiles() != 0 {
		t.Errorf("hit %v, FS holds %d after the module closed", fsys.OpenFilesHit(), fsys.OpenFiles())
	}
}
