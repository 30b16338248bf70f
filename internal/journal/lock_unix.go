//go:build unix

package journal

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// syscallNoFollow refuses to open a symbolic link.
const syscallNoFollow = syscall.O_NOFOLLOW

var errLocked = errors.New("locked by another process")

// lockFile takes an exclusive flock on f without waiting: errLocked when
// another open file holds it.
func lockFile(f *os.File) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return errLocked
		}
		return err
	}
	return nil
}

// unlockFile releases the lock and closes f.
func unlockFile(f *os.File) {
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	_ = f.Close()
}

// syncData flushes f's data (not its metadata, which slots never change).
func syncData(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
