package journal

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// File names in a partition.
const (
	partitionPrefix = "p-"
	lockName        = "lock"
	entryPrefix     = "job-"
	tmpPrefix       = ".tmp-"
)

// Journal is this process's partition of a journal root: the entries of
// the jobs it runs. Create it with [Open]; its methods are safe for
// concurrent use.
type Journal struct {
	root, dir string

	mu     sync.Mutex
	lock   *os.File // holds the partition's flock
	closed bool
}

// Open creates the root (0700) if need be and a new partition in it,
// locked by this process until [Journal.Close].
func Open(root string) (*Journal, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	for range 10 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		dir := filepath.Join(root, partitionPrefix+hex.EncodeToString(b[:]))
		if err := os.Mkdir(dir, 0o700); err != nil {
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			return nil, fmt.Errorf("journal: %w", err)
		}
		// O_EXCL: a scan that found the directory without its lock file
		// may have made one; the partition is then its, and empty.
		f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			_ = os.Remove(dir)
			return nil, fmt.Errorf("journal: %w", err)
		}
		if err := lockFile(f); err != nil {
			f.Close()
			if errors.Is(err, errLocked) {
				continue
			}
			return nil, fmt.Errorf("journal: locking %s: %w", dir, err)
		}
		// The partition must survive a crash for its entries to be found.
		if err := syncDir(root); err != nil {
			unlockFile(f)
			_ = os.Remove(f.Name())
			_ = os.Remove(dir)
			return nil, fmt.Errorf("journal: %w", err)
		}
		return &Journal{root: root, dir: dir, lock: f}, nil
	}
	return nil, fmt.Errorf("journal: could not make a partition in %s", root)
}

// Dir returns the partition's directory.
func (j *Journal) Dir() string { return j.dir }

// Add writes e, replacing the entry of the same job if there is one; it
// returns once the entry is on disk (file and directory fsync'd).
func (j *Journal) Add(e Entry) error {
	data, err := Encode(e)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return errors.New("journal: closed")
	}
	if err := writeEntry(j.dir, e.JobID, data); err != nil {
		return fmt.Errorf("journal: writing the entry of job %d: %w", e.JobID, err)
	}
	return nil
}

// Remove deletes the entry of a job (not fsync'd: see the package doc).
// A missing entry is not an error.
func (j *Journal) Remove(jobID int64) error {
	if err := os.Remove(filepath.Join(j.dir, entryName(jobID))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Close releases the partition: it is removed when it holds no entries,
// else left for [Orphans] (of the next start, or another process).
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	removePartition(j.dir)
	unlockFile(j.lock)
	return nil
}

// entryName is the file name of a job's entry.
func entryName(jobID int64) string { return entryPrefix + strconv.FormatInt(jobID, 10) }

// writeEntry writes data as the entry of jobID in dir: a temporary file,
// fsync'd, renamed over the entry, then the directory fsync'd.
func writeEntry(dir string, jobID int64, data []byte) error {
	tmp := filepath.Join(dir, tmpPrefix+entryName(jobID))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, entryName(jobID)))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// removePartition removes a partition that holds no entries (and no
// files but its lock and leftovers of interrupted writes).
func removePartition(dir string) {
	names, err := readNames(dir)
	if err != nil {
		return
	}
	for _, n := range names {
		if strings.HasPrefix(n, entryPrefix) {
			return
		}
	}
	for _, n := range names {
		if n != lockName {
			_ = os.Remove(filepath.Join(dir, n))
		}
	}
	_ = os.Remove(filepath.Join(dir, lockName))
	_ = os.Remove(dir)
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Orphan is a partition of a process that is gone, locked by the caller
// of [Orphans] until [Orphan.Close].
type Orphan struct {
	dir  string
	lock *os.File
	// Entries are the jobs the partition holds, by job id.
	Entries []Entry
	// Problems are entries that could not be read (each error names its
	// file); they were removed, as nothing can be done with them.
	Problems []error
}

// Dir returns the partition's directory.
func (o *Orphan) Dir() string { return o.dir }

// Done removes the entry of a job that was reported.
func (o *Orphan) Done(jobID int64) error {
	if err := os.Remove(filepath.Join(o.dir, entryName(jobID))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Close removes the partition if no entries are left in it and releases
// its lock.
func (o *Orphan) Close() {
	removePartition(o.dir)
	unlockFile(o.lock)
}

// Orphans returns the partitions of root that no process holds, each
// locked by the caller (who must Close them), with their entries. A
// missing root is no orphans. Partitions that cannot be read are skipped;
// the error says why.
func Orphans(root string) ([]*Orphan, error) {
	names, err := readNames(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	var out []*Orphan
	var errs []error
	for _, n := range names {
		if !strings.HasPrefix(n, partitionPrefix) {
			continue
		}
		o, err := takeOrphan(filepath.Join(root, n))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if o != nil {
			out = append(out, o)
		}
	}
	return out, errors.Join(errs...)
}

// takeOrphan locks the partition dir if no process holds it and reads
// its entries; nil when it is held (or gone meanwhile).
func takeOrphan(dir string) (*Orphan, error) {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return nil, nil // gone, or not ours to read (a link, a file)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|syscallNoFollow, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // removed meanwhile
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %s: %w", dir, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, nil // a live process's
		}
		return nil, fmt.Errorf("journal: locking %s: %w", dir, err)
	}
	o := &Orphan{dir: dir, lock: f}
	names, err := readNames(dir)
	if err != nil {
		unlockFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // its owner removed it as we locked it
		}
		return nil, fmt.Errorf("journal: %s: %w", dir, err)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		switch {
		case strings.HasPrefix(n, tmpPrefix):
			_ = os.Remove(p) // an interrupted write; the entry before it stands
		case strings.HasPrefix(n, entryPrefix):
			e, err := readEntry(p)
			if err == nil && entryName(e.JobID) != n {
				err = fmt.Errorf("%w: it is job %d's", ErrCorrupt, e.JobID)
			}
			if err != nil {
				o.Problems = append(o.Problems, fmt.Errorf("journal: %s: %w", p, err))
				_ = os.Remove(p)
				continue
			}
			o.Entries = append(o.Entries, e)
		}
	}
	slices.SortFunc(o.Entries, func(a, b Entry) int { return int(min(max(a.JobID-b.JobID, -1), 1)) })
	return o, nil
}

// readEntry reads and decodes one entry file: a regular file of at most
// MaxEntrySize bytes, not a link.
func readEntry(p string) (Entry, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscallNoFollow, 0)
	if err != nil {
		return Entry{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Entry{}, err
	}
	if !fi.Mode().IsRegular() {
		return Entry{}, fmt.Errorf("%w: not a regular file", ErrCorrupt)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxEntrySize+1))
	if err != nil {
		return Entry{}, err
	}
	return Decode(data)
}
