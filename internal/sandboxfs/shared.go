//go:build unix

package sandboxfs

import (
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// WithShared names the files of the directory that other directories share:
// regular files whose device and inode shared reports are hard links to a
// host file (a job's received artifacts, linked rather than copied). The
// guest never changes such a file in place: before it opens one (to read
// too, since a descriptor could change its times), changes its mode or times
// by path, or FS.WriteFile overwrites it, FS replaces the link with a private
// copy (same content, mode and times), as if the file had been copied into
// the directory in the first place. Its own hard links to a shared file stay
// shared until they are used so.
func WithShared(shared func(dev, ino uint64) bool) Option {
	return func(f *FS) { f.shared = shared }
}

// maxUnshareLinks bounds the symbolic links unshare follows (Linux's
// MAXSYMLINKS).
const maxUnshareLinks = 40

// unshare gives p, if it resolves to a shared file, a private copy (see
// WithShared). Errors resolving p are left to the operation that follows,
// which reports them.
func (f *FS) unshare(p string) experimentalsys.Errno {
	if f.shared == nil {
		return 0
	}
	for range maxUnshareLinks {
		fi, err := f.root.Lstat(p)
		if err != nil {
			return 0
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := f.root.Readlink(p)
			if err != nil || path.IsAbs(target) {
				return 0
			}
			p = path.Join(path.Dir(p), target)
			continue
		}
		if !fi.Mode().IsRegular() || !f.isShared(fi) {
			return 0
		}
		return f.errno(f.copyOver(p, fi))
	}
	return 0
}

// isShared reports whether fi is a shared file.
func (f *FS) isShared(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink > 1 && f.shared(uint64(st.Dev), uint64(st.Ino))
}

// copyOver replaces the regular file p (described by fi) with a copy of
// it: written beside it under a temporary name, then renamed over it.
func (f *FS) copyOver(p string, fi fs.FileInfo) error {
	src, err := f.root.Open(p)
	if err != nil {
		return err
	}
	defer src.Close()
	if sfi, err := src.Stat(); err != nil || !os.SameFile(fi, sfi) {
		return errors.Join(err, errRaced)
	}
	tmp := path.Join(path.Dir(p), ".wasmrunner-unshare-"+rand.Text())
	dst, err := f.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Chmod(fi.Mode().Perm())
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		atime := fi.ModTime()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			atime = time.Unix(st.Atim.Unix())
		}
		err = f.root.Chtimes(tmp, atime, fi.ModTime())
	}
	if err == nil {
		err = f.root.Rename(tmp, p)
	}
	if err != nil {
		f.root.Remove(tmp)
		return err
	}
	return nil
}
