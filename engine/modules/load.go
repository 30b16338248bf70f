package modules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/wasmrunner/wasmrunner/internal/units"
)

// Reading a modules dir. Everything in it is untrusted input, like a
// guest: a tenant may put a symlink to /dev/zero or to a file outside the
// dir there, a FIFO, a directory, or a file that keeps growing. So every
// read goes through an os.Root on the dir (links are followed only while
// they stay inside it), opens with O_NONBLOCK (a FIFO never blocks the
// open), requires a regular file (checked with fstat on the descriptor
// that is read), and reads through a limit: a file that grows past it
// while being read is refused, never read whole.

const (
	// maxManifestSize bounds a NAME.toml.
	maxManifestSize = 64 << 10
	// maxDirEntries bounds the entries read from a modules dir listing,
	// and maxModules the modules taken from it.
	maxDirEntries = 1 << 16
	maxModules    = 4096
)

// openRoot opens the modules dir as an os.Root. It stats the path first
// so that a FIFO in its place fails instead of blocking the open.
func openRoot(dir string) (*os.Root, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return os.OpenRoot(dir)
}

// listing is what a modules dir holds, by name only (nothing is opened).
type listing struct {
	// wasm and tomls are the stems of the *.wasm and *.toml entries,
	// whatever their type (special files are refused when loaded, so that
	// they are reported).
	wasm  []string
	tomls map[string]bool
	// odd are entries whose names are almost a module's or manifest's
	// (SHELL.WASM, shell.Toml): reported, not loaded.
	odd []string
	// cut: the listing stopped at a bound.
	cut bool
}

// tomlCase returns the stem of a manifest whose name differs from
// stem+".toml" by case only, or "".
func (ls *listing) tomlCase(stem string) string {
	for t := range ls.tomls {
		if t != stem && strings.EqualFold(t, stem) {
			return t
		}
	}
	return ""
}

// hasWasmCase reports whether a module's stem equals stem but for case.
func (ls *listing) hasWasmCase(stem string) bool {
	for _, w := range ls.wasm {
		if strings.EqualFold(w, stem) {
			return true
		}
	}
	return false
}

// listDir lists the modules dir, within its bounds.
func listDir(root *os.Root) (*listing, error) {
	ls := &listing{tomls: map[string]bool{}}
	d, err := root.OpenFile(".", os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	read := 0
	for read < maxDirEntries {
		ents, err := d.ReadDir(512)
		read += len(ents)
		for _, e := range ents {
			name := e.Name()
			if stem, ok := strings.CutSuffix(name, ".wasm"); ok && stem != "" {
				if len(ls.wasm) == maxModules {
					ls.cut = true
					return ls, nil
				}
				ls.wasm = append(ls.wasm, stem)
				continue
			}
			if stem, ok := strings.CutSuffix(name, ".toml"); ok && stem != "" {
				if len(ls.tomls) < maxModules {
					ls.tomls[stem] = true
				}
				continue
			}
			if lower := strings.ToLower(name); (strings.HasSuffix(lower, ".wasm") || strings.HasSuffix(lower, ".toml")) && len(ls.odd) < maxModules {
				ls.odd = append(ls.odd, name)
			}
		}
		if errors.Is(err, io.EOF) || len(ents) == 0 {
			return ls, nil
		}
		if err != nil {
			return ls, err
		}
	}
	ls.cut = true
	return ls, nil
}

// fileError is a file of the modules dir that cannot be used. Its message
// names the file (by its name in the dir) and says why, quoting nothing of
// its contents: it is safe to show to the tenant's jobs.
type fileError struct {
	msg string
	err error // the cause, for errors.Is; its text is not shown
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.err }

// Test hooks: readFile calls them, when set, after it stats a file and
// after it opens and fstats it, so that tests can change the file between.
var testHookStatted, testHookOpened func(name string)

// errTooLarge is wrapped by the errors of files over their size limit.
var errTooLarge = errors.New("file too large")

// readFile reads the regular file name of root, of at most limit bytes.
func readFile(root *os.Root, name string, limit int64) ([]byte, error) {
	fi, err := root.Stat(name)
	if err != nil {
		return nil, statError(root, name, err)
	}
	if err := checkRegular(name, fi, limit); err != nil {
		return nil, err
	}
	if testHookStatted != nil {
		testHookStatted(name)
	}
	// O_NONBLOCK: should name have become a FIFO since the stat, the open
	// does not wait for a writer (and the fstat below refuses it).
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, statError(root, name, err)
	}
	defer f.Close()
	fi, err = f.Stat()
	if err != nil {
		return nil, &fileError{msg: fmt.Sprintf("%s cannot be read", name), err: err}
	}
	if err := checkRegular(name, fi, limit); err != nil {
		return nil, err
	}
	if testHookOpened != nil {
		testHookOpened(name)
	}
	// Sized by fstat, read through the limit: a file that grows while it
	// is read costs at most limit+1 bytes before it is refused.
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, &fileError{msg: fmt.Sprintf("%s cannot be read", name), err: err}
	}
	if int64(buf.Len()) > limit {
		return nil, &fileError{msg: fmt.Sprintf("%s grew past the limit of %s while being read; refused", name, units.FormatSize(limit)), err: errTooLarge}
	}
	return buf.Bytes(), nil
}

// checkRegular refuses what is not a regular file of at most limit bytes.
func checkRegular(name string, fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return &fileError{msg: fmt.Sprintf("%s is %s, not a regular file; refused", name, fileKind(fi.Mode()))}
	}
	if fi.Size() > limit {
		return &fileError{msg: fmt.Sprintf("%s is %s, more than the limit of %s; refused unread", name, units.HumanSize(fi.Size()), units.FormatSize(limit)), err: errTooLarge}
	}
	return nil
}

// statError explains why name of root cannot be stat'ed or opened.
func statError(root *os.Root, name string, err error) error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if li, lerr := root.Lstat(name); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			return &fileError{msg: fmt.Sprintf("%s is a link to nothing; refused", name), err: err}
		}
		return &fileError{msg: fmt.Sprintf("%s disappeared while being loaded", name), err: err}
	case errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes from parent"):
		// os.Root's error for a path or link that leads out of it.
		return &fileError{msg: fmt.Sprintf("%s is a link that leads out of the modules dir; refused unread", name), err: err}
	case errors.Is(err, syscall.ELOOP):
		return &fileError{msg: fmt.Sprintf("%s is a loop of links; refused", name), err: err}
	case errors.Is(err, syscall.ENOTDIR):
		return &fileError{msg: fmt.Sprintf("%s is a link through something that is not a directory; refused", name), err: err}
	case errors.Is(err, fs.ErrPermission):
		return &fileError{msg: fmt.Sprintf("%s cannot be read: permission denied", name), err: err}
	}
	return &fileError{msg: fmt.Sprintf("%s cannot be read", name), err: err}
}

// fileKind names a file type for messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a link"
	}
	return "a special file"
}

// fileID identifies a version of a directory entry: what stat says of it,
// or why stat failed.
type fileID struct {
	mode         fs.FileMode
	size         int64
	mtime, ctime int64 // Unix nanoseconds
	ino, dev     uint64
	err          string
}

func idOf(fi fs.FileInfo, err error) fileID {
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fileID{err: "missing"}
		}
		return fileID{err: err.Error()}
	}
	id := fileID{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	id.ino, id.dev, id.ctime = sysID(fi)
	return id
}

// fileStamp identifies a version of a module and its manifest on disk: the
// entries themselves (links included) and what they lead to.
type fileStamp struct {
	wasmLink, wasm fileID
	tomlLink, toml fileID
	// tomlCase names a manifest whose name differs from the module's by
	// case only (which keeps it from loading), or "".
	tomlCase string
}

// stampOf stats NAME.wasm and NAME.toml through the root, without opening
// them.
func stampOf(root *os.Root, name string) fileStamp {
	var st fileStamp
	st.wasmLink = idOf(root.Lstat(name + ".wasm"))
	st.wasm = idOf(root.Stat(name + ".wasm"))
	st.tomlLink = idOf(root.Lstat(name + ".toml"))
	if st.tomlLink.err == "" {
		st.toml = idOf(root.Stat(name + ".toml"))
	}
	return st
}
