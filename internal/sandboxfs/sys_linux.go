package sandboxfs

import (
	"os"
	"syscall"
	"unsafe"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"golang.org/x/sys/unix"
)

const (
	oDSYNC = unix.O_DSYNC
	oRSYNC = unix.O_RSYNC
)

// parentOpenFlag opens a parent directory for unlinkat/renameat. O_PATH needs
// no read permission on the directory (unlink needs only write and search),
// and the descriptor can be used for nothing but *at calls.
const parentOpenFlag = os.O_RDONLY | unix.O_DIRECTORY | unix.O_PATH

func datasync(fd int) error { return unix.Fdatasync(fd) }

// futimens sets the times of the file fd refers to: utimensat(fd, NULL, ...),
// which Linux supports and x/sys/unix does not expose (it always passes a
// path).
func futimens(fd int, atim, mtim int64) error {
	ts := [2]unix.Timespec{timespec(atim), timespec(mtim)}
	_, _, e := syscall.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

func timespec(n int64) unix.Timespec {
	if n == experimentalsys.UTIME_OMIT {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(n)
}
