//go:build unix

package sandboxfs

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// TestDiskFullHit: a host's ENOSPC or EDQUOT is EIO to the guest and is
// noted for the host; other failures, and the FS's own quota, are not.
func TestDiskFullHit(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		hit  bool
	}{
		{"write ENOSPC", &fs.PathError{Op: "write", Path: "f", Err: syscall.ENOSPC}, true},
		{"create EDQUOT", &fs.PathError{Op: "openat", Path: "f", Err: syscall.EDQUOT}, true},
		{"wrapped", &os.SyscallError{Syscall: "pwrite", Err: syscall.ENOSPC}, true},
		{"not found", &fs.PathError{Op: "open", Path: "f", Err: syscall.ENOENT}, false},
		{"permission", errors.New("permission denied"), false},
		{"none", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			errno := f.errno(tc.err)
			if got := f.DiskFullHit(); got != tc.hit {
				t.Errorf("DiskFullHit = %v, want %v", got, tc.hit)
			}
			if tc.hit && errno != experimentalsys.EIO {
				t.Errorf("errno %v, want EIO", errno)
			}
		})
	}
	// The FS's quota is the FS's, not the host's disk.
	f, err := New(t.TempDir(), WithQuota(4))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	file, errno := f.OpenFile("x", experimentalsys.O_CREAT|experimentalsys.O_WRONLY, 0o600)
	if errno != 0 {
		t.Fatal(errno)
	}
	defer file.Close()
	if _, errno := file.Write([]byte("more than four")); errno != 0 && errno != experimentalsys.EIO {
		t.Fatal(errno)
	}
	if !f.QuotaHit() || f.DiskFullHit() {
		t.Errorf("quota: QuotaHit %v, DiskFullHit %v; want true, false", f.QuotaHit(), f.DiskFullHit())
	}
}
