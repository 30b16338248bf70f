//go:build unix

package sandboxfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

const (
	rdonly = experimentalsys.O_RDONLY
	wronly = experimentalsys.O_WRONLY
	rdwr   = experimentalsys.O_RDWR
	creat  = experimentalsys.O_CREAT
)

// open opens p and, if that worked, reads it and closes it. An opened file
// that holds the canary fails the test whatever the caller expected.
func open(t *testing.T, fsys experimentalsys.FS, p string, flag experimentalsys.Oflag) experimentalsys.Errno {
	t.Helper()
	f, errno := fsys.OpenFile(p, flag, 0o644)
	if errno != 0 {
		return errno
	}
	defer f.Close()
	if isDir, _ := f.IsDir(); !isDir && flag&(wronly|rdwr) == 0 {
		buf := make([]byte, 64)
		n, _ := f.Read(buf)
		if strings.Contains(string(buf[:n]), "TOP-SECRET") {
			t.Errorf("OpenFile(%q) read the canary", p)
		}
	}
	return 0
}

// TestEscapes calls the FS directly with paths that leave the dir by "..",
// absolute paths, and pre-existing links (to a dir, to a file, in a chain,
// absolute). Each must fail with EPERM, and nothing outside may change.
func TestEscapes(t *testing.T) {
	fx := newFixture(t)
	fsys := fx.newFS(t)
	absSecret := filepath.Join(fx.outside, "secret")
	ts := time.Unix(1, 0).UnixNano()

	tests := []struct {
		name string
		op   func() experimentalsys.Errno
	}{
		{"open ..", func() experimentalsys.Errno { return open(t, fsys, "../outside/secret", rdonly) }},
		{"open a/../../x", func() experimentalsys.Errno { return open(t, fsys, "a/../../outside/secret", rdonly) }},
		{"open inside/../../x", func() experimentalsys.Errno {
			return open(t, fsys, "sub/emptydir/../../../outside/secret", rdonly)
		}},
		{"open sub/../../x", func() experimentalsys.Errno { return open(t, fsys, "sub/../../outside/secret", rdonly) }},
		{"open /etc/passwd", func() experimentalsys.Errno { return open(t, fsys, "/etc/passwd", rdonly) }},
		{"open host absolute", func() experimentalsys.Errno { return open(t, fsys, absSecret, rdonly) }},
		{"open //x", func() experimentalsys.Errno { return open(t, fsys, "//outside/secret", rdonly) }},
		{"open /../x", func() experimentalsys.Errno { return open(t, fsys, "/../outside/secret", rdonly) }},
		{"unlink /../x", func() experimentalsys.Errno { return fsys.Unlink("/../outside/secret") }},
		{"rename /../x", func() experimentalsys.Errno { return fsys.Rename("/../outside/secret", "/stolen") }},
		{"open ..", func() experimentalsys.Errno { return open(t, fsys, "..", rdonly) }},
		{"open dir link/x", func() experimentalsys.Errno { return open(t, fsys, "link_out/secret", rdonly) }},
		{"open dir link", func() experimentalsys.Errno {
			return open(t, fsys, "link_out", rdonly|experimentalsys.O_DIRECTORY)
		}},
		{"open dir link/", func() experimentalsys.Errno { return open(t, fsys, "link_out/", rdonly) }},
		{"open file link", func() experimentalsys.Errno { return open(t, fsys, "link_sec", rdonly) }},
		{"open chain", func() experimentalsys.Errno { return open(t, fsys, "chain1/secret", rdonly) }},
		{"open absolute link", func() experimentalsys.Errno { return open(t, fsys, "abs_link", rdonly) }},
		{"open inside link then ..", func() experimentalsys.Errno {
			return open(t, fsys, "link_in/../../outside/secret", rdonly)
		}},
		{"create through dir link", func() experimentalsys.Errno {
			return open(t, fsys, "link_out/planted", wronly|creat)
		}},
		{"create excl through dir link", func() experimentalsys.Errno {
			return open(t, fsys, "link_out/planted", wronly|creat|experimentalsys.O_EXCL)
		}},
		{"truncate through file link", func() experimentalsys.Errno {
			return open(t, fsys, "link_sec", wronly|experimentalsys.O_TRUNC)
		}},
		{"append through file link", func() experimentalsys.Errno {
			return open(t, fsys, "link_sec", wronly|experimentalsys.O_APPEND)
		}},
		{"stat dir link", func() experimentalsys.Errno { _, e := fsys.Stat("link_out"); return e }},
		{"stat dir link/x", func() experimentalsys.Errno { _, e := fsys.Stat("link_out/secret"); return e }},
		{"stat file link", func() experimentalsys.Errno { _, e := fsys.Stat("link_sec"); return e }},
		{"stat chain", func() experimentalsys.Errno { _, e := fsys.Stat("chain1"); return e }},
		{"stat ..", func() experimentalsys.Errno { _, e := fsys.Stat(".."); return e }},
		{"stat absolute", func() experimentalsys.Errno { _, e := fsys.Stat(absSecret); return e }},
		{"lstat dir link/x", func() experimentalsys.Errno { _, e := fsys.Lstat("link_out/secret"); return e }},
		{"lstat ../x", func() experimentalsys.Errno { _, e := fsys.Lstat("../outside/outlink"); return e }},
		{"readlink dir link/x", func() experimentalsys.Errno { _, e := fsys.Readlink("link_out/outlink"); return e }},
		{"readlink ../x", func() experimentalsys.Errno { _, e := fsys.Readlink("../outside/outlink"); return e }},
		{"mkdir dir link/x", func() experimentalsys.Errno { return fsys.Mkdir("link_out/newdir", 0o755) }},
		{"mkdir ../x", func() experimentalsys.Errno { return fsys.Mkdir("../newdir", 0o755) }},
		{"mkdir absolute", func() experimentalsys.Errno { return fsys.Mkdir(filepath.Join(fx.base, "newdir"), 0o755) }},
		{"chmod file link", func() experimentalsys.Errno { return fsys.Chmod("link_sec", 0o777) }},
		{"chmod dir link/x", func() experimentalsys.Errno { return fsys.Chmod("link_out/secret", 0o777) }},
		{"chmod dir link", func() experimentalsys.Errno { return fsys.Chmod("link_out", 0o777) }},
		{"chmod ..", func() experimentalsys.Errno { return fsys.Chmod("..", 0o777) }},
		{"utimens file link", func() experimentalsys.Errno { return fsys.Utimens("link_sec", ts, ts) }},
		{"utimens dir link/x", func() experimentalsys.Errno { return fsys.Utimens("link_out/secret", ts, ts) }},
		{"utimens ..", func() experimentalsys.Errno { return fsys.Utimens("..", ts, ts) }},
		{"rename out of dir link", func() experimentalsys.Errno { return fsys.Rename("link_out/secret", "stolen") }},
		{"rename into dir link", func() experimentalsys.Errno { return fsys.Rename("inside.txt", "link_out/planted") }},
		{"rename into ..", func() experimentalsys.Errno { return fsys.Rename("inside.txt", "../planted") }},
		{"rename from ..", func() experimentalsys.Errno { return fsys.Rename("../outside/secret", "stolen") }},
		{"rename via chain", func() experimentalsys.Errno { return fsys.Rename("chain1/secret", "stolen") }},
		{"rename dir link/ dir", func() experimentalsys.Errno { return fsys.Rename("link_out/emptydir", "sub/x") }},
		{"rmdir dir link/x", func() experimentalsys.Errno { return fsys.Rmdir("link_out/emptydir") }},
		{"rmdir ../x", func() experimentalsys.Errno { return fsys.Rmdir("../outside/emptydir") }},
		{"rmdir ..", func() experimentalsys.Errno { return fsys.Rmdir("..") }},
		{"rmdir sub/../..", func() experimentalsys.Errno { return fsys.Rmdir("sub/../..") }},
		{"unlink sub/../..", func() experimentalsys.Errno { return fsys.Unlink("sub/../..") }},
		{"rename sub/../.. away", func() experimentalsys.Errno { return fsys.Rename("sub/../..", "x") }},
		{"unlink dir link/x", func() experimentalsys.Errno { return fsys.Unlink("link_out/secret") }},
		{"unlink ../x", func() experimentalsys.Errno { return fsys.Unlink("../outside/secret") }},
		{"unlink absolute", func() experimentalsys.Errno { return fsys.Unlink(absSecret) }},
		{"unlink chain/x", func() experimentalsys.Errno { return fsys.Unlink("chain1/outlink") }},
		{"link from dir link", func() experimentalsys.Errno { return fsys.Link("link_out/secret", "stolen") }},
		{"link into dir link", func() experimentalsys.Errno { return fsys.Link("inside.txt", "link_out/planted") }},
		{"link from ..", func() experimentalsys.Errno { return fsys.Link("../outside/secret", "stolen") }},
		{"symlink into dir link", func() experimentalsys.Errno { return fsys.Symlink("x", "link_out/newlink") }},
		{"symlink into ..", func() experimentalsys.Errno { return fsys.Symlink("x", "../newlink") }},
		{"symlink absolute target", func() experimentalsys.Errno { return fsys.Symlink(absSecret, "abs2") }},
	}
	// Refused for another reason before the escape shows: os.Root walks "a"
	// first; a leading slash means the mounted dir, which has no such path.
	otherErrno := map[string]experimentalsys.Errno{
		"open a/../../x":     experimentalsys.ENOENT,
		"open /etc/passwd":   experimentalsys.ENOENT,
		"open host absolute": experimentalsys.ENOENT,
		"open //x":           experimentalsys.ENOENT,
		"stat absolute":      experimentalsys.ENOENT,
		"mkdir absolute":     experimentalsys.ENOENT,
		"unlink absolute":    experimentalsys.ENOENT,
	}
	for _, tc := range tests {
		want := experimentalsys.EPERM
		if e, ok := otherErrno[tc.name]; ok {
			want = e
		}
		if got := tc.op(); got != want {
			t.Errorf("%s: errno %v, want %v", tc.name, got, want)
		}
	}
	// The refused absolute symlink was not created.
	if _, err := os.Lstat(filepath.Join(fx.build, "abs2")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("abs2 exists: %v", err)
	}
}

// TestGuestMadeLinks: links the guest creates may point anywhere (a link is a
// string), but following one out of the dir fails, also after a rename turns
// a link that pointed inside into one that points outside, and through a
// hard link to a dir link.
func TestGuestMadeLinks(t *testing.T) {
	fx := newFixture(t)
	fsys := fx.newFS(t)

	mustOK := func(what string, errno experimentalsys.Errno) {
		t.Helper()
		if errno != 0 {
			t.Fatalf("%s: %v", what, errno)
		}
	}
	mustPerm := func(what string, errno experimentalsys.Errno) {
		t.Helper()
		if errno != experimentalsys.EPERM {
			t.Errorf("%s: errno %v, want EPERM", what, errno)
		}
	}

	mustOK("symlink mine", fsys.Symlink("../outside", "mine"))
	if dst, errno := fsys.Readlink("mine"); errno != 0 || dst != "../outside" {
		t.Errorf("Readlink(mine) = %q, %v", dst, errno)
	}
	if st, errno := fsys.Lstat("mine"); errno != 0 || st.Mode&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(mine) = %v, %v", st.Mode, errno)
	}
	mustPerm("open mine/secret", open(t, fsys, "mine/secret", rdonly))
	mustPerm("open mine", open(t, fsys, "mine", rdonly))
	_, errno := fsys.Stat("mine")
	mustPerm("stat mine", errno)
	mustPerm("create mine/x", open(t, fsys, "mine/x", wronly|creat))
	mustPerm("mkdir mine/x", fsys.Mkdir("mine/x", 0o755))
	mustPerm("unlink mine/secret", fsys.Unlink("mine/secret"))

	mustOK("symlink dangling", fsys.Symlink("../outside/created", "dang"))
	mustPerm("create through dangling", open(t, fsys, "dang", wronly|creat))
	// O_EXCL never follows a link: the link exists.
	if errno := open(t, fsys, "dang", wronly|creat|experimentalsys.O_EXCL); errno != experimentalsys.EEXIST {
		t.Errorf("create excl on dangling link: %v, want EEXIST", errno)
	}

	// Points inside ("d1/up" -> ".." is the root) until renamed to the top.
	mustOK("mkdir d1", fsys.Mkdir("d1", 0o755))
	mustOK("symlink d1/up", fsys.Symlink("..", "d1/up"))
	if errno := open(t, fsys, "d1/up/inside.txt", rdonly); errno != 0 {
		t.Errorf("open d1/up/inside.txt (inside): %v", errno)
	}
	mustOK("rename d1/up up", fsys.Rename("d1/up", "up"))
	mustPerm("open up/outside/secret", open(t, fsys, "up/outside/secret", rdonly))

	// A hard link to a dir link is another dir link.
	mustOK("link hl", fsys.Link("link_out", "hl"))
	mustPerm("open hl/secret", open(t, fsys, "hl/secret", rdonly))
	mustOK("link hl_sec", fsys.Link("link_sec", "hl_sec"))
	mustPerm("open hl_sec", open(t, fsys, "hl_sec", rdonly))

	// Moving a link that leaves does not make it followable.
	mustOK("rename link_out lo", fsys.Rename("link_out", "lo"))
	mustPerm("open lo/secret", open(t, fsys, "lo/secret", rdonly))
	mustOK("unlink lo", fsys.Unlink("lo")) // removes the link, not the target
	// One level down, the same link names build/outside, which is not there.
	mustOK("symlink sub/lo", fsys.Symlink("../outside", "sub/lo"))
	if errno := open(t, fsys, "sub/lo/secret", rdonly); errno != experimentalsys.ENOENT {
		t.Errorf("open sub/lo/secret: %v, want ENOENT", errno)
	}
}

// TestNoFollow: O_NOFOLLOW is honoured although os.Root.OpenFile ignores it.
func TestNoFollow(t *testing.T) {
	fx := newFixture(t)
	fsys := fx.newFS(t)
	nofollow := experimentalsys.O_NOFOLLOW
	if errno := open(t, fsys, "link_in", rdonly|nofollow); errno != experimentalsys.ELOOP {
		t.Errorf("open link_in nofollow: %v, want ELOOP", errno)
	}
	if errno := open(t, fsys, "link_sec", rdonly|nofollow); errno != experimentalsys.ELOOP {
		t.Errorf("open link_sec nofollow: %v, want ELOOP", errno)
	}
	if errno := open(t, fsys, "link_in", wronly|creat|experimentalsys.O_EXCL|nofollow); errno != experimentalsys.EEXIST {
		t.Errorf("create excl on link nofollow: %v, want EEXIST", errno)
	}
	// Links before the last component are followed (inside).
	if errno := open(t, fsys, "link_in/file.txt", rdonly|nofollow); errno != 0 {
		t.Errorf("open link_in/file.txt nofollow: %v", errno)
	}
	if errno := open(t, fsys, "inside.txt", rdonly|nofollow); errno != 0 {
		t.Errorf("open inside.txt nofollow: %v", errno)
	}
}

// TestEscapeErrorIsEPERM pins the text of os.Root's escape error, which
// toErrno matches: if Go changes it, escapes would surface as EIO.
func TestEscapeErrorIsEPERM(t *testing.T) {
	r, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Stat("../x")
	if err == nil || !strings.HasSuffix(err.Error(), escapeMsg) {
		t.Fatalf("os.Root escape error = %v, want ...%q", err, escapeMsg)
	}
	if got := toErrno(err); got != experimentalsys.EPERM {
		t.Errorf("toErrno(%v) = %v, want EPERM", err, got)
	}
	if got := toErrno(&os.LinkError{Op: "renameat", Old: "a", New: "b", Err: errors.New(escapeMsg)}); got != experimentalsys.EPERM {
		t.Errorf("toErrno(LinkError) = %v, want EPERM", got)
	}
	for err, want := range map[error]experimentalsys.Errno{
		nil:                    0,
		io.EOF:                 0,
		fs.ErrNotExist:         experimentalsys.ENOENT,
		os.ErrClosed:           experimentalsys.EBADF,
		syscall.ELOOP:          experimentalsys.ELOOP,
		syscall.ENOTEMPTY:      experimentalsys.ENOTEMPTY,
		errors.New("whatever"): experimentalsys.EIO,
	} {
		if got := toErrno(err); got != want {
			t.Errorf("toErrno(%v) = %v, want %v", err, got, want)
		}
	}
}

// TestNormalOperations: ordinary work inside the dir behaves like a POSIX
// file system, including the errors wazero's WASI layer expects.
func TestNormalOperations(t *testing.T) {
	fx := newFixture(t)
	fsys := fx.newFS(t)
	E := func(what string, got, want experimentalsys.Errno) {
		t.Helper()
		if got != want {
			t.Errorf("%s: errno %v, want %v", what, got, want)
		}
	}
	build := func(p string) string { return filepath.Join(fx.build, p) }

	// Root aliases; a leading slash is the mounted dir (wazero passes "/x"
	// for "x" relative to a descriptor of the root).
	for _, p := range []string{".", "", "/", "//", "/."} {
		st, errno := fsys.Stat(p)
		E("stat "+p, errno, 0)
		if !st.Mode.IsDir() {
			t.Errorf("stat %q: mode %v", p, st.Mode)
		}
	}
	E("open /x", open(t, fsys, "/sub/file.txt", rdonly), 0)
	E("unlink //", fsys.Unlink("//"), experimentalsys.EISDIR)
	E("rename /x /y", fsys.Rename("/inside.txt", "//inside2.txt"), 0)
	E("rename /y x", fsys.Rename("/inside2.txt", "inside.txt"), 0)

	// Create, write, read, seek, pread, pwrite, truncate.
	f, errno := fsys.OpenFile("new.txt", rdwr|creat|experimentalsys.O_EXCL, 0o640|fs.ModeSetuid)
	E("create", errno, 0)
	n, errno := f.Write([]byte("hello world"))
	E("write", errno, 0)
	if n != 11 {
		t.Errorf("wrote %d", n)
	}
	off, errno := f.Seek(0, io.SeekStart)
	E("seek", errno, 0)
	if off != 0 {
		t.Errorf("seek: %d", off)
	}
	buf := make([]byte, 5)
	n, errno = f.Read(buf)
	E("read", errno, 0)
	if string(buf[:n]) != "hello" {
		t.Errorf("read %q", buf[:n])
	}
	n, errno = f.Pread(buf, 6)
	E("pread", errno, 0)
	if string(buf[:n]) != "world" {
		t.Errorf("pread %q", buf[:n])
	}
	_, errno = f.Pwrite([]byte("W"), 6)
	E("pwrite", errno, 0)
	_, errno = f.Pwrite([]byte("x"), -1)
	E("pwrite negative", errno, experimentalsys.EINVAL)
	_, errno = f.Seek(0, 7)
	E("seek bad whence", errno, experimentalsys.EINVAL)
	E("truncate", f.Truncate(8), 0)
	E("truncate negative", f.Truncate(-1), experimentalsys.EINVAL)
	st, errno := f.Stat()
	E("fstat", errno, 0)
	if st.Size != 8 || st.Mode.Perm() != 0o640 || st.Mode&fs.ModeSetuid != 0 || st.Ino == 0 || st.Nlink != 1 {
		t.Errorf("fstat = %+v", st)
	}
	if ino, _ := f.Ino(); ino != st.Ino {
		t.Errorf("Ino %d, stat %d", ino, st.Ino)
	}
	if dev, _ := f.Dev(); dev != st.Dev {
		t.Errorf("Dev %d, stat %d", dev, st.Dev)
	}
	if isDir, errno := f.IsDir(); isDir || errno != 0 {
		t.Errorf("IsDir = %v, %v", isDir, errno)
	}
	E("sync", f.Sync(), 0)
	E("datasync", f.Datasync(), 0)
	E("futimens", f.Utimens(time.Unix(100, 5).UnixNano(), time.Unix(200, 7).UnixNano()), 0)
	E("futimens omit", f.Utimens(experimentalsys.UTIME_OMIT, time.Unix(300, 0).UnixNano()), 0)
	st, _ = f.Stat()
	if st.Atim != time.Unix(100, 5).UnixNano() || st.Mtim != time.Unix(300, 0).UnixNano() {
		t.Errorf("times after futimens: atim %d mtim %d", st.Atim, st.Mtim)
	}
	E("close", f.Close(), 0)
	E("close again", f.Close(), 0)
	_, errno = f.Read(buf)
	E("read closed", errno, experimentalsys.EBADF)
	_, errno = f.Write(buf)
	E("write closed", errno, experimentalsys.EBADF)
	_, errno = f.Pwrite(buf, 0)
	E("pwrite closed", errno, experimentalsys.EBADF)
	_, errno = f.Stat()
	E("stat closed", errno, experimentalsys.EBADF)
	E("utimens closed", f.Utimens(1, 1), experimentalsys.EBADF)
	if got := readHost(t, build("new.txt")); got != "hello Wo" {
		t.Errorf("new.txt = %q", got)
	}

	// Append: Write and Pwrite (os.File.WriteAt would refuse) both append.
	f, errno = fsys.OpenFile("new.txt", wronly|experimentalsys.O_APPEND, 0)
	E("open append", errno, 0)
	if !f.IsAppend() {
		t.Error("IsAppend false")
	}
	_, errno = f.Write([]byte("!"))
	E("append write", errno, 0)
	_, errno = f.Pwrite([]byte("?"), 0)
	E("append pwrite", errno, 0)
	E("SetAppend(false)", f.SetAppend(false), 0)
	if f.IsAppend() {
		t.Error("IsAppend true after SetAppend(false)")
	}
	_, _ = f.Seek(0, io.SeekStart)
	_, errno = f.Write([]byte("H"))
	E("write after SetAppend(false)", errno, 0)
	E("SetAppend(true)", f.SetAppend(true), 0)
	_, errno = f.Write([]byte("."))
	E("write after SetAppend(true)", errno, 0)
	f.Close()
	if got := readHost(t, build("new.txt")); got != "Hello Wo!?." {
		t.Errorf("new.txt after appends = %q", got)
	}

	// O_TRUNC, O_EXCL, O_DIRECTORY, directories opened for writing.
	f, errno = fsys.OpenFile("new.txt", wronly|experimentalsys.O_TRUNC, 0)
	E("open trunc", errno, 0)
	f.Close()
	if got := readHost(t, build("new.txt")); got != "" {
		t.Errorf("after O_TRUNC: %q", got)
	}
	E("create excl existing", open(t, fsys, "new.txt", wronly|creat|experimentalsys.O_EXCL), experimentalsys.EEXIST)
	E("O_DIRECTORY on file", open(t, fsys, "new.txt", rdonly|experimentalsys.O_DIRECTORY), experimentalsys.ENOTDIR)
	E("dir for writing", open(t, fsys, "sub", wronly), experimentalsys.EISDIR)
	E("missing", open(t, fsys, "nope", rdonly), experimentalsys.ENOENT)
	E("file/ ", open(t, fsys, "new.txt/", rdonly), experimentalsys.ENOTDIR)
	E("through file", open(t, fsys, "new.txt/x", rdonly), experimentalsys.ENOTDIR)
	E("open via inside link", open(t, fsys, "link_in/file.txt", rdonly), 0)
	E("open chain-free dot", open(t, fsys, "./sub/./file.txt", rdonly), 0)
	E("open sub/..", open(t, fsys, "sub/../inside.txt", rdonly), 0)

	// Directories: mkdir, rmdir, errors.
	E("mkdir", fsys.Mkdir("d", 0o750|fs.ModeSticky), 0)
	E("mkdir exists", fsys.Mkdir("d", 0o755), experimentalsys.EEXIST)
	E("mkdir on link", fsys.Mkdir("link_in", 0o755), experimentalsys.EEXIST)
	E("mkdir missing parent", fsys.Mkdir("nope/d", 0o755), experimentalsys.ENOENT)
	E("mkdir under file", fsys.Mkdir("new.txt/d", 0o755), experimentalsys.ENOENT)
	E("mkdir via inside link", fsys.Mkdir("link_in/d2", 0o755), 0)
	if fi, err := os.Stat(build("sub/d2")); err != nil || !fi.IsDir() {
		t.Errorf("sub/d2: %v", err)
	}
	E("mkdir nested", fsys.Mkdir("d/e", 0o755), 0)
	E("rmdir nonempty", fsys.Rmdir("d"), experimentalsys.ENOTEMPTY)
	E("rmdir file", fsys.Rmdir("new.txt"), experimentalsys.ENOTDIR)
	E("rmdir link to dir", fsys.Rmdir("link_in"), experimentalsys.ENOTDIR)
	E("rmdir missing", fsys.Rmdir("nope"), experimentalsys.ENOENT)
	E("rmdir root", fsys.Rmdir("."), experimentalsys.EINVAL)
	E("rmdir trailing slash", fsys.Rmdir("d/e/"), 0)
	E("rmdir via inside link", fsys.Rmdir("link_in/d2"), 0)
	E("unlink dir", fsys.Unlink("d"), experimentalsys.EISDIR)
	E("unlink file/", fsys.Unlink("new.txt/"), experimentalsys.ENOTDIR)
	E("unlink dir/", fsys.Unlink("d/"), experimentalsys.EISDIR)
	E("unlink missing", fsys.Unlink("nope"), experimentalsys.ENOENT)
	E("unlink root", fsys.Unlink("."), experimentalsys.EISDIR)

	// Chmod, Utimens by path (following an inside link).
	E("chmod", fsys.Chmod("new.txt", 0o600|fs.ModeSetgid), 0)
	if fi, _ := os.Stat(build("new.txt")); fi.Mode() != 0o600 {
		t.Errorf("mode after chmod: %v", fi.Mode())
	}
	E("chmod missing", fsys.Chmod("nope", 0o600), experimentalsys.ENOENT)
	E("utimens via link", fsys.Utimens("link_in/file.txt", time.Unix(10, 0).UnixNano(), experimentalsys.UTIME_OMIT), 0)
	E("utimens omit both", fsys.Utimens("nope", experimentalsys.UTIME_OMIT, experimentalsys.UTIME_OMIT), 0)
	E("utimens missing", fsys.Utimens("nope", 1, 1), experimentalsys.ENOENT)
	st, _ = fsys.Stat("sub/file.txt")
	if st.Atim != time.Unix(10, 0).UnixNano() {
		t.Errorf("atim after Utimens = %d", st.Atim)
	}
	if lst, _ := fsys.Lstat("link_in"); lst.Mode&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(link_in) mode %v", lst.Mode)
	}

	// Rename.
	E("rename", fsys.Rename("new.txt", "sub/moved.txt"), 0)
	E("rename same", fsys.Rename("sub/moved.txt", "sub/moved.txt"), 0)
	E("rename missing", fsys.Rename("nope", "x"), experimentalsys.ENOENT)
	E("rename file onto dir", fsys.Rename("sub/moved.txt", "d"), experimentalsys.EISDIR)
	E("rename dir onto file", fsys.Rename("d", "sub/moved.txt"), experimentalsys.ENOTDIR)
	E("mkdir d3", fsys.Mkdir("d3", 0o755), 0)
	E("rename dir onto empty dir", fsys.Rename("d", "d3"), 0)
	E("rename dir onto nonempty dir", fsys.Rename("d3", "sub"), experimentalsys.ENOTEMPTY)
	E("rename file/", fsys.Rename("sub/moved.txt/", "x"), experimentalsys.ENOTDIR)
	E("rename dir/", fsys.Rename("d3/", "d4/"), 0)
	E("rename root", fsys.Rename(".", "x"), experimentalsys.EINVAL)
	E("rename onto sub/..", fsys.Rename("d4", "sub/.."), experimentalsys.EINVAL)
	E("rmdir sub/.", fsys.Rmdir("sub/."), experimentalsys.EINVAL)
	E("unlink sub/..", fsys.Unlink("sub/.."), experimentalsys.EISDIR)
	E("rmdir nope/..", fsys.Rmdir("nope/.."), experimentalsys.ENOENT)
	// ".." after a link is resolved physically, as POSIX and os.Root do:
	// deep/.. is sub, not the root.
	E("symlink deep", fsys.Symlink("sub/emptydir", "deep"), 0)
	E("rename via deep/..", fsys.Rename("deep/../file.txt", "deep/../file2.txt"), 0)
	E("unlink via deep/..", fsys.Unlink("deep/../file2.txt"), 0)
	if _, err := os.Lstat(build("sub/file.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("sub/file.txt still there: %v", err)
	}
	if err := os.WriteFile(build("sub/file.txt"), []byte("in sub\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	E("rename via inside links", fsys.Rename("link_in/moved.txt", "link_in/emptydir/m.txt"), 0)
	if got := readHost(t, build("sub/emptydir/m.txt")); got != "" {
		t.Errorf("m.txt = %q", got)
	}

	// Link, Symlink, Readlink inside.
	E("link", fsys.Link("inside.txt", "sub/hard.txt"), 0)
	if st, _ := fsys.Stat("inside.txt"); st.Nlink != 2 {
		t.Errorf("nlink = %d", st.Nlink)
	}
	E("link exists", fsys.Link("inside.txt", "sub/hard.txt"), experimentalsys.EEXIST)
	E("link missing", fsys.Link("nope", "x"), experimentalsys.ENOENT)
	E("symlink", fsys.Symlink("../inside.txt", "sub/sym"), 0)
	E("symlink exists", fsys.Symlink("x", "sub/sym"), experimentalsys.EEXIST)
	if dst, errno := fsys.Readlink("sub/sym"); errno != 0 || dst != "../inside.txt" {
		t.Errorf("readlink = %q, %v", dst, errno)
	}
	_, errno = fsys.Readlink("inside.txt")
	E("readlink file", errno, experimentalsys.EINVAL)
	E("read via new symlink", open(t, fsys, "sub/sym", rdonly), 0)
	E("unlink symlink", fsys.Unlink("sub/sym"), 0)
	if _, err := os.Stat(build("inside.txt")); err != nil {
		t.Errorf("unlinking the link removed the target: %v", err)
	}

	// Readdir: entries with inode and type, in batches, rewind sees new
	// entries.
	d, errno := fsys.OpenFile("sub", rdonly|experimentalsys.O_DIRECTORY, 0)
	E("open dir", errno, 0)
	if isDir, _ := d.IsDir(); !isDir {
		t.Error("IsDir false for a directory")
	}
	var names []string
	for {
		ents, errno := d.Readdir(2)
		E("readdir", errno, 0)
		for _, e := range ents {
			names = append(names, e.Name)
			if e.Ino == 0 {
				t.Errorf("dirent %s: no inode", e.Name)
			}
			fi, err := os.Lstat(build("sub/" + e.Name))
			if err != nil || fi.Mode().Type() != e.Type {
				t.Errorf("dirent %s: type %v, host %v (%v)", e.Name, e.Type, fi.Mode().Type(), err)
			}
		}
		if len(ents) < 2 {
			break
		}
	}
	slices.Sort(names)
	if want := []string{"emptydir", "file.txt", "hard.txt"}; !slices.Equal(names, want) {
		t.Errorf("readdir = %v, want %v", names, want)
	}
	ents, errno := d.Readdir(10)
	if len(ents) != 0 || errno != 0 {
		t.Errorf("readdir at end = %v, %v", ents, errno)
	}
	if err := os.WriteFile(build("sub/later.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errno = d.Seek(0, io.SeekStart)
	E("rewind dir", errno, 0)
	ents, errno = d.Readdir(-1)
	E("readdir all", errno, 0)
	if len(ents) != 4 || !slices.ContainsFunc(ents, func(e experimentalsys.Dirent) bool { return e.Name == "later.txt" }) {
		t.Errorf("readdir after rewind = %v", ents)
	}
	_, errno = d.Read(buf)
	E("read dir", errno, experimentalsys.EISDIR)
	_, errno = d.Write(buf)
	E("write dir", errno, experimentalsys.EISDIR)
	E("truncate dir", d.Truncate(0), experimentalsys.EISDIR)
	E("setappend dir", d.SetAppend(true), experimentalsys.EISDIR)
	E("close dir", d.Close(), 0)
	_, errno = d.Readdir(1)
	E("readdir closed", errno, experimentalsys.EBADF)

	f, _ = fsys.OpenFile("inside.txt", rdonly, 0)
	_, errno = f.Readdir(1)
	E("readdir file", errno, experimentalsys.EBADF)
	_, errno = f.Write([]byte("x"))
	E("write read-only", errno, experimentalsys.EBADF)
	f.Close()

	// The root itself as wazero opens it.
	d, errno = fsys.OpenFile(".", rdonly, 0)
	E("open root", errno, 0)
	ents, _ = d.Readdir(-1)
	d.Close()
	if !slices.ContainsFunc(ents, func(e experimentalsys.Dirent) bool { return e.Name == "link_out" && e.Type == fs.ModeSymlink }) {
		t.Errorf("root listing = %v", ents)
	}

	// After Close, path operations fail with EBADF.
	fsys.Close()
	_, errno = fsys.Stat(".")
	E("stat after Close", errno, experimentalsys.EBADF)
	E("unlink after Close", fsys.Unlink("inside.txt"), experimentalsys.EBADF)
}

// TestUnwritableParent: unlink and rename need only write and search
// permission on the parent (the parent is opened with O_PATH).
func TestUnwritableParent(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("permission bits do not bind root")
	}
	fx := newFixture(t)
	fsys := fx.newFS(t)
	sub := filepath.Join(fx.build, "sub")
	if err := os.Chmod(sub, 0o300); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(sub, 0o755)
	if errno := fsys.Rename("sub/file.txt", "sub/f2.txt"); errno != 0 {
		t.Errorf("rename in a write-only dir: %v", errno)
	}
	if errno := fsys.Unlink("sub/f2.txt"); errno != 0 {
		t.Errorf("unlink in a write-only dir: %v", errno)
	}
}

// TestSwapRace: while a host goroutine keeps exchanging a real directory and
// a link to the outside dir under one name, the FS is used through that name.
// Nothing may read the canary or change anything outside.
func TestSwapRace(t *testing.T) {
	fx := newFixture(t)
	fsys := fx.newFS(t)
	swap, alt := filepath.Join(fx.build, "swap"), filepath.Join(fx.build, "alt")
	if err := os.Mkdir(swap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside", alt); err != nil {
		t.Fatal(err)
	}
	secretIno := snapshot(t, fx.base, "build")["outside/secret"].ino

	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
			}
			// Atomically exchange: swap is the dir or the link, in turn.
			if err := exchange(swap, alt); err != nil {
				t.Error(err)
				return
			}
			// Keep a decoy in the real dir, wherever it is now.
			for _, p := range []string{swap, alt} {
				if fi, err := os.Lstat(p); err == nil && fi.IsDir() {
					_ = os.WriteFile(filepath.Join(p, "secret"), []byte("decoy"), 0o644)
				}
			}
		}
	}()

	deadline := time.Now().Add(300 * time.Millisecond)
	ops := 0
	for time.Now().Before(deadline) {
		ops++
		open(t, fsys, "swap/secret", rdonly) // fails the test on the canary
		if st, errno := fsys.Stat("swap/secret"); errno == 0 && st.Ino == secretIno {
			t.Error("Stat(swap/secret) reached the canary")
		}
		if st, errno := fsys.Lstat("swap/outlink"); errno == 0 {
			t.Errorf("Lstat(swap/outlink) reached outside: %+v", st)
		}
		if f, errno := fsys.OpenFile("swap/new", wronly|creat, 0o644); errno == 0 {
			f.Close()
		}
		fsys.Chmod("swap/secret", 0o600)
		fsys.Utimens("swap/secret", 1, 1)
		fsys.Mkdir("swap/emptydir2", 0o755)
		fsys.Rmdir("swap/emptydir")
		fsys.Link("swap/secret", "stolen")
		fsys.Unlink("stolen")
		fsys.Rename("swap/outlink", "stolen")
		fsys.Unlink("swap/secret")
	}
	close(done)
	<-stopped
	t.Logf("%d rounds", ops)
}

// exchange atomically swaps two names (renameat2 RENAME_EXCHANGE), or, where
// that is unsupported, renames them in three steps.
func exchange(a, b string) error {
	if err := renameExchange(a, b); err == nil || !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOSYS) {
		return err
	}
	tmp := a + ".tmp"
	if err := os.Rename(a, tmp); err != nil {
		return err
	}
	if err := os.Rename(b, a); err != nil {
		return err
	}
	return os.Rename(tmp, b)
}

// TestMount: the FS mounts through wazero's sysfs.FSConfig.
func TestMount(t *testing.T) {
	fx := newFixture(t)
	fsys := fx.newFS(t)
	if cfg := Mount(nil, fsys, "/"); cfg == nil {
		t.Fatal("Mount(nil) returned nil")
	}
	if cfg := Mount(wazero.NewFSConfig(), fsys, "/work"); cfg == nil {
		t.Fatal("Mount returned nil")
	}
	defer func() {
		if recover() == nil {
			t.Error("Mount with a foreign FSConfig did not panic")
		}
	}()
	Mount(foreignFSConfig{}, fsys, "/")
}

type foreignFSConfig struct{ wazero.FSConfig }
