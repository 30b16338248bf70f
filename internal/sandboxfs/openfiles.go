//go:build unix

package sandboxfs

import (
	"io/fs"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// errOpenFiles is the error of an OpenFile refused by the open-files
// counter. POSIX says EMFILE (or ENFILE), but wazero's experimentalsys.Errno
// has neither and turns errnos it does not know into EIO; EIO it is, as for
// the quota. [FS.OpenFilesHit] tells the host that the counter was the cause.
const errOpenFiles = experimentalsys.EIO

// WithOpenFiles makes every descriptor the FS opens for the guest (OpenFile:
// files and directories, any flags) take 1 from c, given back when the file
// is closed (once, also when Close fails, and when wazero closes the module's
// files at module close); nil means no limit. When c refuses, OpenFile fails
// with EIO before opening anything. Other users may share c, e.g. a
// process-wide bound below RLIMIT_NOFILE, so that one guest holding
// descriptors cannot make another tenant's opens fail with EMFILE. It
// replaces an earlier WithOpenFiles or WithMaxOpenFiles.
//
// Not counted:
//   - descriptors the FS opens for itself within one call and closes before
//     it returns (see [FS] for how many);
//   - [FS.WriteFile]'s own descriptor, likewise closed before it returns;
//   - the descriptor of a pre-opened directory, when c has no room. wazero
//     opens it (lazily, but in practice as each module instance starts:
//     wasi-libc's fd_prestat_get needs it) and panics, trapping the guest,
//     if that fails; no guest may be made to trap by other users of a
//     shared counter. It takes 1 when c has room, so a guest alone on a
//     counter of n opens n-1 files of its own per mount. This is at most
//     one descriptor per mount per module instance, kept until the module
//     closes; a host sharing c across instances leaves that much headroom
//     below RLIMIT_NOFILE.
func WithOpenFiles(c Counter) Option {
	return func(f *FS) { f.fds.c = c }
}

// WithMaxOpenFiles is [WithOpenFiles] with a counter of its own, private to
// the FS, that allows n descriptors open at once; 0 or a negative value means
// no limit.
func WithMaxOpenFiles(n int64) Option {
	if n <= 0 {
		return WithOpenFiles(nil)
	}
	return WithOpenFiles(newLimit(n))
}

// OpenFiles returns how many descriptors opened through OpenFile are open
// and hold a unit of the open-files counter. It counts with or without one.
func (f *FS) OpenFiles() int64 { return f.fds.held.Load() }

// OpenFilesHit reports whether an OpenFile was refused because the
// open-files counter gave less than asked.
func (f *FS) OpenFilesHit() bool { return f.fds.hit.Load() }

// isLazyPreopen reports whether an OpenFile call is wazero's (v1.12) lazy
// open of a pre-opened directory, internal/sys.lazyDir.file:
// OpenFile(".", O_RDONLY, 0), which panics on any error but ENOENT. No guest
// call makes exactly this one: path_open always passes perm 0o600, and
// path_filestat_set_times opens with O_WRONLY. TestGuestOpenFilesExhaustedByOther
// fails (the guest traps) if wazero changes this.
func isLazyPreopen(p string, flag experimentalsys.Oflag, perm fs.FileMode) bool {
	return p == "." && flag == experimentalsys.O_RDONLY && perm == 0
}
