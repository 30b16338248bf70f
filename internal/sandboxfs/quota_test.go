//go:build unix

package sandboxfs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

func quotaFS(t *testing.T, quota int64) (*FS, *fixture) {
	t.Helper()
	fx := newFixture(t)
	fsys, err := New(fx.build, WithQuota(quota))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsys.Close() })
	return fsys, fx
}

func openQ(t *testing.T, fsys *FS, p string, flag experimentalsys.Oflag) experimentalsys.File {
	t.Helper()
	f, errno := fsys.OpenFile(p, flag, 0o644)
	if errno != 0 {
		t.Fatalf("open %s: %v", p, errno)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

const rwCreate = experimentalsys.O_RDWR | experimentalsys.O_CREAT

func wantUsed(t *testing.T, fsys *FS, want int64) {
	t.Helper()
	if got := fsys.Used(); got != want {
		t.Errorf("Used() = %d, want %d", got, want)
	}
}

func wantWrite(t *testing.T, n int, errno experimentalsys.Errno, wantN int, wantErr experimentalsys.Errno) {
	t.Helper()
	if n != wantN || errno != wantErr {
		t.Errorf("wrote %d, %v; want %d, %v", n, errno, wantN, wantErr)
	}
}

func hostSize(t *testing.T, fx *fixture, p string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(fx.build, p))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestQuotaWrite(t *testing.T) {
	fsys, fx := quotaFS(t, 10)
	f := openQ(t, fsys, "a", rwCreate)
	n, errno := f.Write(make([]byte, 6))
	wantWrite(t, n, errno, 6, 0)
	wantUsed(t, fsys, 6)
	if fsys.QuotaHit() {
		t.Error("QuotaHit before the quota was reached")
	}
	n, errno = f.Write(make([]byte, 6)) // partial at the boundary
	wantWrite(t, n, errno, 4, 0)
	wantUsed(t, fsys, 10)
	n, errno = f.Write([]byte{1})
	wantWrite(t, n, errno, 0, errQuota)
	if !fsys.QuotaHit() {
		t.Error("QuotaHit is false")
	}
	// Overwriting within the file is free, and a write straddling the end
	// writes the part inside.
	if _, errno := f.Seek(2, 0); errno != 0 {
		t.Fatal(errno)
	}
	n, errno = f.Write(make([]byte, 4))
	wantWrite(t, n, errno, 4, 0)
	n, errno = f.Write(make([]byte, 8))
	wantWrite(t, n, errno, 4, 0)
	wantUsed(t, fsys, 10)
	if s := hostSize(t, fx, "a"); s != 10 {
		t.Errorf("size %d", s)
	}
	// Another file shares the quota.
	g := openQ(t, fsys, "b", rwCreate)
	n, errno = g.Write([]byte{1})
	wantWrite(t, n, errno, 0, errQuota)
}

func TestQuotaPwrite(t *testing.T) {
	fsys, fx := quotaFS(t, 100)
	f := openQ(t, fsys, "a", rwCreate)
	n, errno := f.Pwrite([]byte{1}, 200) // a hole counts as written
	wantWrite(t, n, errno, 0, errQuota)
	n, errno = f.Pwrite(make([]byte, 10), 50)
	wantWrite(t, n, errno, 10, 0)
	wantUsed(t, fsys, 60)
	n, errno = f.Pwrite(make([]byte, 10), 0)
	wantWrite(t, n, errno, 10, 0)
	wantUsed(t, fsys, 60)
	n, errno = f.Pwrite(make([]byte, 50), 90)
	wantWrite(t, n, errno, 10, 0)
	wantUsed(t, fsys, 100)
	if s := hostSize(t, fx, "a"); s != 100 {
		t.Errorf("size %d", s)
	}
}

func TestQuotaTruncate(t *testing.T) {
	fsys, fx := quotaFS(t, 100)
	f := openQ(t, fsys, "a", rwCreate)
	if errno := f.Truncate(101); errno != errQuota {
		t.Errorf("truncate over the quota: %v", errno)
	}
	wantUsed(t, fsys, 0)
	if errno := f.Truncate(80); errno != 0 {
		t.Fatal(errno)
	}
	wantUsed(t, fsys, 80)
	if errno := f.Truncate(20); errno != 0 {
		t.Fatal(errno)
	}
	wantUsed(t, fsys, 20)
	if s := hostSize(t, fx, "a"); s != 20 {
		t.Errorf("size %d", s)
	}
	// O_TRUNC refunds the old size.
	f.Close()
	openQ(t, fsys, "a", experimentalsys.O_WRONLY|experimentalsys.O_TRUNC)
	wantUsed(t, fsys, 0)
}

func TestQuotaAppend(t *testing.T) {
	fsys, _ := quotaFS(t, 100)
	f := openQ(t, fsys, "a", rwCreate)
	if n, errno := f.Write(make([]byte, 50)); n != 50 || errno != 0 {
		t.Fatal(n, errno)
	}
	a := openQ(t, fsys, "a", experimentalsys.O_WRONLY|experimentalsys.O_APPEND)
	n, errno := a.Write(make([]byte, 30)) // at offset 0, but appends
	wantWrite(t, n, errno, 30, 0)
	wantUsed(t, fsys, 80)
	n, errno = a.Pwrite(make([]byte, 30), 0) // appends too, on Linux
	if runtime.GOOS == "linux" {
		wantWrite(t, n, errno, 20, 0)
		wantUsed(t, fsys, 100)
	}
	// SetAppend switches a descriptor to appending.
	if errno := f.SetAppend(true); errno != 0 {
		t.Fatal(errno)
	}
	if _, errno := f.Seek(0, 0); errno != 0 {
		t.Fatal(errno)
	}
	n, errno = f.Write([]byte{1})
	if runtime.GOOS == "linux" {
		wantWrite(t, n, errno, 0, errQuota)
	}
}

func TestQuotaRefunds(t *testing.T) {
	fsys, fx := quotaFS(t, 100)
	write := func(p string, size int) {
		t.Helper()
		f := openQ(t, fsys, p, rwCreate)
		if n, errno := f.Write(make([]byte, size)); n != size || errno != 0 {
			t.Fatal(n, errno)
		}
		f.Close()
	}
	write("a", 40)
	write("b", 30)
	wantUsed(t, fsys, 70)
	if errno := fsys.Unlink("a"); errno != 0 {
		t.Fatal(errno)
	}
	wantUsed(t, fsys, 30)
	// A file with another link frees nothing; its last link does.
	if errno := fsys.Link("b", "b2"); errno != 0 {
		t.Fatal(errno)
	}
	if errno := fsys.Unlink("b"); errno != 0 {
		t.Fatal(errno)
	}
	wantUsed(t, fsys, 30)
	// Open (even read-only), it frees its bytes only when closed.
	r := openQ(t, fsys, "b2", experimentalsys.O_RDONLY)
	if errno := fsys.Unlink("b2"); errno != 0 {
		t.Fatal(errno)
	}
	wantUsed(t, fsys, 30)
	r.Close()
	wantUsed(t, fsys, 0)
	// Files that were there before were never charged: removing or
	// truncating them refunds nothing below zero...
	if errno := fsys.Unlink("inside.txt"); errno != 0 {
		t.Fatal(errno)
	}
	f := openQ(t, fsys, "sub/file.txt", experimentalsys.O_RDWR|experimentalsys.O_TRUNC)
	wantUsed(t, fsys, 0)
	// ...and growing them is charged.
	if n, errno := f.Write(make([]byte, 100)); n != 100 || errno != 0 {
		t.Fatal(n, errno)
	}
	wantUsed(t, fsys, 100)
	if s := hostSize(t, fx, "sub/file.txt"); s != 100 {
		t.Errorf("size %d", s)
	}
}

// A descriptor's view of the size must not go stale when another one
// shrinks the file: growth back to the old size is charged again.
func TestQuotaSharedSize(t *testing.T) {
	fsys, fx := quotaFS(t, 100)
	a := openQ(t, fsys, "a", rwCreate)
	if n, errno := a.Write(make([]byte, 60)); n != 60 || errno != 0 {
		t.Fatal(n, errno)
	}
	b := openQ(t, fsys, "a", experimentalsys.O_RDWR)
	if errno := a.Truncate(0); errno != 0 {
		t.Fatal(errno)
	}
	wantUsed(t, fsys, 0)
	n, errno := b.Pwrite(make([]byte, 60), 0)
	wantWrite(t, n, errno, 60, 0)
	wantUsed(t, fsys, 60)
	// And O_TRUNC through a third descriptor likewise.
	openQ(t, fsys, "a", experimentalsys.O_WRONLY|experimentalsys.O_TRUNC)
	wantUsed(t, fsys, 0)
	n, errno = a.Pwrite(make([]byte, 120), 0)
	wantWrite(t, n, errno, 100, 0)
	wantUsed(t, fsys, 100)
	if s := hostSize(t, fx, "a"); s != 100 {
		t.Errorf("size %d", s)
	}
}

func TestNoQuota(t *testing.T) {
	for _, q := range []int64{0, -1} {
		fx := newFixture(t)
		fsys, err := New(fx.build, WithQuota(q))
		if err != nil {
			t.Fatal(err)
		}
		f := openQ(t, fsys, "a", rwCreate)
		n, errno := f.Write(make([]byte, 1<<20))
		wantWrite(t, n, errno, 1<<20, 0)
		if errno := f.Truncate(4 << 20); errno != 0 {
			t.Fatal(errno)
		}
		wantUsed(t, fsys, 0)
		fsys.Close()
	}
}

// Files of one FS written and closed from several goroutines share the
// counter: the bytes on disk are what was charged, within the quota.
func TestQuotaConcurrent(t *testing.T) {
	const quota = 1 << 20
	fsys, fx := quotaFS(t, quota)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, errno := fsys.OpenFile(fmt.Sprintf("f%d", i), rwCreate, 0o644)
			if errno != 0 {
				t.Error(errno)
				return
			}
			defer f.Close()
			buf := bytes.Repeat([]byte{'x'}, 10000)
			for {
				if _, errno := f.Write(buf); errno != 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	var total int64
	for i := range 8 {
		total += hostSize(t, fx, fmt.Sprintf("f%d", i))
	}
	if total != quota || fsys.Used() != quota {
		t.Errorf("on disk %d, used %d, quota %d", total, fsys.Used(), quota)
	}
}
