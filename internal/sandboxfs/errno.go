//go:build unix

package sandboxfs

import (
	"errors"
	"syscall"

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

// errno is toErrno, noting a host disk that is full (see DiskFullHit).
func (f *FS) errno(err error) experimentalsys.Errno {
	if err != nil && (errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		f.hostFull.Store(true)
	}
	return toErrno(err)
}

// DiskFullHit reports whether an operation failed because the host's file
// system under the directory is full (ENOSPC) or the host's disk quota
// is used up (EDQUOT): the machine's condition, not a limit of the FS
// (see [FS.QuotaHit]). The guest got EIO, as wazero has neither errno.
func (f *FS) DiskFullHit() bool { return f.hostFull.Load() }
