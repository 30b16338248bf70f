//go:build unix

// Package sandboxfs is a WASI file system confined to one directory.
//
// wazero's WithDirMount joins guest paths to the host directory and lets the
// kernel follow symbolic links, so a link in the directory (pre-existing or
// made by the guest with path_symlink) reads and writes outside it. FS resolves
// every path through one [os.Root], which follows symbolic links only while
// they stay inside the directory: whatever paths and links the guest or a
// pre-populated directory contains, nothing outside can be read, written,
// created, deleted, renamed, linked or stat'ed. An attempt to leave the
// directory fails, with EPERM when leaving is what stops it.
//
// Files opened through FS are operated on by descriptor only; no path is
// resolved again after the open.
//
// Paths reach FS relative to the mount point, as wazero passes them: "." for
// the mounted directory itself, otherwise a cleaned relative path, possibly
// with a trailing slash, and with a leading slash when it is relative to a
// descriptor of the mounted directory opened as ".". So a leading slash means
// the mounted directory, never the host's root ("/etc/passwd" is
// <dir>/etc/passwd). A path that climbs above the directory, by ".." or
// through a link, fails with EPERM.
//
// Limits (see also the notes on [FS]): a symbolic link can be created with any
// relative target, including one outside the directory, because a link is just
// a string; following it fails. Absolute link targets are refused (EPERM), as
// os.Root could never follow them. Host code that later walks the directory
// must itself not follow links out of it. Hard links that already exist in the
// directory and share an inode with a file outside it cannot be detected by
// path confinement: the host names those it made with [WithShared], and the
// guest then only ever changes private copies of them. Special files (devices, FIFOs) that are already in the
// directory can be opened; the guest cannot create them.
//
// Consumption is bounded too: the bytes the guest's files grow by, the
// directory entries it creates and the descriptors it holds open are drawn
// from [Counter]s ([WithBytes], [WithEntries], [WithOpenFiles], or the
// private ones of [WithQuota], [WithMaxEntries], [WithMaxOpenFiles]), which
// the host may share with other users (a job's budget, the process's). A
// refusal is EIO to the guest (wazero has no ENOSPC, EDQUOT or EMFILE) and
// is reported to the host by [FS.QuotaHit], [FS.EntriesHit] and
// [FS.OpenFilesHit]. [FS.WriteFile] writes host data into the directory on
// the same terms.
//
// The package needs a Unix host; O_PATH (used to open parent directories without
// read permission) and futimens-by-descriptor are Linux-specific and fall back
// elsewhere.
package sandboxfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"
	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/unix"
)

// FS is an experimentalsys.FS whose every path operation resolves through
// one *os.Root. It is safe for concurrent use; the files it opens are not
// (wazero uses each from one module instance).
//
// Rmdir, Unlink and Rename open the parent directory through the root and
// act on the final path component with unlinkat/renameat on that descriptor,
// which never follow a link in the final component. This gives the exact
// POSIX errors (os.Root.Remove cannot tell rmdir from unlink, and
// os.Root.Rename refuses to replace an empty directory) without a window in
// which a checked entry could be swapped.
//
// Descriptors: besides the files it opens for the guest (counted, see
// [WithOpenFiles]), an FS holds one for its root while it is open, and opens
// others for itself within a call, all closed before the call returns and not
// counted. An os.Root path operation has at most two directories open at once
// while it walks the path (the current one and the next); Unlink and Rmdir
// hold one parent (openParent) and may walk once more meanwhile, so at most
// three at once; Rename holds up to two parents and walks for the second
// while holding the first, also at most three; WriteFile holds its file
// while no walk runs, so at most two. A module instance without threads makes
// one call at a time, so it adds at most three uncounted descriptors, for the
// length of one call, to what it holds.
type FS struct {
	experimentalsys.UnimplementedFS

	dir  string
	root *os.Root

	quotaState        // bytes: see WithQuota, WithBytes
	entries    ledger // see WithMaxEntries, WithEntries
	fds        ledger // see WithOpenFiles, WithMaxOpenFiles

	hostFull atomic.Bool // see DiskFullHit

	shared func(dev, ino uint64) bool // see WithShared
}

var _ experimentalsys.FS = (*FS)(nil)

// New opens an os.Root on dir. Symbolic links in dir itself are followed once,
// here; the directory they lead to is the one confined to.
func New(dir string, opts ...Option) (*FS, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	f := &FS{dir: dir, root: r}
	for _, o := range opts {
		o(f)
	}
	return f, nil
}

// Close closes the root. Files already opened stay usable; path operations
// fail with EBADF afterwards.
func (f *FS) Close() error { return f.root.Close() }

// String returns the host directory, for wazero's debug output.
func (f *FS) String() string { return f.dir }

// Mount returns a wazero.FSConfig with f mounted at guestPath. cfg may be nil,
// meaning wazero.NewFSConfig(). It panics if cfg does not implement
// sysfs.FSConfig (every FSConfig made by wazero does): silently dropping the
// mount would hide a configuration mistake.
func Mount(cfg wazero.FSConfig, f *FS, guestPath string) wazero.FSConfig {
	if cfg == nil {
		cfg = wazero.NewFSConfig()
	}
	sc, ok := cfg.(sysfs.FSConfig)
	if !ok {
		panic("sandboxfs: wazero.FSConfig does not implement sysfs.FSConfig")
	}
	return sc.WithSysFSMount(f, guestPath)
}

// name makes p relative to the root: leading slashes go ("/x" is "x", "/"
// and "" are "."). wazero passes "/x" for "x" relative to a descriptor of the
// mounted directory opened as "."; a guest's absolute paths are resolved
// against its pre-opens by wasi-libc before they get here. Everything else,
// "..", links and all, is os.Root's to resolve.
func name(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// OpenFile implements experimentalsys.FS. The descriptor takes 1 from the
// open-files counter (see WithOpenFiles) before anything is opened.
func (f *FS) OpenFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	lazyPreopen := isLazyPreopen(p, flag, perm)
	p = name(p)
	if flag&experimentalsys.O_NOFOLLOW != 0 {
		// os.Root.OpenFile follows a final symlink (inside the root) even
		// with O_NOFOLLOW, so check first. A link swapped in after this check
		// is still followed only within the root.
		if fi, err := f.root.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if flag&(experimentalsys.O_CREAT|experimentalsys.O_EXCL) == experimentalsys.O_CREAT|experimentalsys.O_EXCL {
				return nil, experimentalsys.EEXIST
			}
			return nil, experimentalsys.ELOOP
		}
	}
	if lazyPreopen {
		return &preopenDir{fs: f}, 0
	}
	if flag&(experimentalsys.O_CREAT|experimentalsys.O_EXCL) != experimentalsys.O_CREAT|experimentalsys.O_EXCL {
		if errno := f.unshare(p); errno != 0 {
			return nil, errno
		}
	}
	fdHeld := f.fds.take(1, false) == 1
	if !fdHeld {
		return nil, errOpenFiles
	}
	fl, errno := f.openFile(p, flag, perm)
	if errno != 0 {
		if fdHeld {
			f.fds.give(1)
		}
		return nil, errno
	}
	fl.fdHeld = fdHeld
	return fl, 0
}

// openFile is OpenFile after the open-files counter.
func (f *FS) openFile(p string, flag experimentalsys.Oflag, perm fs.FileMode) (*file, experimentalsys.Errno) {
	charged := false
	if flag&experimentalsys.O_CREAT != 0 {
		// A name that does not resolve (a dangling link inside the root
		// included) is created by the open: charge it first. One created
		// by someone else meanwhile stays charged: conservative.
		if _, err := f.root.Stat(p); errors.Is(err, fs.ErrNotExist) {
			if !f.chargeEntry() {
				return nil, errEntries
			}
			charged = true
		}
	}
	trunc := f.quota() && flag&experimentalsys.O_TRUNC != 0
	var pre fs.FileInfo
	if trunc {
		pre, _ = f.root.Stat(p) // what the truncation will drop
	}
	osf, err := f.root.OpenFile(p, osOpenFlag(flag), perm&fs.ModePerm)
	if err != nil {
		if charged {
			f.refundEntry()
		}
		return nil, f.errno(err)
	}
	fl := &file{f: osf, flag: flag, fs: f}
	if f.quota() {
		// Every regular file is tracked, read-only ones too: one kept open
		// after its unlink holds its space until closed.
		if errno := f.track(fl, trunc, pre); errno != 0 {
			osf.Close()
			return nil, errno
		}
	}
	return fl, 0
}

// osOpenFlag converts flag to os.OpenFile flags. O_NOFOLLOW is handled by
// OpenFile (os.Root always opens with O_NOFOLLOW and resolves links itself).
func osOpenFlag(flag experimentalsys.Oflag) int {
	var o int
	switch flag & (experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY) {
	case experimentalsys.O_RDWR:
		o = os.O_RDWR
	case experimentalsys.O_WRONLY:
		o = os.O_WRONLY
	default:
		o = os.O_RDONLY
	}
	for _, m := range [...]struct {
		from experimentalsys.Oflag
		to   int
	}{
		{experimentalsys.O_APPEND, os.O_APPEND},
		{experimentalsys.O_CREAT, os.O_CREATE},
		{experimentalsys.O_EXCL, os.O_EXCL},
		{experimentalsys.O_SYNC, os.O_SYNC},
		{experimentalsys.O_TRUNC, os.O_TRUNC},
		{experimentalsys.O_DIRECTORY, unix.O_DIRECTORY},
		{experimentalsys.O_DSYNC, oDSYNC},
		{experimentalsys.O_NONBLOCK, unix.O_NONBLOCK},
		{experimentalsys.O_RSYNC, oRSYNC},
	} {
		if flag&m.from != 0 {
			o |= m.to
		}
	}
	return o
}

// Lstat implements experimentalsys.FS.
func (f *FS) Lstat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := f.root.Lstat(name(p))
	if err != nil {
		return sys.Stat_t{}, f.errno(err)
	}
	return sys.NewStat_t(fi), 0
}

// Stat implements experimentalsys.FS.
func (f *FS) Stat(p string) (sys.Stat_t, experimentalsys.Errno) {
	fi, err := f.root.Stat(name(p))
	if err != nil {
		return sys.Stat_t{}, f.errno(err)
	}
	return sys.NewStat_t(fi), 0
}

// Mkdir implements experimentalsys.FS.
func (f *FS) Mkdir(p string, perm fs.FileMode) experimentalsys.Errno {
	errno := f.createEntry(func() experimentalsys.Errno {
		return f.errno(f.root.Mkdir(name(p), perm&fs.ModePerm))
	})
	if errno == experimentalsys.ENOTDIR {
		// As wazero's DirFS: a parent that is a file means the parent
		// directory does not exist.
		errno = experimentalsys.ENOENT
	}
	return errno
}

// Chmod implements experimentalsys.FS. Only the permission bits are applied.
func (f *FS) Chmod(p string, perm fs.FileMode) experimentalsys.Errno {
	if errno := f.unshare(name(p)); errno != 0 {
		return errno
	}
	return f.errno(f.root.Chmod(name(p), perm&fs.ModePerm))
}

// Rename implements experimentalsys.FS.
func (f *FS) Rename(from, to string) experimentalsys.Errno {
	fromDir, fromBase, fromSlash, fromDot := split(from)
	toDir, toBase, toSlash, toDot := split(to)
	if fromDot {
		return f.dotErr(from, experimentalsys.EINVAL) // POSIX: EINVAL or EBUSY
	}
	if toDot {
		return f.dotErr(to, experimentalsys.EINVAL)
	}
	// Rename of a name onto itself is left to renameat: 0 if it exists.
	// A rename that replaces an existing name (not the same file: renaming
	// a link onto another link to the same inode does nothing) removes an
	// entry. Checked before; a race only loses or keeps one refund.
	replaces := false
	if toFi, err := f.root.Lstat(join(toDir, toBase)); err == nil {
		fromFi, err := f.root.Lstat(join(fromDir, fromBase))
		replaces = err == nil && !os.SameFile(fromFi, toFi)
	}
	fd, errno := f.openParent(fromDir)
	if errno != 0 {
		return errno
	}
	defer fd.Close()
	td := fd
	if toDir != fromDir {
		if td, errno = f.openParent(toDir); errno != 0 {
			return errno
		}
		defer td.Close()
	}
	errno = withFd2(fd, td, func(ofd, nfd int) error {
		if fromSlash || toSlash {
			// A trailing slash names a directory: the source must be one
			// (a link to one does not count, as on Linux).
			var st unix.Stat_t
			if err := unix.Fstatat(ofd, fromBase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return syscall.ENOTDIR
			}
		}
		return unix.Renameat(ofd, fromBase, nfd, toBase)
	})
	if errno == 0 && replaces {
		f.refundEntry()
	}
	return errno
}

// Rmdir implements experimentalsys.FS.
func (f *FS) Rmdir(p string) experimentalsys.Errno {
	dir, base, _, dot := split(p)
	if dot {
		return f.dotErr(p, experimentalsys.EINVAL) // POSIX: rmdir("x/.") is EINVAL
	}
	d, errno := f.openParent(dir)
	if errno != 0 {
		return errno
	}
	defer d.Close()
	errno = withFd(d, func(fd int) error {
		return unix.Unlinkat(fd, base, unix.AT_REMOVEDIR)
	})
	if errno == 0 {
		f.refundEntry()
	}
	return errno
}

// Unlink implements experimentalsys.FS.
func (f *FS) Unlink(p string) experimentalsys.Errno {
	dir, base, slash, dot := split(p)
	if dot {
		return f.dotErr(p, experimentalsys.EISDIR)
	}
	if slash {
		// "x/" names a directory: never unlinkable. Report like Linux:
		// EISDIR for a directory (or a link to one), ENOTDIR otherwise.
		st, errno := f.Stat(p)
		switch {
		case errno != 0:
			return errno
		case st.Mode.IsDir():
			return experimentalsys.EISDIR
		default:
			return experimentalsys.ENOTDIR
		}
	}
	var st sys.Stat_t
	refund := false
	if f.quota() {
		// Removing the last link of a regular file frees its bytes.
		var e experimentalsys.Errno
		st, e = f.Lstat(p)
		refund = e == 0 && st.Mode.IsRegular() && st.Nlink == 1
	}
	d, errno := f.openParent(dir)
	if errno != 0 {
		return errno
	}
	defer d.Close()
	errno = withFd(d, func(fd int) error {
		return unix.Unlinkat(fd, base, 0)
	})
	if errno == 0 {
		f.refundEntry()
		if refund {
			f.unlinked(st)
		}
	}
	if errno == experimentalsys.EPERM {
		// POSIX allows EPERM for unlink of a directory (Darwin does it);
		// wazero expects EISDIR. Only remap when it is a directory.
		if st, e := f.Lstat(p); e == 0 && st.Mode.IsDir() {
			errno = experimentalsys.EISDIR
		}
	}
	return errno
}

// Link implements experimentalsys.FS. Like linkat without AT_SYMLINK_FOLLOW, a
// link as oldPath is linked itself, not its target.
func (f *FS) Link(oldPath, newPath string) experimentalsys.Errno {
	return f.createEntry(func() experimentalsys.Errno {
		return f.errno(f.root.Link(name(oldPath), name(newPath)))
	})
}

// Symlink implements experimentalsys.FS. oldPath is stored as given (it is
// resolved, within the root, only when the link is followed); absolute
// targets are refused with EPERM, as by wazero's DirFS and the WASI path
// resolution rules.
func (f *FS) Symlink(oldPath, linkName string) experimentalsys.Errno {
	if path.IsAbs(oldPath) {
		return experimentalsys.EPERM
	}
	return f.createEntry(func() experimentalsys.Errno {
		return f.errno(f.root.Symlink(oldPath, name(linkName)))
	})
}

// Readlink implements experimentalsys.FS.
func (f *FS) Readlink(p string) (string, experimentalsys.Errno) {
	dst, err := f.root.Readlink(name(p))
	if err != nil {
		return "", f.errno(err)
	}
	return dst, 0
}

// Utimens implements experimentalsys.FS. A final link is followed (within the
// root); UTIME_OMIT leaves a time unchanged.
func (f *FS) Utimens(p string, atim, mtim int64) experimentalsys.Errno {
	if atim == experimentalsys.UTIME_OMIT && mtim == experimentalsys.UTIME_OMIT {
		return 0
	}
	if errno := f.unshare(name(p)); errno != 0 {
		return errno
	}
	// os.Root.Chtimes turns a zero time.Time into UTIME_OMIT. No
	// time.Unix(0, n) with an int64 n is the zero time.Time (year 1).
	return f.errno(f.root.Chtimes(name(p), nanosToTime(atim), nanosToTime(mtim)))
}

func nanosToTime(n int64) time.Time {
	if n == experimentalsys.UTIME_OMIT {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// split splits p (made relative by name) into the parent directory, as a
// path for the root, and the final component, which never contains a slash.
// slash reports whether p ended in one. The parent is not cleaned: os.Root
// resolves it, ".." after links included, exactly as for the other methods.
// dot reports a final "." or "..", which names a directory that cannot be
// removed or renamed by that name.
func split(p string) (dir, base string, slash, dot bool) {
	p = name(p) // no leading slash, not empty
	trimmed := strings.TrimRight(p, "/")
	slash = len(trimmed) < len(p)
	dir, base = ".", trimmed
	if i := strings.LastIndexByte(trimmed, '/'); i >= 0 {
		dir, base = trimmed[:i], trimmed[i+1:]
	}
	return dir, base, slash, base == "." || base == ".."
}

// join is split's inverse for the root: dir is kept as is (not cleaned).
func join(dir, base string) string {
	if dir == "." {
		return base
	}
	return dir + "/" + base
}

// dotErr is the result of removing or renaming p, which ends in "." or "..":
// errno, unless p does not resolve (an escape still reports EPERM).
func (f *FS) dotErr(p string, errno experimentalsys.Errno) experimentalsys.Errno {
	if _, e := f.Lstat(p); e != 0 {
		return e
	}
	return errno
}

// openParent opens dir through the root, following links only inside it.
// The descriptor is not counted against the open-files counter: it is closed
// before the calling method returns (see the notes on descriptors at [FS]).
func (f *FS) openParent(dir string) (*os.File, experimentalsys.Errno) {
	d, err := f.root.OpenFile(dir, parentOpenFlag, 0)
	if err != nil {
		return nil, f.errno(err)
	}
	return d, 0
}

// withFd runs fn with d's descriptor, retrying on EINTR.
func withFd(d *os.File, fn func(fd int) error) experimentalsys.Errno {
	rc, err := d.SyscallConn()
	if err != nil {
		return toErrno(err)
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) {
		opErr = retryEINTR(func() error { return fn(int(fd)) })
	}); err != nil {
		return toErrno(err)
	}
	return toErrno(opErr)
}

// withFd2 is withFd for two descriptors.
func withFd2(a, b *os.File, fn func(afd, bfd int) error) experimentalsys.Errno {
	return withFd(a, func(afd int) error {
		var opErr error
		errno := withFd(b, func(bfd int) error {
			opErr = fn(afd, bfd)
			return opErr
		})
		if opErr == nil && errno != 0 {
			return errno // b could not be used (closed)
		}
		return opErr
	})
}

func retryEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
