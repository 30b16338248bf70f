//go:build unix

package sandboxfs

import (
	"errors"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// escapeMsg is the text of os.Root's (unexported) error for a path or link
// that leaves the root. TestEscapeErrorIsEPERM fails if Go changes it.
const escapeMsg = "path escapes from parent"

// toErrno maps an error from os, os.Root or a syscall to an Errno. os.Root's
// escape error is a plain error, which wazero would report as EIO; it becomes
// EPERM, the errno WASI uses for a path outside the pre-opened directory.
func toErrno(err error) experimentalsys.Errno {
	if err == nil {
		return 0
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == escapeMsg {
			return experimentalsys.EPERM
		}
	}
	// Handles *PathError, *LinkError, *SyscallError, the fs.Err* sentinels
	// (ErrClosed becomes EBADF), syscall.Errno and Errno; io.EOF is 0 and
	// anything unknown EIO.
	return experimentalsys.UnwrapOSError(err)
}
