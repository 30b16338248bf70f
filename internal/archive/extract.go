package archive

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

var (
	// ErrUnsafe marks a path that would escape its directory: an archive
	// entry that is absolute or has a "..", backslash or NUL in its name,
	// lies under a symlink, or is a symlink whose target resolves outside
	// the directory; or a directory or file replaced by a symlink while it
	// was being opened.
	ErrUnsafe = errors.New("unsafe path")
	// ErrTooLarge marks an archive beyond its [Limits] (too many entries or
	// directories, or entries that declare or actually decompress to too
	// many bytes), or a path longer than 4096 bytes (PATH_MAX).
	ErrTooLarge = errors.New("archive too large")
	// ErrNotZip marks input that is not a readable zip archive.
	ErrNotZip = errors.New("not a zip archive")
	// ErrNotRegular marks a file that should be a regular file but is not.
	ErrNotRegular = errors.New("not a regular file")
)

// maxLinkTarget is the longest symlink target Extract accepts (Linux's
// PATH_MAX).
const maxLinkTarget = 4096

// Limits bound what Extract accepts. A zero or negative field stands for
// the value in [DefaultLimits], so a Limits can never be unbounded.
type Limits struct {
	// MaxFiles is the most entries (files, directories and symlinks) an
	// archive may have, and separately the most directories Extract may
	// create (entries imply their parent directories).
	MaxFiles int
	// MaxFileSize is the most bytes one entry may decompress to.
	MaxFileSize int64
	// MaxTotalSize is the most bytes all entries together may decompress
	// to.
	MaxTotalSize int64
	// Budget, if set, is charged for what Extract adds to the directory:
	// each new file's, link's and directory's name, and each file's
	// declared size, before it is created.
	Budget Budget
}

// Budget is what an extraction may add to a directory (a job's disk and
// entry limits).
type Budget interface {
	// Take reserves bytes and entries, or none of them and returns why.
	Take(bytes, entries int64) error
	// Give returns bytes and entries taken earlier (a replaced entry).
	Give(bytes, entries int64)
}

// DefaultLimits returns the limits for an archive from GitLab: 100,000
// entries, 5 GiB per entry, 10 GiB in all.
func DefaultLimits() Limits {
	return Limits{MaxFiles: 100_000, MaxFileSize: 5 << 30, MaxTotalSize: 10 << 30}
}

func (l Limits) orDefault() Limits {
	d := DefaultLimits()
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxTotalSize <= 0 {
		l.MaxTotalSize = d.MaxTotalSize
	}
	return l
}

// Extract extracts the zip archive r (size bytes) into dir, which must
// exist.
//
// Before writing anything, Extract checks every entry: its name must be
// relative, without "..", backslash or NUL, and at most 4096 bytes long; no
// entry may lie under a symlink entry; a symlink's target, resolved from the
// link's own directory, must stay in dir (it may not be absolute, nor have a
// ".." after a name); and the entry count and declared sizes must be within
// lim. A failed check is an error matching [ErrUnsafe] or [ErrTooLarge]
// that names the entry.
//
// Then it creates the entries through an [os.Root] on dir, so a symlink
// already in dir cannot redirect a write outside it; it refuses (with
// [ErrUnsafe]) to create anything under an existing symlink, and replaces an
// existing file or symlink of an entry's name rather than writing through
// it, as GitLab overwrites existing files (a non-empty directory in the way
// is an error). Regular files get the entry's permission bits (masked to
// 0o777, so never setuid) and modification time; directories are made
// accessible to their owner; existing directories are kept as they are.
// Other kinds of entries are skipped. Decompressed bytes are counted as they
// are written and extraction stops with [ErrTooLarge] past lim, whatever the
// headers declared; so does creating more than lim.MaxFiles directories.
//
// Input that is not a zip archive is an error matching [ErrNotZip]. On an
// error, entries already extracted stay in dir; a file being written when
// the error happened is removed. Extract stops when ctx is done.
func Extract(ctx context.Context, r io.ReaderAt, size int64, dir string, lim Limits) error {
	return extract(ctx, r, size, dir, lim, "")
}

// ExtractLinked is [Extract] with the regular files hard links to those of
// from rather than written anew: creating a file costs far more than
// linking one on some file systems (ext4: about 0.3 ms against 0.01), so a
// job's dependency extracted once can be given to many jobs. from must be
// what Extract made of the same archive, unchanged since (its files are
// trusted to be the archive's, not read again). Every check, the budget and
// the result's names, modes and times are those of Extract, but each file
// is one inode with from's: whoever may change the files must be kept from
// changing them in place (see sandboxfs.WithShared). A file that cannot be
// linked (missing from from, another file system, too many links) is
// written as Extract writes it.
func ExtractLinked(ctx context.Context, r io.ReaderAt, size int64, dir string, lim Limits, from string) error {
	return extract(ctx, r, size, dir, lim, from)
}

func extract(ctx context.Context, r io.ReaderAt, size int64, dir string, lim Limits, from string) error {
	lim = lim.orDefault()
	zr, err := zip.NewReader(r, size)
	// With GODEBUG zipinsecurepath=0 NewReader reports unsafe names; the
	// checks below report them with the entry's name.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("archive: extract: %w: %w", ErrNotZip, err)
	}
	entries, err := plan(zr, lim)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("archive: extract: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("archive: extract: %w", err)
	}
	defer root.Close()
	x := &extractor{
		root: root,
		lim:  lim,
		dirs: make(map[string]bool),
		buf:  make([]byte, copyBuffer),
		cr:   ctxReader{ctx: ctx},
	}
	defer x.closeDir()
	if from != "" {
		if x.from, err = os.OpenRoot(from); err != nil {
			return fmt.Errorf("archive: extract: %w", err)
		}
		defer x.from.Close()
		defer x.closeLinkDirs()
		// An entry whose name comes again is not what from holds.
		x.final = make(map[*zip.File]bool, len(entries))
		last := make(map[string]*zip.File, len(entries))
		for _, e := range entries {
			last[e.name] = e.f
		}
		for _, f := range last {
			x.final[f] = true
		}
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("archive: extract: %w", err)
		}
		if err := x.extract(e); err != nil {
			return fmt.Errorf("archive: extract %s: %w", quote(e.f.Name), err)
		}
	}
	return nil
}

// kind is what an entry creates.
type kind int

const (
	kindSkip kind = iota
	kindDir
	kindFile
	kindLink
)

// entry is a checked archive entry.
type entry struct {
	f    *zip.File
	name string // cleaned, slash-separated, relative to dir
	kind kind
	perm fs.FileMode
}

// plan checks the archive's entries against lim and returns them.
func plan(zr *zip.Reader, lim Limits) ([]entry, error) {
	if len(zr.File) > lim.MaxFiles {
		return nil, fmt.Errorf("archive: extract: %d entries, more than %d: %w", len(zr.File), lim.MaxFiles, ErrTooLarge)
	}
	entries := make([]entry, 0, len(zr.File))
	links := make(map[string]bool)
	var total uint64
	for _, f := range zr.File {
		e, err := checkEntry(f, lim)
		if err == nil && e.kind != kindSkip && e.kind != kindDir {
			if total += f.UncompressedSize64; total > uint64(lim.MaxTotalSize) {
				err = fmt.Errorf("entries declare more than %d bytes: %w", lim.MaxTotalSize, ErrTooLarge)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("archive: extract %s: %w", quote(f.Name), err)
		}
		if e.kind == kindLink {
			links[e.name] = true
		}
		entries = append(entries, e)
	}
	for _, e := range entries {
		for p := path.Dir(e.name); p != "."; p = path.Dir(p) {
			if links[p] {
				return nil, fmt.Errorf("archive: extract %s: under the symlink entry %s: %w", quote(e.f.Name), quote(p), ErrUnsafe)
			}
		}
	}
	return entries, nil
}

// checkEntry checks one entry's name, kind and declared size.
func checkEntry(f *zip.File, lim Limits) (entry, error) {
	name, err := entryName(f.Name)
	if err != nil {
		return entry{}, err
	}
	e := entry{f: f, name: name}
	mode := f.Mode()
	switch {
	case mode.IsDir():
		if name == "." {
			return e, nil // the directory itself
		}
		e.kind, e.perm = kindDir, mode.Perm()|0o700
		return e, nil
	case mode&fs.ModeSymlink != 0:
		e.kind = kindLink
	case mode.IsRegular():
		e.kind, e.perm = kindFile, mode.Perm()
	default:
		return e, nil // devices, pipes, sockets
	}
	if name == "." {
		return entry{}, fmt.Errorf("not a directory but named like dir itself: %w", ErrUnsafe)
	}
	if f.UncompressedSize64 > uint64(lim.MaxFileSize) {
		return entry{}, fmt.Errorf("declares %d bytes, more than %d: %w", f.UncompressedSize64, lim.MaxFileSize, ErrTooLarge)
	}
	if e.kind == kindLink {
		target, err := readTarget(f)
		if err != nil {
			return entry{}, err
		}
		if err := checkTarget(name, target); err != nil {
			return entry{}, err
		}
	}
	return e, nil
}

// entryName returns the cleaned form of an archive entry name, or an error
// matching ErrUnsafe if the name could point outside the directory.
func entryName(raw string) (string, error) {
	switch {
	case raw == "":
		return "", fmt.Errorf("empty name: %w", ErrUnsafe)
	case strings.ContainsAny(raw, "\x00\\"):
		return "", fmt.Errorf("backslash or NUL in name: %w", ErrUnsafe)
	case raw[0] == '/':
		return "", fmt.Errorf("absolute name: %w", ErrUnsafe)
	}
	for el := range strings.SplitSeq(raw, "/") {
		if el == ".." {
			return "", fmt.Errorf(`".." in name: %w`, ErrUnsafe)
		}
	}
	if len(raw) > maxPath {
		return "", fmt.Errorf("name longer than %d bytes: %w", maxPath, ErrTooLarge)
	}
	name := path.Clean(raw)
	if name != "." && !isLocal(name) {
		return "", fmt.Errorf("invalid name: %w", ErrUnsafe)
	}
	return name, nil
}

// readTarget reads the target of the symlink entry f.
func readTarget(f *zip.File) (string, error) {
	rc, err := f.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLinkTarget+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxLinkTarget {
		return "", fmt.Errorf("symlink target longer than %d bytes: %w", maxLinkTarget, ErrUnsafe)
	}
	return string(b), nil
}

// checkTarget checks that the target of the symlink name stays in the
// directory: it is relative, has ".." elements only at its start, and,
// resolved from the link's directory, does not leave the directory. A ".."
// after a name could climb out of a directory reached through another
// symlink, which a lexical check cannot see, so it is refused.
func checkTarget(name, target string) error {
	switch {
	case target == "":
		return fmt.Errorf("empty symlink target: %w", ErrUnsafe)
	case strings.ContainsAny(target, "\x00\\"):
		return fmt.Errorf("backslash or NUL in symlink target: %w", ErrUnsafe)
	case path.IsAbs(target):
		return fmt.Errorf("absolute symlink target: %w", ErrUnsafe)
	}
	leading := true
	for el := range strings.SplitSeq(target, "/") {
		switch el {
		case "..":
			if !leading {
				return fmt.Errorf(`".." after a name in symlink target: %w`, ErrUnsafe)
			}
		case "", ".":
		default:
			leading = false
		}
	}
	if to := path.Join(path.Dir(name), target); to == ".." || strings.HasPrefix(to, "../") {
		return fmt.Errorf("symlink target %s outside the directory: %w", quote(target), ErrUnsafe)
	}
	return nil
}

// extractor creates checked entries under root.
type extractor struct {
	root     *os.Root
	lim      Limits
	total    int64           // bytes written
	madeDirs int             // directories created
	dirs     map[string]bool // directories known to be directories, not symlinks
	buf      []byte
	cr       ctxReader
	w        writerOnly
	// last is a root on lastDir, the directory of the last entry.
	last    *os.Root
	lastDir string

	// With ExtractLinked: the directory files are linked from, and the
	// directories of the last link (from's, and dir's, both named by
	// linkDir).
	from             *os.Root
	linkSrc, linkDst *os.File
	linkDir          string
	final            map[*zip.File]bool // the last entry of each name
}

// writerOnly hides an *os.File's ReadFrom, so that io.CopyBuffer uses the
// extractor's buffer.
type writerOnly struct{ f *os.File }

func (w *writerOnly) Write(p []byte) (int, error) { return w.f.Write(p) }

func (x *extractor) extract(e entry) error {
	if e.kind == kindDir {
		return x.mkdirs(e.name, e.perm)
	}
	dir, base := path.Split(e.name)
	dir = path.Clean(dir)
	if err := x.mkdirs(dir, 0o755); err != nil {
		return err
	}
	parent, err := x.dirRoot(dir)
	if err != nil {
		return err
	}
	switch e.kind {
	case kindLink:
		target, err := readTarget(e.f)
		if err != nil {
			return err
		}
		if err := checkTarget(e.name, target); err != nil {
			return err
		}
		if x.total += int64(len(target)); x.total > x.lim.MaxTotalSize {
			return fmt.Errorf("more than %d bytes: %w", x.lim.MaxTotalSize, ErrTooLarge)
		}
		if err := x.clear(parent, e.name); err != nil {
			return err
		}
		if err := x.take(int64(len(target)), 1); err != nil {
			return err
		}
		return parent.Symlink(target, base)
	case kindFile:
		return x.file(parent, base, e)
	}
	return nil
}

// file extracts the regular file entry e as base in the directory parent.
func (x *extractor) file(parent *os.Root, base string, e entry) error {
	size := int64(e.f.UncompressedSize64)
	if x.final[e.f] && x.total+size <= x.lim.MaxTotalSize && size <= x.lim.MaxFileSize {
		err := x.link(parent, base, e)
		if errors.Is(err, fs.ErrExist) {
			if err := x.clear(parent, e.name); err != nil {
				return err
			}
			err = x.link(parent, base, e)
		}
		if err == nil {
			if err := x.take(size, 1); err != nil {
				parent.Remove(base)
				return err
			}
			x.total += size
			return nil
		}
		// Written instead, below.
	}
	if err := x.clear(parent, e.name); err != nil {
		return err
	}
	if err := x.take(size, 1); err != nil {
		return err
	}
	rc, err := e.f.Open()
	if err != nil {
		x.give(size, 1)
		return err
	}
	defer rc.Close()
	// O_EXCL: never open an existing file, nor follow a symlink that
	// appeared since clear.
	f, err := parent.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		x.give(size, 1)
		return err
	}
	allowed := min(x.lim.MaxFileSize, x.lim.MaxTotalSize-x.total)
	x.cr.r, x.w.f = rc, f
	lr := io.LimitedReader{R: &x.cr, N: allowed}
	if allowed < math.MaxInt64 {
		lr.N++
	}
	n, err := io.CopyBuffer(&x.w, &lr, x.buf)
	x.cr.r, x.w.f = nil, nil
	x.total += n
	switch {
	case err != nil:
	case n > x.lim.MaxFileSize:
		err = fmt.Errorf("more than %d bytes: %w", x.lim.MaxFileSize, ErrTooLarge)
	case n > allowed:
		err = fmt.Errorf("archive decompresses to more than %d bytes: %w", x.lim.MaxTotalSize, ErrTooLarge)
	default:
		err = f.Chmod(e.perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		parent.Remove(base)
		x.give(size, 1)
		return err
	}
	if !e.f.Modified.IsZero() {
		return parent.Chtimes(base, e.f.Modified, e.f.Modified)
	}
	return nil
}

// link makes base, in the directory parent, a hard link to the file of
// from the entry e, the last of its name, was extracted to. It fails with
// an error matching fs.ErrExist if base exists.
func (x *extractor) link(parent *os.Root, base string, e entry) error {
	dir := path.Dir(e.name)
	if x.linkSrc == nil || x.linkDir != dir {
		x.closeLinkDirs()
		src, err := x.from.Open(dir)
		if err != nil {
			return err
		}
		dst, err := parent.Open(".")
		if err != nil {
			src.Close()
			return err
		}
		x.linkSrc, x.linkDst, x.linkDir = src, dst, dir
	}
	// Without AT_SYMLINK_FOLLOW: from's file itself, never where a link
	// there would lead.
	return withFds(x.linkSrc, x.linkDst, func(src, dst int) error {
		return ignoringEINTR(func() error { return unix.Linkat(src, base, dst, base, 0) })
	})
}

func (x *extractor) closeLinkDirs() {
	if x.linkSrc != nil {
		x.linkSrc.Close()
		x.linkDst.Close()
		x.linkSrc, x.linkDst, x.linkDir = nil, nil, ""
	}
}

// withFds calls fn with the descriptors of a and b, without making them
// blocking as File.Fd does.
func withFds(a, b *os.File, fn func(a, b int) error) error {
	ac, err := a.SyscallConn()
	if err != nil {
		return err
	}
	bc, err := b.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = ac.Control(func(afd uintptr) {
		err := bc.Control(func(bfd uintptr) { ferr = fn(int(afd), int(bfd)) })
		if ferr == nil {
			ferr = err
		}
	})
	if ferr != nil {
		return ferr
	}
	return err
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != syscall.EINTR {
			return err
		}
	}
}

// dirRoot returns an os.Root on dir, a directory mkdirs has checked. The
// root stays open for the next entry in the same directory; closeDir
// closes it.
func (x *extractor) dirRoot(dir string) (*os.Root, error) {
	if dir == "." {
		return x.root, nil
	}
	if x.last != nil && x.lastDir == dir {
		return x.last, nil
	}
	x.closeDir()
	r, err := x.root.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	x.last, x.lastDir = r, dir
	return r, nil
}

func (x *extractor) closeDir() {
	if x.last != nil {
		x.last.Close()
		x.last, x.lastDir = nil, ""
	}
}

// clear removes whatever has the name p (in the directory parent), unless
// it is a directory with something in it, which is an error.
func (x *extractor) clear(parent *os.Root, p string) error {
	base := path.Base(p)
	fi, err := parent.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		delete(x.dirs, p)
		if x.lastDir == p || strings.HasPrefix(x.lastDir, p+"/") {
			x.closeDir()
		}
	}
	if err := parent.Remove(base); err != nil {
		return err
	}
	if x.lim.Budget != nil {
		var size int64
		if fi.Mode().IsRegular() {
			size = fi.Size()
		}
		x.lim.Budget.Give(size, 1)
	}
	return nil
}

// give returns what take charged for an entry that was not made.
func (x *extractor) give(size, entries int64) {
	if x.lim.Budget != nil {
		x.lim.Budget.Give(size, entries)
	}
}

// take charges the budget, if any, for a new entry of size bytes.
func (x *extractor) take(size, entries int64) error {
	if x.lim.Budget == nil {
		return nil
	}
	if err := x.lim.Budget.Take(size, entries); err != nil {
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return nil
}

// mkdirs makes sure that the directory p and its parents exist and are
// directories, not symlinks, creating what is missing (p with perm, parents
// with 0o755). It works down from the deepest directory already known,
// through an os.Root on each level, so that a deep path costs a few system
// calls per level rather than per level and ancestor.
func (x *extractor) mkdirs(p string, perm fs.FileMode) error {
	var missing []string // deepest first
	known := p
	for ; known != "." && !x.dirs[known]; known = path.Dir(known) {
		missing = append(missing, known)
	}
	if len(missing) == 0 {
		return nil
	}
	cur := x.root
	if known != "." {
		sub, err := x.root.OpenRoot(known)
		if err != nil {
			return err
		}
		cur = sub
	}
	defer func() {
		if cur != x.root {
			cur.Close()
		}
	}()
	for i := len(missing) - 1; i >= 0; i-- {
		q := missing[i]
		mode := fs.FileMode(0o755)
		if i == 0 {
			mode = perm
		}
		if err := x.mkdir(cur, q, mode); err != nil {
			return err
		}
		x.dirs[q] = true
		if i == 0 {
			break
		}
		next, err := cur.OpenRoot(path.Base(q))
		if err != nil {
			return err
		}
		if cur != x.root {
			cur.Close()
		}
		cur = next
	}
	return nil
}

// mkdir makes sure that p, a child of the directory r is opened on, is a
// directory and not a symlink, creating it with perm if it does not exist.
func (x *extractor) mkdir(r *os.Root, p string, perm fs.FileMode) error {
	base := path.Base(p)
	fi, err := r.Lstat(base)
	if errors.Is(err, fs.ErrNotExist) {
		if x.madeDirs++; x.madeDirs > x.lim.MaxFiles {
			return fmt.Errorf("more than %d directories: %w", x.lim.MaxFiles, ErrTooLarge)
		}
		if err := x.take(0, 1); err != nil {
			return err
		}
		err = r.Mkdir(base, perm)
		if err == nil {
			return r.Chmod(base, perm)
		}
		x.give(0, 1)
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
		fi, err = r.Lstat(base)
	}
	switch {
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s is a symlink: %w", quote(p), ErrUnsafe)
	case !fi.IsDir():
		return &fs.PathError{Op: "mkdir", Path: p, Err: syscall.ENOTDIR}
	}
	return nil
}
