//go:build unix

package sandboxfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func limitsFS(t *testing.T, quota, entries int64) (*FS, *fixture) {
	t.Helper()
	fx := newFixture(t)
	fsys, err := New(fx.build, WithQuota(quota), WithMaxEntries(entries))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys, fx
}

func mustWriteFile(t *testing.T, fsys *FS, p string, data []byte) {
	t.Helper()
	if err := fsys.WriteFile(p, data, 0o644); err != nil {
		t.Fatalf("WriteFile(%q): %v", p, err)
	}
}

func wantHost(t *testing.T, fx *fixture, p, want string) {
	t.Helper()
	if got := readHost(t, filepath.Join(fx.build, p)); got != want {
		t.Errorf("%s on the host = %q, want %q", p, got, want)
	}
}

func TestWriteFile(t *testing.T) {
	fsys, fx := limitsFS(t, 100, 10)
	mustWriteFile(t, fsys, "out/a/b/x.txt", []byte(strings.Repeat("x", 30)))
	wantHost(t, fx, "out/a/b/x.txt", strings.Repeat("x", 30))
	wantUsed(t, fsys, 30)
	wantEntries(t, fsys, 4) // out, out/a, out/a/b, x.txt
	// Rewrites charge growth only and refund a shrink.
	mustWriteFile(t, fsys, "out/a/b/x.txt", []byte("short"))
	wantHost(t, fx, "out/a/b/x.txt", "short")
	wantUsed(t, fsys, 5)
	mustWriteFile(t, fsys, "out/a/b/x.txt", []byte(strings.Repeat("y", 50)))
	wantHost(t, fx, "out/a/b/x.txt", strings.Repeat("y", 50))
	wantUsed(t, fsys, 50)
	wantEntries(t, fsys, 4)
	// A file that was there before: its growth is charged.
	mustWriteFile(t, fsys, "inside.txt", []byte(strings.Repeat("z", 20)))
	wantUsed(t, fsys, 63)
	mustWriteFile(t, fsys, "inside.txt", nil)
	wantHost(t, fx, "inside.txt", "")
	wantUsed(t, fsys, 43)
	// A leading slash is the dir; links inside are followed.
	mustWriteFile(t, fsys, "/top.txt", []byte("top"))
	wantHost(t, fx, "top.txt", "top")
	mustWriteFile(t, fsys, "link_in/via.txt", []byte("via"))
	wantHost(t, fx, "sub/via.txt", "via")
	if err := os.Symlink("sub/via.txt", filepath.Join(fx.build, "tovia")); err != nil {
		t.Fatal(err)
	}
	mustWriteFile(t, fsys, "tovia", []byte("VIA"))
	wantHost(t, fx, "sub/via.txt", "VIA")
	wantUsed(t, fsys, 49)
	wantEntries(t, fsys, 6)
	// perm applies to a new file only.
	if err := fsys.WriteFile("private", []byte("p"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile("sub/file.txt", []byte("f"), 0o600); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{"private": 0o600, "sub/file.txt": 0o644} {
		if fi, err := os.Stat(filepath.Join(fx.build, p)); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}
	if fsys.QuotaHit() || fsys.EntriesHit() {
		t.Error("a counter reported as hit")
	}
	// The guest sees it and removes it like any other file.
	wantErrno(t, "guest unlink", fsys.Unlink("out/a/b/x.txt"), 0)
	// Its 50 bytes are more than the FS holds (44, after the refunds for
	// shrinking files that were there before): it gives back what it holds.
	wantUsed(t, fsys, 0)
	wantEntries(t, fsys, 6)
}

func TestWriteFileInvalidNames(t *testing.T) {
	fsys, fx := limitsFS(t, 100, 10)
	for _, p := range []string{"", ".", "/", "//", "a/../b", "../x", "..", "a//b", "a/./b", "x/", "sub/"} {
		if err := fsys.WriteFile(p, []byte("x"), 0o644); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("WriteFile(%q): %v, want ErrInvalid", p, err)
		}
	}
	notExist(t, fx, "a")
	notExist(t, fx, "x")
	wantEntries(t, fsys, 0)
}

func TestWriteFileOverQuota(t *testing.T) {
	fsys, fx := limitsFS(t, 100, 100)
	mustWriteFile(t, fsys, "x", bytes.Repeat([]byte{1}, 60))
	// New file (in new dirs) over the quota: nothing made.
	err := fsys.WriteFile("new/deep/y", make([]byte, 41), 0o644)
	if !errors.Is(err, ErrQuota) || errors.Is(err, ErrEntries) {
		t.Errorf("new file over the quota: %v", err)
	}
	notExist(t, fx, "new")
	wantUsed(t, fsys, 60)
	wantEntries(t, fsys, 1)
	if !fsys.QuotaHit() || fsys.EntriesHit() {
		t.Errorf("QuotaHit %v, EntriesHit %v", fsys.QuotaHit(), fsys.EntriesHit())
	}
	// A rewrite whose growth does not fit leaves the file as it was.
	if err := fsys.WriteFile("x", make([]byte, 101), 0o644); !errors.Is(err, ErrQuota) {
		t.Errorf("rewrite over the quota: %v", err)
	}
	wantHost(t, fx, "x", string(bytes.Repeat([]byte{1}, 60)))
	wantUsed(t, fsys, 60)
	// Growth that fits exactly does.
	mustWriteFile(t, fsys, "x", make([]byte, 100))
	wantUsed(t, fsys, 100)
	if hostSize(t, fx, "x") != 100 {
		t.Error("x not rewritten")
	}
	// So does a new empty file at the quota.
	mustWriteFile(t, fsys, "empty", nil)
	wantUsed(t, fsys, 100)
}

func TestWriteFileOverEntries(t *testing.T) {
	fsys, fx := limitsFS(t, 1000, 3)
	err := fsys.WriteFile("a/b/c/d/f", []byte("deep"), 0o644)
	if !errors.Is(err, ErrEntries) || errors.Is(err, ErrQuota) {
		t.Errorf("4 dirs and a file with room for 3: %v", err)
	}
	notExist(t, fx, "a")
	wantEntries(t, fsys, 0)
	wantUsed(t, fsys, 0)
	if !fsys.EntriesHit() || fsys.QuotaHit() {
		t.Errorf("EntriesHit %v, QuotaHit %v", fsys.EntriesHit(), fsys.QuotaHit())
	}
	mustWriteFile(t, fsys, "a/b/f", []byte("fits"))
	wantEntries(t, fsys, 3)
	mustWriteFile(t, fsys, "a/b/f", []byte("a rewrite takes no entry"))
	if err := fsys.WriteFile("a/g", nil, 0o644); !errors.Is(err, ErrEntries) {
		t.Errorf("one more file: %v", err)
	}
	notExist(t, fx, "a/g")
	// Existing parents are not charged.
	wantErrno(t, "unlink", fsys.Unlink("a/b/f"), 0)
	mustWriteFile(t, fsys, "a/g", nil)
	wantEntries(t, fsys, 3)
}

// A shared entry counter exhausted by another user refuses the whole write:
// no partial dirs.
func TestWriteFileSharedCounter(t *testing.T) {
	fx := newFixture(t)
	c := newTestCounter(t, 5)
	bc := newTestCounter(t, 100)
	fsys, err := New(fx.build, WithEntries(c), WithBytes(bc))
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	if got := c.Take(3); got != 3 {
		t.Fatal(got)
	}
	if err := fsys.WriteFile("p/q/r", []byte("x"), 0o644); !errors.Is(err, ErrEntries) {
		t.Errorf("WriteFile: %v", err)
	}
	notExist(t, fx, "p")
	if c.Used() != 3 || bc.Used() != 0 {
		t.Errorf("counters have %d entries and %d bytes out", c.Used(), bc.Used())
	}
	mustWriteFile(t, fsys, "p/r", []byte("x"))
	if c.Used() != 5 || bc.Used() != 1 {
		t.Errorf("counters have %d entries and %d bytes out", c.Used(), bc.Used())
	}
}

// Links out of the dir are never followed, whether they are parents or the
// file, made before or by the guest, dangling or not.
func TestWriteFileEscapes(t *testing.T) {
	fsys, fx := limitsFS(t, 1000, 100)
	wantErrno(t, "guest symlink", fsys.Symlink("../outside", "mine"), 0)
	wantErrno(t, "guest dangling symlink", fsys.Symlink("../outside/new", "dang"), 0)
	for _, p := range []string{
		"link_out/planted", "link_out/newdir/planted", "link_sec", "chain1/planted",
		"abs_link", "mine/planted", "mine/secret", "dang", "link_in/../../outside/x",
	} {
		err := fsys.WriteFile(p, []byte("PLANTED"), 0o644)
		if err == nil {
			t.Errorf("WriteFile(%q) succeeded", p)
		}
		if errors.Is(err, ErrQuota) || errors.Is(err, ErrEntries) {
			t.Errorf("WriteFile(%q): %v", p, err)
		}
	}
	// A dangling link inside is not written through either.
	wantErrno(t, "guest symlink", fsys.Symlink("nothere", "dang_in"), 0)
	if err := fsys.WriteFile("dang_in", []byte("x"), 0o644); !errors.Is(err, fs.ErrExist) {
		t.Errorf("WriteFile through a dangling link: %v", err)
	}
	notExist(t, fx, "nothere")
	wantUsed(t, fsys, 0)
	wantEntries(t, fsys, 3) // the guest's three links
	// the fixture checks that nothing outside changed
}

// Non-regular files are refused without being opened (a FIFO would block).
func TestWriteFileNotRegular(t *testing.T) {
	fsys, fx := limitsFS(t, 1000, 100)
	if err := syscall.Mkfifo(filepath.Join(fx.build, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("fifo", filepath.Join(fx.build, "tofifo")); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p, want := range map[string]error{
			"fifo":           errNotRegular,
			"tofifo":         errNotRegular,
			"sub":            syscall.EISDIR,
			"link_in":        syscall.EISDIR,
			"sub/emptydir":   syscall.EISDIR,
			"inside.txt/x":   syscall.ENOTDIR,
			"inside.txt/x/y": syscall.ENOTDIR,
			"fifo/x":         syscall.ENOTDIR,
		} {
			if err := fsys.WriteFile(p, []byte("x"), 0o644); !errors.Is(err, want) {
				t.Errorf("WriteFile(%q): %v, want %v", p, err, want)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WriteFile blocked (opened the FIFO?)")
	}
	if fi, err := os.Lstat(filepath.Join(fx.build, "fifo")); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Errorf("fifo: %v, %v", fi, err)
	}
	wantUsed(t, fsys, 0)
	wantEntries(t, fsys, 0)
}

// A creation that fails after parents were made (here: a name too long)
// leaves nothing behind and gives everything back.
func TestWriteFileUndo(t *testing.T) {
	fsys, fx := limitsFS(t, 1000, 100)
	long := strings.Repeat("n", 300)
	err := fsys.WriteFile("made/also/"+long, []byte("x"), 0o644)
	if !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("WriteFile with a long name: %v", err)
	}
	notExist(t, fx, "made")
	wantUsed(t, fsys, 0)
	wantEntries(t, fsys, 0)
}

// Guest writes (through OpenFile) and host writes (WriteFile), some to the
// same files, race; the quota holds throughout and what is charged at the
// end is what is on disk.
func TestWriteFileConcurrent(t *testing.T) {
	const quota = 1 << 20
	fsys, fx := limitsFS(t, quota, 10000)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() { // a guest writing and truncating its file
			f, errno := fsys.OpenFile(fmt.Sprintf("g%d", i), rwCreate, 0o644)
			if errno != 0 {
				t.Error(errno)
				return
			}
			defer f.Close()
			buf := bytes.Repeat([]byte{'g'}, 10000)
			for j := range 300 {
				if j%50 == 49 {
					f.Truncate(int64(j * 100))
				}
				if _, errno := f.Write(buf); errno != 0 && errno != errQuota {
					t.Error(errno)
					return
				}
			}
		})
		wg.Go(func() { // the host writing artifacts, some over the guest's files
			rnd := rand.New(rand.NewPCG(uint64(i), 1))
			for j := range 300 {
				p := fmt.Sprintf("h%d/%d/f", i, j%7)
				if j%5 == 0 {
					p = fmt.Sprintf("g%d", rnd.IntN(4))
				}
				err := fsys.WriteFile(p, make([]byte, rnd.IntN(40000)), 0o644)
				if err != nil && !errors.Is(err, ErrQuota) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var total int64
	err := filepath.WalkDir(fx.build, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(fx.build, p)
		if d.Type().IsRegular() && (strings.HasPrefix(rel, "g") || strings.HasPrefix(rel, "h")) {
			total += hostSize(t, fx, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if total > quota || fsys.Used() != total {
		t.Errorf("on disk %d, used %d, quota %d", total, fsys.Used(), quota)
	}
	if !fsys.QuotaHit() {
		t.Error("the quota was never reached: the test does not test")
	}
	t.Logf("on disk %d of %d", total, quota)
}

// WriteFile does not use the guest's open-files counter, and the guest's
// open files keep working.
func TestWriteFileOpenFiles(t *testing.T) {
	fx := newFixture(t)
	c := newTestCounter(t, 1)
	fsys, err := New(fx.build, WithOpenFiles(c), WithQuota(100))
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	f, errno := fsys.OpenFile("g", rwCreate, 0o644)
	if errno != 0 {
		t.Fatal(errno)
	}
	defer f.Close()
	mustWriteFile(t, fsys, "g", []byte("host"))
	buf := make([]byte, 10)
	if n, errno := f.Pread(buf, 0); errno != 0 || string(buf[:n]) != "host" {
		t.Errorf("guest reads %q, %v", buf[:n], errno)
	}
	if n, errno := f.Pwrite([]byte("guest"), 4); n != 5 || errno != 0 {
		t.Error(n, errno)
	}
	wantUsed(t, fsys, 9)
	if c.Used() != 1 || fsys.OpenFiles() != 1 {
		t.Errorf("counter %d, FS %d", c.Used(), fsys.OpenFiles())
	}
}
