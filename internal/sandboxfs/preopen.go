package sandboxfs

import (
	"sync"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// preopenDir is the guest's pre-opened directory, the root itself, as
// wazero opens it: lazily, but at once in practice, since fd_prestat_get
// (which every WASI program calls at start-up) asks whether it is a
// directory. It holds no descriptor of its own until an operation needs
// one (reading the directory, syncing, setting times); most jobs never
// do, and a job that waits for hours holds only the root's descriptor.
// Once opened, the descriptor counts against the open-files counter as
// the pre-opened directory always did (see WithOpenFiles).
type preopenDir struct {
	experimentalsys.UnimplementedFile

	fs *FS

	mu     sync.Mutex
	f      *file // opened on first need
	closed bool
}

var _ experimentalsys.File = (*preopenDir)(nil)

// open returns the directory's descriptor, opening it the first time.
func (d *preopenDir) open() (*file, experimentalsys.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, experimentalsys.EBADF
	}
	if d.f == nil {
		held := d.fs.fds.tryTake(1, false) == 1 // opened anyway, as before
		fl, errno := d.fs.openFile(".", experimentalsys.O_RDONLY, 0)
		if errno != 0 {
			if held {
				d.fs.fds.give(1)
			}
			return nil, errno
		}
		fl.fdHeld = held
		d.f = fl
	}
	return d.f, 0
}

// Stat implements experimentalsys.File: the root's, through the root.
func (d *preopenDir) Stat() (sys.Stat_t, experimentalsys.Errno) {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return sys.Stat_t{}, experimentalsys.EBADF
	}
	fi, err := d.fs.root.Stat(".")
	if err != nil {
		return sys.Stat_t{}, toErrno(err)
	}
	return sys.NewStat_t(fi), 0
}

// Dev implements experimentalsys.File.
func (d *preopenDir) Dev() (uint64, experimentalsys.Errno) {
	st, errno := d.Stat()
	return st.Dev, errno
}

// Ino implements experimentalsys.File.
func (d *preopenDir) Ino() (sys.Inode, experimentalsys.Errno) {
	st, errno := d.Stat()
	return st.Ino, errno
}

// IsDir implements experimentalsys.File.
func (d *preopenDir) IsDir() (bool, experimentalsys.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, experimentalsys.EBADF
	}
	return true, 0
}

// IsAppend implements experimentalsys.File.
func (d *preopenDir) IsAppend() bool { return false }

// SetAppend implements experimentalsys.File.
func (d *preopenDir) SetAppend(enable bool) experimentalsys.Errno {
	f, errno := d.open()
	if errno != 0 {
		return errno
	}
	return f.SetAppend(enable)
}

// Read implements experimentalsys.File.
func (d *preopenDir) Read(buf []byte) (int, experimentalsys.Errno) {
	f, errno := d.open()
	if errno != 0 {
		return 0, errno
	}
	return f.Read(buf)
}

// Pread implements experimentalsys.File.
func (d *preopenDir) Pread(buf []byte, off int64) (int, experimentalsys.Errno) {
	f, errno := d.open()
	if errno != 0 {
		return 0, errno
	}
	return f.Pread(buf, off)
}

// Seek implements experimentalsys.File.
func (d *preopenDir) Seek(offset fileOffset, whence int) (int64, experimentalsys.Errno) {
	f, errno := d.open()
	if errno != 0 {
		return 0, errno
	}
	return f.Seek(offset, whence)
}

// Readdir implements experimentalsys.File.
func (d *preopenDir) Readdir(n int) ([]experimentalsys.Dirent, experimentalsys.Errno) {
	f, errno := d.open()
	if errno != 0 {
		return nil, errno
	}
	return f.Readdir(n)
}

// Write implements experimentalsys.File.
func (d *preopenDir) Write(buf []byte) (int, experimentalsys.Errno) {
	f, errno := d.open()
	if errno != 0 {
		return 0, errno
	}
	return f.Write(buf)
}

// Pwrite implements experimentalsys.File.
func (d *preopenDir) Pwrite(buf []byte, off int64) (int, experimentalsys.Errno) {
	f, errno := d.open()
	if errno != 0 {
		return 0, errno
	}
	return f.Pwrite(buf, off)
}

// Truncate implements experimentalsys.File.
func (d *preopenDir) Truncate(size int64) experimentalsys.Errno {
	f, errno := d.open()
	if errno != 0 {
		return errno
	}
	return f.Truncate(size)
}

// Sync implements experimentalsys.File.
func (d *preopenDir) Sync() experimentalsys.Errno {
	f, errno := d.open()
	if errno != 0 {
		return errno
	}
	return f.Sync()
}

// Datasync implements experimentalsys.File.
func (d *preopenDir) Datasync() experimentalsys.Errno {
	f, errno := d.open()
	if errno != 0 {
		return errno
	}
	return f.Datasync()
}

// Utimens implements experimentalsys.File.
func (d *preopenDir) Utimens(atim, mtim int64) experimentalsys.Errno {
	f, errno := d.open()
	if errno != 0 {
		return errno
	}
	return f.Utimens(atim, mtim)
}

// Close implements experimentalsys.File.
func (d *preopenDir) Close() experimentalsys.Errno {
	d.mu.Lock()
	f := d.f
	d.closed, d.f = true, nil
	d.mu.Unlock()
	if f == nil {
		return 0
	}
	return f.Close()
}
