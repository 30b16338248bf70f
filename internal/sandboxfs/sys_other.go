//go:build unix && !linux

package sandboxfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// O_DSYNC and O_RSYNC are not defined on every Unix: O_SYNC is the stronger
// stand-in for the first, and the second is advisory.
const (
	oDSYNC = unix.O_SYNC
	oRSYNC = 0
)

// parentOpenFlag opens a parent directory for unlinkat/renameat. Without
// O_PATH this needs read permission on the directory.
const parentOpenFlag = os.O_RDONLY | unix.O_DIRECTORY

func datasync(fd int) error { return unix.Fsync(fd) }

// futimens is not implemented off Linux: x/sys/unix has no portable
// descriptor-based call with nanoseconds and UTIME_OMIT, and a path-based one
// would resolve a path again.
func futimens(int, int64, int64) error { return unix.ENOSYS }
