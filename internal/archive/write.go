package archive

import (
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
)

// copyBuffer is the size of the buffer file contents are copied through.
const copyBuffer = 32 << 10

// WriteZip writes the named files (from Collect) under root into w as a zip
// archive.
//
// Regular files are stored deflated with their mode and modification time.
// Symlinks are stored as symlink entries whose content is the link target;
// they are never followed. A directory is stored as a directory entry
// ("name/"), which keeps an empty one. Names that are no longer there are
// skipped, as are other kinds of files. Everything is read through an
// [os.Root] on root, so nothing outside root is read even if a path
// component is replaced by a symlink meanwhile; a file replaced while it is
// being opened is an error matching [ErrUnsafe]. WriteZip stops when ctx is
// done, leaving w with a partial archive.
func WriteZip(ctx context.Context, w io.Writer, root string, files []string) error {
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("archive: write zip: %w", err)
	}
	defer r.Close()
	zw := zip.NewWriter(w)
	cr := &ctxReader{ctx: ctx}
	buf := make([]byte, copyBuffer)
	for _, name := range files {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("archive: write zip: %w", err)
		}
		if err := addFile(zw, r, name, cr, buf); err != nil {
			return fmt.Errorf("archive: write zip: %s: %w", quote(name), err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("archive: write zip: %w", err)
	}
	return nil
}

// addFile adds the file name under r to zw.
func addFile(zw *zip.Writer, r *os.Root, name string, cr *ctxReader, buf []byte) error {
	if !isLocal(name) {
		return fmt.Errorf("invalid name: %w", ErrUnsafe)
	}
	fi, err := r.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case fi.Mode().IsRegular():
		f, err := openRegular(r, name, fi)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		defer f.Close()
		hdr, err := zip.FileInfoHeader(fi)
		if err != nil {
			return err
		}
		hdr.Name = name
		hdr.Method = zip.Deflate
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		cr.r = f
		_, err = io.CopyBuffer(fw, cr, buf)
		return err
	case fi.IsDir():
		// An empty directory Collect listed: a directory entry.
		hdr, err := zip.FileInfoHeader(fi)
		if err != nil {
			return err
		}
		hdr.Name = name + "/"
		hdr.Method = zip.Store
		_, err = zw.CreateHeader(hdr)
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := r.Readlink(name)
		if err != nil {
			return err
		}
		hdr, err := zip.FileInfoHeader(fi)
		if err != nil {
			return err
		}
		hdr.Name = name
		hdr.Method = zip.Store
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		_, err = io.WriteString(fw, target)
		return err
	}
	return nil
}

// openRegular opens name under r for reading and checks that it is still
// the regular file fi describes. It opens without blocking, so that a FIFO
// swapped in cannot stall the caller.
func openRegular(r *os.Root, name string, fi fs.FileInfo) (*os.File, error) {
	f, err := r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	ofi, err := f.Stat()
	if err == nil && (!ofi.Mode().IsRegular() || fi != nil && !os.SameFile(fi, ofi)) {
		err = fmt.Errorf("file changed while opening it: %w", ErrUnsafe)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// WriteGzip writes one file under root to w as a gzip stream (GitLab's
// single-file gzip artifact format, e.g. junit reports); the gzip header
// Name is the file's base name.
//
// The file is read through an [os.Root] on root: a symlink to a file in
// root is followed, nothing outside root is read. Anything but a regular
// file is an error matching [ErrNotRegular]. The header Name is left empty
// if the base name cannot be represented (gzip names are Latin-1 and
// NUL-terminated). WriteGzip stops when ctx is done.
func WriteGzip(ctx context.Context, w io.Writer, root, file string) error {
	if !isLocal(file) {
		return fmt.Errorf("archive: write gzip %s: invalid name: %w", quote(file), ErrUnsafe)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("archive: write gzip: %w", err)
	}
	defer r.Close()
	f, err := r.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("archive: write gzip: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("archive: write gzip: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("archive: write gzip %s: %w", quote(file), ErrNotRegular)
	}
	gw := gzip.NewWriter(w)
	if base := path.Base(file); latin1(base) {
		gw.Name = base
	}
	gw.ModTime = fi.ModTime()
	if _, err := io.CopyBuffer(gw, &ctxReader{ctx: ctx, r: f}, make([]byte, copyBuffer)); err != nil {
		return fmt.Errorf("archive: write gzip %s: %w", quote(file), err)
	}
	if err := gw.Close(); err != nil {
		return fmt.Errorf("archive: write gzip %s: %w", quote(file), err)
	}
	return nil
}

// latin1 reports whether s can be a gzip header string.
func latin1(s string) bool {
	for _, c := range s {
		if c == 0 || c > 0xff {
			return false
		}
	}
	return true
}

// ctxReader reads from r until ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// maxQuoted bounds how much of a name an error quotes.
const maxQuoted = 200

// quote returns name quoted for an error message, shortened to maxQuoted
// bytes.
func quote(name string) string {
	if len(name) > maxQuoted {
		return fmt.Sprintf("%q...", name[:maxQuoted])
	}
	return fmt.Sprintf("%q", name)
}
