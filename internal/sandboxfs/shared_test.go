//go:build unix

package sandboxfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// A shared file (WithShared) hard-linked into the directory is never
// changed through it: whatever the guest does to it, by path or through a
// descriptor, acts on a private copy with the same content, mode and times.
func TestSharedFilesAreCopiedBeforeUse(t *testing.T) {
	const content = "received\n"
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, tc := range []struct {
		name string
		op   func(t *testing.T, f *FS)
		want string // the directory's file's content after op
	}{
		{"read", func(t *testing.T, f *FS) {
			fl := openShared(t, f, "recv.txt", experimentalsys.O_RDONLY)
			defer fl.Close()
			if errno := fl.Utimens(time.Now().UnixNano(), time.Now().UnixNano()); errno != 0 {
				t.Fatal(errno)
			}
		}, content},
		{"truncate", func(t *testing.T, f *FS) {
			fl := openShared(t, f, "recv.txt", experimentalsys.O_WRONLY|experimentalsys.O_TRUNC)
			defer fl.Close()
			write(t, fl, "changed\n")
		}, "changed\n"},
		{"append through a link", func(t *testing.T, f *FS) {
			fl := openShared(t, f, "sub/../rl", experimentalsys.O_RDWR|experimentalsys.O_APPEND)
			defer fl.Close()
			write(t, fl, "more\n")
		}, content + "more\n"},
		{"create without O_EXCL", func(t *testing.T, f *FS) {
			fl := openShared(t, f, "recv.txt", experimentalsys.O_RDWR|experimentalsys.O_CREAT)
			defer fl.Close()
			write(t, fl, "R")
		}, "R" + content[1:]},
		{"chmod", func(t *testing.T, f *FS) {
			if errno := f.Chmod("recv.txt", 0o600); errno != 0 {
				t.Fatal(errno)
			}
		}, content},
		{"utimens", func(t *testing.T, f *FS) {
			if errno := f.Utimens("/recv.txt", 0, 0); errno != 0 {
				t.Fatal(errno)
			}
		}, content},
		{"write file", func(t *testing.T, f *FS) {
			if err := f.WriteFile("recv.txt", []byte("host data\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "host data\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			build, cache := filepath.Join(base, "build"), filepath.Join(base, "cache")
			for _, d := range []string{filepath.Join(build, "sub"), cache} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			orig := filepath.Join(cache, "recv.txt")
			if err := os.WriteFile(orig, []byte(content), 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(orig, 0o640); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(orig, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(orig, filepath.Join(build, "recv.txt")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("recv.txt", filepath.Join(build, "rl")); err != nil {
				t.Fatal(err)
			}
			before, err := os.Stat(orig)
			if err != nil {
				t.Fatal(err)
			}
			st := before.Sys().(*syscall.Stat_t)
			f, err := New(build, WithShared(func(dev, ino uint64) bool { return dev == uint64(st.Dev) && ino == st.Ino }))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()

			tc.op(t, f)

			after, err := os.Stat(orig)
			if err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(orig); string(data) != content || after.Mode() != before.Mode() || !after.ModTime().Equal(mtime) {
				t.Errorf("the shared file changed: %q, %v, %v", data, after.Mode(), after.ModTime())
			}
			mine, err := os.Stat(filepath.Join(build, "recv.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if os.SameFile(mine, after) {
				t.Fatal("the directory's file is still the shared one")
			}
			if data, _ := os.ReadFile(filepath.Join(build, "recv.txt")); string(data) != tc.want {
				t.Errorf("the directory's file holds %q, want %q", data, tc.want)
			}
			if tc.name == "read" || tc.name == "write file" {
				return // times changed by the operation itself
			}
			if tc.name != "chmod" && mine.Mode() != before.Mode() {
				t.Errorf("the copy's mode %v, want %v", mine.Mode(), before.Mode())
			}
			if tc.name != "utimens" && tc.name != "truncate" && tc.name != "append through a link" && tc.name != "create without O_EXCL" && !mine.ModTime().Equal(mtime) {
				t.Errorf("the copy's mtime %v, want %v", mine.ModTime(), mtime)
			}
			if fi, err := os.Lstat(filepath.Join(build, "rl")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("the link to the file: %v, %v", fi, err)
			}
		})
	}
}

// Without WithShared, or for a file not shared, nothing is copied.
func TestUnsharedFilesAreNotCopied(t *testing.T) {
	build := t.TempDir()
	p := filepath.Join(build, "own.txt")
	if err := os.WriteFile(p, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(p, filepath.Join(build, "alias.txt")); err != nil {
		t.Fatal(err)
	}
	f, err := New(build, WithShared(func(dev, ino uint64) bool { return false }))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fl := openShared(t, f, "alias.txt", experimentalsys.O_WRONLY|experimentalsys.O_APPEND)
	write(t, fl, "!")
	fl.Close()
	if data, _ := os.ReadFile(p); string(data) != "mine!" {
		t.Errorf("a hard link of the guest's own no longer aliases: %q", data)
	}
}

func openShared(t *testing.T, f *FS, p string, flag experimentalsys.Oflag) experimentalsys.File {
	t.Helper()
	fl, errno := f.OpenFile(p, flag, 0o644)
	if errno != 0 {
		t.Fatalf("open %s: %v", p, errno)
	}
	return fl
}

func write(t *testing.T, fl experimentalsys.File, s string) {
	t.Helper()
	if _, errno := fl.Write([]byte(s)); errno != 0 {
		t.Fatal(errno)
	}
}
