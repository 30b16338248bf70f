package ocisource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// The cache of a runner entry (Options.CacheDir):
//
//	lock                     flock: one pull, swap or clean-up at a time (across processes)
//	state.json               each reference's last good digest: a restart serves it while the registry is down
//	blobs/<alg>/<hex>        verified blobs (manifests, indexes, layers), by digest, read-only
//	blobs/.tmp-*             a blob being fetched and verified
//	versions/<alg>-<hex>/    the files of one artifact (by its manifest's or index's digest): a modules dir
//	versions/<alg>-<hex>.blobs  the digests of the blobs that version was made of
//	versions/<alg>-<hex>.lock   flock, shared while a source serves the version
//	versions/.tmp-*          a version being written (renamed into place when complete)
//	live/<id>                symlink to ../versions/<alg>-<hex>: one source's modules dir (the registry's Dir)
//	live/<id>.lock           flock, exclusive while that source runs
//
// A version dir is never changed once renamed into place: a swap points
// the source's link at another one with a rename, so a reload of the
// modules registry reads one version whole. After a swap (and the reload),
// the versions no source holds, the links no source holds and the blobs
// no remaining version was made of are removed. Removing the whole dir
// while no wasmrunner runs is safe: artifacts are pulled anew.

const (
	lockName  = "lock"
	stateName = "state.json"
	// maxStateRefs bounds the references state.json remembers.
	maxStateRefs = 64
)

// cache is the on-disk side of a [Source].
type cache struct{ dir string }

func (c cache) path(elem ...string) string { return filepath.Join(append([]string{c.dir}, elem...)...) }

func (c cache) init() error {
	for _, d := range []string{"blobs", "versions", "live"} {
		if err := os.MkdirAll(c.path(d), 0o700); err != nil {
			return err
		}
	}
	return nil
}

// blobPath is where a verified blob is kept.
func (c cache) blobPath(d digest.Digest) string {
	return c.path("blobs", d.Algorithm().String(), d.Encoded())
}

// versionName is the dir name of the version an artifact digest names.
func versionName(d digest.Digest) string { return d.Algorithm().String() + "-" + d.Encoded() }

// hasBlob says whether the verified blob d of size bytes is cached.
func (c cache) hasBlob(d digest.Digest, size int64) bool {
	fi, err := os.Lstat(c.blobPath(d))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// readBlob reads a cached blob of at most limit bytes.
func (c cache) readBlob(d digest.Digest, limit int64) ([]byte, error) {
	f, err := os.Open(c.blobPath(d))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("cached blob %s is larger than %d bytes", d, limit)
	}
	return data, err
}

// putBlob copies r, which verifies what it reads, into the cache as blob
// d; verify is called after the copy and before the blob is renamed into
// place. Nothing is left behind on error.
func (c cache) putBlob(d digest.Digest, r io.Reader, verify func() error) error {
	dir := filepath.Dir(c.blobPath(d))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(c.path("blobs"), ".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, removes nothing
	_, err = io.Copy(f, r)
	if err == nil {
		err = verify()
	}
	if err == nil {
		err = f.Chmod(0o444)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, c.blobPath(d))
}

// file is a file of an artifact: its name in the modules dir and its blob.
type file struct {
	name string
	blob digest.Digest
	size int64
}

// materialize writes the version of artifact d (its files, made of the
// cached blobs) unless it is there already; blobs lists every blob it was
// made of, for the clean-up.
func (c cache) materialize(d digest.Digest, files []file, blobs []digest.Digest) error {
	name := versionName(d)
	if fi, err := os.Lstat(c.path("versions", name)); err == nil && fi.IsDir() {
		return nil
	}
	var list strings.Builder
	for _, b := range blobs {
		list.WriteString(b.String() + "\n")
	}
	if err := writeAtomic(c.path("versions", name+".blobs"), []byte(list.String())); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(c.path("versions"), ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // after the rename, removes nothing
	for _, f := range files {
		if err := copyFile(c.blobPath(f.blob), filepath.Join(tmp, f.name), f.size); err != nil {
			return fmt.Errorf("writing %s: %w", f.name, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.path("versions", name)); err != nil {
		return err
	}
	return syncDir(c.path("versions"))
}

// copyFile copies the cached blob src (of size bytes) to a new file dst.
func copyFile(src, dst string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(in, size+1))
	if err == nil && n != size {
		err = fmt.Errorf("the cached blob has %d bytes, not %d", n, size)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeAtomic replaces path with data.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// hasVersion says whether the version of artifact d is complete on disk.
func (c cache) hasVersion(d digest.Digest) bool {
	fi, err := os.Lstat(c.path("versions", versionName(d)))
	return err == nil && fi.IsDir()
}

// link points the live link id at the version of d, by a rename.
func (c cache) link(id string, d digest.Digest) error {
	tmp := c.path("live", id+".tmp")
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join("..", "versions", versionName(d)), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.path("live", id)); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// flock takes a lock on path (created if missing), waiting until ctx ends.
func flock(ctx context.Context, path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// tryFlock takes an exclusive lock on path without waiting; nil if
// another holds it (or the path cannot be opened).
func tryFlock(path string) *os.File {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		f.Close()
		return nil
	}
	return f
}

// state is state.json: each reference's last good digest.
type state struct {
	Refs map[string]digest.Digest `json:"refs"`
}

func (c cache) readState() state {
	var st state
	if data, err := os.ReadFile(c.path(stateName)); err == nil && len(data) < 1<<20 {
		_ = json.Unmarshal(data, &st)
	}
	if st.Refs == nil {
		st.Refs = map[string]digest.Digest{}
	}
	return st
}

// remember records d as ref's last good digest (under the cache lock).
func (c cache) remember(ref string, d digest.Digest) error {
	st := c.readState()
	st.Refs[ref] = d
	for r, v := range st.Refs {
		if len(st.Refs) <= maxStateRefs {
			break
		}
		if r != ref && !c.hasVersion(v) {
			delete(st.Refs, r)
		}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeAtomic(c.path(stateName), data)
}

// clean removes what no source holds (under the cache lock): unfinished
// temporary files, versions and links no source holds, and blobs no
// remaining version was made of. It returns how many versions it removed.
func (c cache) clean() (removed int, err error) {
	var errs []error
	for _, d := range []string{"blobs", "versions", "live"} {
		ents, err := os.ReadDir(c.path(d))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasSuffix(e.Name(), ".tmp") {
				// Nothing is being written while the cache lock is held.
				errs = append(errs, os.RemoveAll(c.path(d, e.Name())))
			}
		}
	}
	// Links whose source is gone.
	ents, _ := os.ReadDir(c.path("live"))
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok {
			if _, err := os.Lstat(c.path("live", e.Name()+".lock")); errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, os.Remove(c.path("live", e.Name())))
			}
			continue
		}
		if f := tryFlock(c.path("live", e.Name())); f != nil {
			errs = append(errs, os.Remove(c.path("live", id)), os.Remove(c.path("live", e.Name())))
			f.Close()
		}
	}
	// Versions no source holds.
	ents, _ = os.ReadDir(c.path("versions"))
	keep := map[digest.Digest]bool{}
	blobLists := 0
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		lock := c.path("versions", e.Name()+".lock")
		if _, err := os.Lstat(lock); errors.Is(err, fs.ErrNotExist) {
			if f, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
				f.Close()
			}
		}
		if f := tryFlock(lock); f != nil {
			errs = append(errs, os.RemoveAll(c.path("versions", e.Name())))
			os.Remove(c.path("versions", e.Name()+".blobs"))
			os.Remove(lock)
			f.Close()
			removed++
			continue
		}
		data, err := os.ReadFile(c.path("versions", e.Name()+".blobs"))
		if err != nil {
			blobLists = -1 // unknown: keep every blob
			continue
		}
		if blobLists >= 0 {
			blobLists++
		}
		for _, line := range strings.Fields(string(data)) {
			keep[digest.Digest(line)] = true
		}
	}
	if blobLists < 0 {
		return removed, errors.Join(errs...)
	}
	// Blobs no remaining version was made of.
	algs, _ := os.ReadDir(c.path("blobs"))
	for _, a := range algs {
		if !a.IsDir() || strings.HasPrefix(a.Name(), ".") {
			continue
		}
		blobs, _ := os.ReadDir(c.path("blobs", a.Name()))
		for _, b := range blobs {
			if !keep[digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), b.Name())] {
				errs = append(errs, os.Remove(c.path("blobs", a.Name(), b.Name())))
			}
		}
	}
	return removed, errors.Join(errs...)
}
