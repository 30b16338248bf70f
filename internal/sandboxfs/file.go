//go:build unix

package sandboxfs

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// file is an experimentalsys.File over a descriptor opened through the root.
// Every operation uses the descriptor; no path is resolved again (wazero's
// own osFile re-opens by path for SetAppend and directory rewinds, which is
// exactly what must not happen here).
type file struct {
	experimentalsys.UnimplementedFile

	f      *os.File
	flag   experimentalsys.Oflag // O_APPEND tracks SetAppend
	closed atomic.Bool           // set once, by the first Close

	fs *FS
	// fdHeld: the descriptor holds 1 of fs's open-files counter, given back
	// by the first Close.
	fdHeld bool

	// With a quota, a regular file's shared size (see WithQuota).
	node *node
	key  inodeKey

	// Fields that do not change while the file is open, from the first Stat.
	statted bool
	dev     uint64
	ino     sys.Inode
	isDir   bool
}

var _ experimentalsys.File = (*file)(nil)

func (f *file) cached() experimentalsys.Errno {
	if f.statted {
		return 0
	}
	_, errno := f.Stat()
	return errno
}

// Dev implements experimentalsys.File.
func (f *file) Dev() (uint64, experimentalsys.Errno) {
	errno := f.cached()
	return f.dev, errno
}

// Ino implements experimentalsys.File.
func (f *file) Ino() (sys.Inode, experimentalsys.Errno) {
	errno := f.cached()
	return f.ino, errno
}

// IsDir implements experimentalsys.File.
func (f *file) IsDir() (bool, experimentalsys.Errno) {
	errno := f.cached()
	return f.isDir, errno
}

// IsAppend implements experimentalsys.File.
func (f *file) IsAppend() bool {
	return f.flag&experimentalsys.O_APPEND != 0
}

// SetAppend implements experimentalsys.File with fcntl(F_SETFL) on the
// descriptor (Linux and the BSDs honour O_APPEND there).
func (f *file) SetAppend(enable bool) experimentalsys.Errno {
	if errno := f.check(true); errno != 0 {
		return errno
	}
	errno := withFd(f.f, func(fd int) error {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			return err
		}
		if enable {
			fl |= unix.O_APPEND
		} else {
			fl &^= unix.O_APPEND
		}
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
		return err
	})
	if errno == 0 {
		if enable {
			f.flag |= experimentalsys.O_APPEND
		} else {
			f.flag &^= experimentalsys.O_APPEND
		}
	}
	return errno
}

// Stat implements experimentalsys.File (fstat).
func (f *file) Stat() (sys.Stat_t, experimentalsys.Errno) {
	if f.closed.Load() {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	fi, err := f.f.Stat()
	if err != nil {
		errno := f.fs.errno(err)
		if errno == experimentalsys.EIO {
			errno = experimentalsys.EBADF
		}
		return sys.Stat_t{}, errno
	}
	st := sys.NewStat_t(fi)
	f.dev, f.ino, f.isDir, f.statted = st.Dev, st.Ino, st.Mode.IsDir(), true
	return st, 0
}

// Read implements experimentalsys.File.
func (f *file) Read(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.Read(buf)
	return n, f.fileErr(err)
}

// Pread implements experimentalsys.File.
func (f *file) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	if len(buf) == 0 {
		return 0, 0
	}
	n, err := f.f.ReadAt(buf, off)
	return n, f.fileErr(err)
}

// Seek implements experimentalsys.File. On a directory, Seek(0, SeekStart)
// rewinds it on the same descriptor: os.File drops its directory buffer and
// lseek(2) restarts getdents, so entries added since are seen.
func (f *file) Seek(offset fileOffset, whence int) (int64, experimentalsys.Errno) {
	if uint(whence) > io.SeekEnd {
		return 0, experimentalsys.EINVAL
	}
	if f.closed.Load() {
		return 0, experimentalsys.EBADF
	}
	n, err := f.f.Seek(offset, whence)
	if err != nil {
		return 0, f.fs.errno(err)
	}
	return n, 0
}

// fileOffset is int64. Naming Seek's parameter type with an alias keeps go
// vet's stdmethods check, which wants every method named Seek to be
// io.Seeker's, from rejecting the Errno result experimentalsys.File requires.
type fileOffset = int64

// Readdir implements experimentalsys.File. wazero's DirentCache adds "." and
// "..", keeps read positions and rewinds with Seek(0, SeekStart); this only
// returns the next up to n entries (all when n <= 0), with inode and type.
// os.File.Readdir stats entries with fstatat on this descriptor for files
// opened in a Root, never by path.
func (f *file) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	if f.closed.Load() {
		return nil, experimentalsys.EBADF
	}
	fis, err := f.f.Readdir(n)
	if err != nil && !errors.Is(err, io.EOF) {
		switch errno := f.fs.errno(err); errno {
		case experimentalsys.EINVAL, experimentalsys.ENOTDIR:
			return nil, experimentalsys.EBADF // not a directory
		default:
			return nil, errno
		}
	}
	dirents := make([]experimentalsys.Dirent, 0, len(fis))
	for _, fi := range fis {
		var ino sys.Inode
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		dirents = append(dirents, experimentalsys.Dirent{Name: fi.Name(), Ino: ino, Type: fi.Mode().Type()})
	}
	return dirents, 0
}

// Write implements experimentalsys.File.
func (f *file) Write(buf []byte) (int, experimentalsys.Errno) {
	if len(buf) == 0 {
		return 0, 0
	}
	write := func(buf []byte) (int, experimentalsys.Errno) {
		n, err := f.f.Write(buf)
		return n, f.fileErr(err)
	}
	if f.node == nil {
		return write(buf)
	}
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	var off int64
	appending := f.IsAppend()
	if !appending {
		var err error
		if off, err = f.f.Seek(0, io.SeekCurrent); err != nil {
			return 0, f.fileErr(err)
		}
	}
	return f.quotaWrite(buf, off, appending, write)
}

// Pwrite implements experimentalsys.File with pwrite(2) on the descriptor:
// os.File.WriteAt refuses files opened with O_APPEND. (On Linux, pwrite to an
// O_APPEND file appends, as it does for native programs.)
func (f *file) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	if off < 0 {
		return 0, experimentalsys.EINVAL
	}
	if len(buf) == 0 {
		return 0, 0
	}
	if f.closed.Load() {
		return 0, experimentalsys.EBADF
	}
	if f.node == nil {
		return f.pwrite(buf, off)
	}
	f.node.mu.Lock()
	defer f.node.mu.Unlock()
	// On Linux, pwrite to an O_APPEND file appends.
	return f.quotaWrite(buf, off, f.IsAppend(), func(buf []byte) (int, experimentalsys.Errno) {
		return f.pwrite(buf, off)
	})
}

func (f *file) pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	var n int
	errno := withFd(f.f, func(fd int) error {
		for n < len(buf) {
			m, err := unix.Pwrite(fd, buf[n:], off+int64(n))
			if m > 0 {
				n += m
			}
			if err != nil {
				return err // EINTR is retried by withFd from n
			}
			if m == 0 {
				return io.ErrShortWrite
			}
		}
		return nil
	})
	if errno != 0 {
		errno = f.fileErrno(errno)
	}
	return n, errno
}

// Truncate implements experimentalsys.File (ftruncate).
func (f *file) Truncate(size int64) experimentalsys.Errno {
	if size < 0 {
		return experimentalsys.EINVAL
	}
	if f.node == nil {
		return f.fileErr(f.f.Truncate(size))
	}
	return f.quotaTruncate(size, func() experimentalsys.Errno {
		return f.fileErr(f.f.Truncate(size))
	})
}

// Sync implements experimentalsys.File (fsync).
func (f *file) Sync() experimentalsys.Errno {
	if f.closed.Load() {
		return experimentalsys.EBADF
	}
	return f.fs.errno(f.f.Sync())
}

// Datasync implements experimentalsys.File (fdatasync where there is one).
func (f *file) Datasync() experimentalsys.Errno {
	if f.closed.Load() {
		return experimentalsys.EBADF
	}
	return withFd(f.f, datasync)
}

// Utimens implements experimentalsys.File (futimens on the descriptor).
func (f *file) Utimens(atim, mtim int64) experimentalsys.Errno {
	if f.closed.Load() {
		return experimentalsys.EBADF
	}
	if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
		return 0
	}
	return withFd(f.f, func(fd int) error { return futimens(fd, atim, mtim) })
}

// Close implements experimentalsys.File. A second Close is a no-op. The
// first gives back what the file holds (its open-files unit, its node) even
// when closing the descriptor fails: wazero keeps a file whose Close failed
// in its table and closes it again when the module closes, and the
// descriptor is gone anyway (close(2) releases it whatever it returns).
func (f *file) Close() experimentalsys.Errno { return f.fs.errno(f.close()) }

// close is Close with the os error.
func (f *file) close() error {
	if !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := f.f.Close()
	if f.node != nil {
		f.fs.untrack(f)
	}
	if f.fdHeld {
		f.fs.fds.give(1)
	}
	return err
}

// check returns EBADF when closed and, if wantFile, EISDIR for a directory.
func (f *file) check(wantFile bool) experimentalsys.Errno {
	if f.closed.Load() {
		return experimentalsys.EBADF
	}
	if wantFile {
		if isDir, errno := f.IsDir(); errno != 0 {
			return errno
		} else if isDir {
			return experimentalsys.EISDIR
		}
	}
	return 0
}

// fileErr maps err from an operation meant for a regular file, preferring
// EBADF (closed) and EISDIR (a directory) as wazero does. The checks run only
// after a failure.
func (f *file) fileErr(err error) experimentalsys.Errno {
	errno := f.fs.errno(err)
	if errno == 0 {
		return 0
	}
	return f.fileErrno(errno)
}

func (f *file) fileErrno(errno experimentalsys.Errno) experimentalsys.Errno {
	if e := f.check(true); e != 0 {
		return e
	}
	return errno
}
