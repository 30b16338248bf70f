//go:build unix

package sandboxfs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

func entriesFS(t *testing.T, n int64) (*FS, *fixture) {
	t.Helper()
	fx := newFixture(t)
	fsys, err := New(fx.build, WithMaxEntries(n))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys, fx
}

func wantEntries(t *testing.T, fsys *FS, want int64) {
	t.Helper()
	if got := fsys.Entries(); got != want {
		t.Errorf("Entries() = %d, want %d", got, want)
	}
}

func wantErrno(t *testing.T, what string, got, want experimentalsys.Errno) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func create(fsys *FS, p string) experimentalsys.Errno {
	f, errno := fsys.OpenFile(p, rwCreate, 0o644)
	if errno == 0 {
		f.Close()
	}
	return errno
}

func notExist(t *testing.T, fx *fixture, p string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(fx.build, p)); !os.IsNotExist(err) {
		t.Errorf("%s exists after a refused creation (%v)", p, err)
	}
}

// Each kind of creation counts, and the limit refuses each kind with
// errEntries before anything is made.
func TestMaxEntriesEachKind(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(fsys *FS, p string) experimentalsys.Errno
	}{
		{"file", create},
		{"dir", func(fsys *FS, p string) experimentalsys.Errno { return fsys.Mkdir(p, 0o755) }},
		{"symlink", func(fsys *FS, p string) experimentalsys.Errno { return fsys.Symlink("inside.txt", p) }},
		{"link", func(fsys *FS, p string) experimentalsys.Errno { return fsys.Link("inside.txt", p) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			fsys, fx := entriesFS(t, 3)
			for i := range 3 {
				wantErrno(t, fmt.Sprint("create ", i), c.make(fsys, fmt.Sprint("e", i)), 0)
			}
			wantEntries(t, fsys, 3)
			if fsys.EntriesHit() {
				t.Error("EntriesHit before the limit was passed")
			}
			wantErrno(t, "over the limit", c.make(fsys, "e3"), errEntries)
			notExist(t, fx, "e3")
			wantEntries(t, fsys, 3)
			if !fsys.EntriesHit() {
				t.Error("EntriesHit is false")
			}
			if fsys.QuotaHit() {
				t.Error("QuotaHit is true")
			}
		})
	}
}

// Opening, with O_CREAT, a name that exists is free, even at the limit;
// failed creations are not charged.
func TestMaxEntriesExistingAndFailures(t *testing.T) {
	fsys, _ := entriesFS(t, 1)
	wantErrno(t, "create existing", create(fsys, "inside.txt"), 0)
	wantErrno(t, "mkdir existing", fsys.Mkdir("sub", 0o755), experimentalsys.EEXIST)
	wantErrno(t, "symlink existing", fsys.Symlink("x", "inside.txt"), experimentalsys.EEXIST)
	wantErrno(t, "link existing", fsys.Link("inside.txt", "sub/file.txt"), experimentalsys.EEXIST)
	wantErrno(t, "create without parent", create(fsys, "nodir/x"), experimentalsys.ENOENT)
	wantErrno(t, "create outside", create(fsys, "../outside/x"), experimentalsys.EPERM)
	wantEntries(t, fsys, 0)
	wantErrno(t, "create", create(fsys, "new"), 0)
	wantEntries(t, fsys, 1)
	wantErrno(t, "reopen at the limit", create(fsys, "new"), 0)
	wantErrno(t, "create existing at the limit", create(fsys, "inside.txt"), 0)
	f, errno := fsys.OpenFile("new", rwCreate|experimentalsys.O_EXCL, 0o644)
	if errno != experimentalsys.EEXIST {
		t.Errorf("O_EXCL on an existing name: %v", errno)
		if f != nil {
			f.Close()
		}
	}
	wantEntries(t, fsys, 1)
	if fsys.EntriesHit() {
		t.Error("EntriesHit without a refused creation")
	}
}

// A dangling link inside the root is followed by O_CREAT, which creates its
// target: that is charged.
func TestMaxEntriesDanglingLink(t *testing.T) {
	fsys, fx := entriesFS(t, 1)
	wantErrno(t, "symlink", fsys.Symlink("target", "dang"), 0)
	wantErrno(t, "create through it", create(fsys, "dang"), errEntries)
	notExist(t, fx, "target")
	wantErrno(t, "unlink", fsys.Unlink("dang"), 0)
	wantErrno(t, "symlink again", fsys.Symlink("target", "dang"), 0)
	wantEntries(t, fsys, 1)
}

// Unlink, Rmdir and a Rename that replaces a name give entries back, never
// below zero.
func TestMaxEntriesRefunds(t *testing.T) {
	fsys, fx := entriesFS(t, 3)
	wantErrno(t, "create a", create(fsys, "a"), 0)
	wantErrno(t, "mkdir d", fsys.Mkdir("d", 0o755), 0)
	wantErrno(t, "symlink l", fsys.Symlink("a", "l"), 0)
	wantEntries(t, fsys, 3)
	wantErrno(t, "over", create(fsys, "b"), errEntries)

	wantErrno(t, "unlink l", fsys.Unlink("l"), 0)
	wantEntries(t, fsys, 2)
	wantErrno(t, "rmdir d", fsys.Rmdir("d"), 0)
	wantEntries(t, fsys, 1)
	wantErrno(t, "unlink missing", fsys.Unlink("l"), experimentalsys.ENOENT)
	wantErrno(t, "rmdir non-empty", fsys.Rmdir("sub"), experimentalsys.ENOTEMPTY)
	wantEntries(t, fsys, 1)

	// Renaming to a new name moves an entry; onto an existing one removes one.
	wantErrno(t, "rename to new", fsys.Rename("a", "b"), 0)
	wantEntries(t, fsys, 1)
	wantErrno(t, "create c", create(fsys, "c"), 0)
	wantEntries(t, fsys, 2)
	wantErrno(t, "rename over", fsys.Rename("c", "b"), 0)
	wantEntries(t, fsys, 1)
	wantErrno(t, "rename missing over", fsys.Rename("c", "b"), experimentalsys.ENOENT)
	wantEntries(t, fsys, 1)
	// Onto itself, or onto another link to the same file, replaces nothing.
	wantErrno(t, "link", fsys.Link("b", "b2"), 0)
	wantEntries(t, fsys, 2)
	wantErrno(t, "rename onto itself", fsys.Rename("b", "b"), 0)
	wantErrno(t, "rename onto its link", fsys.Rename("b", "b2"), 0)
	wantEntries(t, fsys, 2)
	// A directory onto an empty directory.
	wantErrno(t, "mkdir e", fsys.Mkdir("e", 0o755), 0)
	wantErrno(t, "rename dir over", fsys.Rename("sub/emptydir", "e"), 0)
	wantEntries(t, fsys, 2)

	// Removing what was there before (not charged) stops at zero.
	for _, p := range []string{"b", "b2", "inside.txt", "link_in", "chain1"} {
		wantErrno(t, "unlink "+p, fsys.Unlink(p), 0)
	}
	wantErrno(t, "rmdir e", fsys.Rmdir("e"), 0)
	wantErrno(t, "rmdir moved", fsys.Rmdir("sub/emptydir"), experimentalsys.ENOENT)
	wantEntries(t, fsys, 0)
	for i := range 3 {
		wantErrno(t, "create", create(fsys, fmt.Sprint("n", i)), 0)
	}
	wantErrno(t, "over again", create(fsys, "n3"), errEntries)
	notExist(t, fx, "n3")
}

// Without a limit (0 or negative) nothing is refused, but Entries counts.
func TestMaxEntriesUnlimited(t *testing.T) {
	for _, n := range []int64{0, -1} {
		fsys, _ := entriesFS(t, n)
		for i := range 200 {
			wantErrno(t, "create", create(fsys, fmt.Sprint("f", i)), 0)
		}
		wantErrno(t, "mkdir", fsys.Mkdir("d", 0o755), 0)
		wantEntries(t, fsys, 201)
		wantErrno(t, "unlink", fsys.Unlink("f0"), 0)
		wantEntries(t, fsys, 200)
		if fsys.EntriesHit() {
			t.Error("EntriesHit without a limit")
		}
	}
}
