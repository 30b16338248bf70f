//go:build unix

package sandboxfs

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// errNotRegular is the error of a WriteFile whose name is neither a regular
// file nor missing (a FIFO, a device, a socket; a directory is EISDIR).
var errNotRegular = errors.New("not a regular file")

// errRaced: WriteFile's exclusive create found the name taken after it had
// checked that the name was free. WriteFile starts again.
var errRaced = errors.New("created meanwhile")

// WriteFile writes data to name (relative to the FS's dir, confined like
// guest paths), creating missing parent dirs, as the guest would: new
// entries and the file's growth are charged; a write that does not fit is
// refused whole, before anything is written, with an error wrapping
// [ErrQuota] or [ErrEntries], and nothing is left behind. It never follows a
// link out of the dir and refuses to write through a non-regular file. It is
// for host code writing guest-supplied data into the dir (artifact_add_data).
//
// In detail: name is slash-separated, a leading slash meaning the FS's dir,
// and must be a valid [fs.ValidPath] after that (no "." or ".." elements, no
// empty ones, not the dir itself). Links inside the dir are followed, in the
// parents and as the final element, through the FS's [os.Root]; a link that
// leaves the dir fails the call (os.Root's escape error), and so does a
// dangling link as the final element (fs.ErrExist). An existing name must be
// a regular file (EISDIR for a directory, an error for a FIFO, device or
// socket, which is never opened); it is overwritten in place and keeps its
// mode. A new file gets perm (less the umask), new dirs 0o755.
//
// Charges, all taken before anything is created or written: one entry per
// missing dir and one for a new file (all or nothing: [ErrEntries]), and the
// file's growth, len(data) minus its size as the FS knows it (all or
// nothing: [ErrQuota]). A rewrite that shrinks the file refunds the
// difference. When the write itself fails (an I/O error), what WriteFile
// created is removed and refunded, as if the guest had removed it; an
// existing file may then be partly overwritten. A refusal sets
// [FS.QuotaHit] or [FS.EntriesHit] as the guest's would.
//
// WriteFile's own descriptors are not counted against the open-files
// counter: it holds at most one (the file, while it writes) and closes it
// before returning (see the notes on descriptors at [FS]).
func (f *FS) WriteFile(name string, data []byte, perm fs.FileMode) error {
	p := strings.TrimLeft(name, "/")
	if p == "." || !fs.ValidPath(p) { // "" is not valid
		return &fs.PathError{Op: "write", Path: name, Err: fs.ErrInvalid}
	}
	for range 3 {
		err := f.writeFile(p, data, perm)
		if errors.Is(err, errRaced) {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "write", Path: name, Err: err}
		}
		return nil
	}
	return &fs.PathError{Op: "write", Path: name, Err: fs.ErrExist}
}

// writeFile is one attempt of WriteFile on p, a valid path. It returns
// errRaced, with nothing left behind, when a name it found free was created
// meanwhile.
func (f *FS) writeFile(p string, data []byte, perm fs.FileMode) error {
	// What is missing: parents (outermost first), then maybe the file.
	var missing []string
	exists := false
	parts := strings.Split(p, "/")
	for i := 1; i <= len(parts); i++ {
		sub := strings.Join(parts[:i], "/")
		fi, err := f.root.Stat(sub)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			for j := i; j < len(parts); j++ {
				missing = append(missing, strings.Join(parts[:j], "/"))
			}
		case err != nil:
			return err // an escape among them
		case i < len(parts) && !fi.IsDir():
			return syscall.ENOTDIR
		case i < len(parts):
			continue
		case fi.IsDir():
			return syscall.EISDIR
		case !fi.Mode().IsRegular():
			return errNotRegular
		default:
			exists = true
		}
		break
	}

	// Charge the new entries and, for a new file, all its bytes.
	newEntries := int64(len(missing))
	if !exists {
		newEntries++
	}
	if f.entries.take(newEntries, false) < newEntries {
		return ErrEntries
	}
	size := int64(len(data))
	var reserved int64 // bytes taken and not yet spent on growth
	if !exists && f.quota() {
		if reserved = f.bytes.take(size, false); reserved < size {
			f.entries.give(newEntries)
			return ErrQuota
		}
	}

	// Undo what was made so far, newest first, giving back its charges as
	// the guest's removal would; and what was charged but not made.
	var made []string
	createdFile := false
	undo := func(err error) error {
		f.bytes.give(reserved)
		f.entries.give(newEntries)
		if createdFile {
			f.Unlink(p)
		}
		for i := len(made) - 1; i >= 0; i-- {
			f.Rmdir(made[i]) // fails, and keeps its charge, if no longer empty
		}
		return err
	}

	for _, d := range missing {
		if err := f.root.Mkdir(d, 0o755); err != nil {
			if fi, e := f.root.Stat(d); errors.Is(err, fs.ErrExist) && e == nil && fi.IsDir() {
				// Made meanwhile by someone else: not ours to charge.
				f.entries.give(1)
				newEntries--
				continue
			}
			return undo(err)
		}
		made = append(made, d)
		newEntries--
	}

	flag := os.O_WRONLY | unix.O_NONBLOCK | unix.O_NOCTTY // never wait on a FIFO swapped in
	if exists {
		if errno := f.unshare(p); errno != 0 {
			return undo(errno)
		}
	} else {
		flag |= os.O_CREATE | os.O_EXCL // never through a link, never someone else's
	}
	osf, err := f.root.OpenFile(p, flag, perm&fs.ModePerm)
	if err != nil {
		if !exists && errors.Is(err, fs.ErrExist) {
			if fi, e := f.root.Stat(p); e == nil && fi.Mode().IsRegular() {
				err = errRaced // made meanwhile: start again, as a rewrite
			}
		}
		return undo(err)
	}
	fl := &file{f: osf, fs: f}
	if !exists {
		createdFile = true
		newEntries--
	}
	fi, err := osf.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		fl.close()
		return undo(err)
	}

	if f.quota() {
		err = f.quotaOverwrite(fl, data, &reserved)
	} else {
		err = fl.overwrite(data)
	}
	if cerr := fl.close(); err == nil {
		err = cerr // written, but maybe not stored: reported, kept
	} else {
		err = undo(err)
	}
	return err
}

// quotaOverwrite overwrites fl (a regular file) with data under its node's
// lock, charging growth beyond what *reserved holds (all or nothing) and
// refunding a shrink. It spends *reserved and gives back what is left.
func (f *FS) quotaOverwrite(fl *file, data []byte, reserved *int64) error {
	if errno := f.track(fl, false, nil); errno != 0 {
		return errno
	}
	n := fl.node
	if n == nil {
		return errNotRegular // cannot be: the descriptor was a regular file
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	size := int64(len(data))
	if extra := size - n.size - *reserved; extra > 0 {
		// A rewrite that grows the file (or a new file someone grew
		// meanwhile beyond what was reserved).
		got := f.bytes.take(extra, false)
		*reserved += got
		if got < extra {
			return ErrQuota
		}
	}
	err := fl.overwrite(data)
	newSize := size
	if err != nil {
		newSize = max(n.size, size) // what the write can have reached
		if fi, e := fl.f.Stat(); e == nil {
			newSize = min(fi.Size(), newSize)
		}
	}
	if grow := newSize - n.size; grow > 0 {
		*reserved -= grow // spent
	} else {
		f.bytes.give(-grow)
	}
	n.size = newSize
	f.bytes.give(*reserved)
	*reserved = 0
	return err
}

// overwrite makes the file's content data: written from offset 0, then
// truncated to its length, so that its size never exceeds the larger of the
// old and the new.
func (fl *file) overwrite(data []byte) error {
	if _, err := fl.f.WriteAt(data, 0); err != nil {
		return err
	}
	return fl.f.Truncate(int64(len(data)))
}
