//go:build unix

package sandboxfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

const secretContent = "TOP-SECRET-CANARY 5f1d\n"

// fixture is a temp dir holding the build dir that gets mounted and, next to
// it, an "outside" dir with a canary. Every test checks at the end that
// nothing outside the build dir changed.
type fixture struct {
	base    string // parent of build and outside
	build   string // the confined dir
	outside string
	before  map[string]entry

	outsideMayChange bool // skips the check at cleanup
}

// newFixture creates
//
//	outside/secret                 the canary
//	outside/outlink -> secret
//	outside/emptydir/
//	build/inside.txt
//	build/sub/file.txt
//	build/sub/emptydir/
//	build/link_in -> sub           a link that stays inside
//	build/link_out -> ../outside   pre-existing links that leave
//	build/link_sec -> ../outside/secret
//	build/chain1 -> chain2 -> link_out
//	build/abs_link -> <abs outside>/secret
//
// and registers a cleanup that fails the test if anything outside build
// changed.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	base := t.TempDir()
	fx := &fixture{base: base, build: filepath.Join(base, "build"), outside: filepath.Join(base, "outside")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(fx.outside, "emptydir"), 0o755))
	must(os.WriteFile(filepath.Join(fx.outside, "secret"), []byte(secretContent), 0o644))
	must(os.Symlink("secret", filepath.Join(fx.outside, "outlink")))
	must(os.MkdirAll(filepath.Join(fx.build, "sub", "emptydir"), 0o755))
	must(os.WriteFile(filepath.Join(fx.build, "inside.txt"), []byte("inside\n"), 0o644))
	must(os.WriteFile(filepath.Join(fx.build, "sub", "file.txt"), []byte("in sub\n"), 0o644))
	for link, target := range map[string]string{
		"link_in":  "sub",
		"link_out": "../outside",
		"link_sec": "../outside/secret",
		"chain1":   "chain2",
		"chain2":   "link_out",
		"abs_link": filepath.Join(fx.outside, "secret"),
	} {
		must(os.Symlink(target, filepath.Join(fx.build, link)))
	}
	fx.before = snapshot(t, base, "build")
	t.Cleanup(func() { fx.checkOutside(t) })
	return fx
}

func (fx *fixture) newFS(t testing.TB) *FS {
	t.Helper()
	fsys, err := New(fx.build)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys
}

// checkOutside fails t if anything under base other than build changed.
func (fx *fixture) checkOutside(t testing.TB) {
	t.Helper()
	if fx.outsideMayChange {
		return
	}
	b, err := os.ReadFile(filepath.Join(fx.outside, "secret"))
	if err != nil || string(b) != secretContent {
		t.Errorf("canary changed: %q, %v", b, err)
	}
	after := snapshot(t, fx.base, "build")
	for _, d := range diffSnapshots(fx.before, after) {
		t.Errorf("outside the build dir: %s", d)
	}
}

// entry is what a snapshot records of one file: anything a guest could
// change (atime aside, which reads update).
type entry struct {
	mode         fs.FileMode
	size         int64
	mtime, ctime int64
	nlink        uint64
	ino          uint64
	target, hash string
}

// snapshot records the tree under root, skipping the top-level entry skip.
func snapshot(t testing.TB, root, skip string) map[string]entry {
	t.Helper()
	m := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == skip {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{
			mode: fi.Mode(), size: fi.Size(),
			mtime: fi.ModTime().UnixNano(), ctime: ctime(st),
			nlink: uint64(st.Nlink), ino: st.Ino,
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.target, _ = os.Readlink(p)
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			e.hash = hex.EncodeToString(h[:])
		}
		m[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffSnapshots(before, after map[string]entry) []string {
	var out []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			out = append(out, "removed "+p)
		case a != b:
			out = append(out, fmt.Sprintf("changed %s: %+v -> %+v", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			out = append(out, "added "+p)
		}
	}
	slices.Sort(out)
	return out
}

// readHost reads a host file, failing t on error.
func readHost(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hasLine(out, line string) bool {
	return slices.Contains(strings.Split(out, "\n"), line)
}
