package journal

import (
	"bytes"
	"cmp"
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
	"time"
)

// File names in a partition.
const (
	partitionPrefix = "p-"
	lockName        = "lock"
	slotPrefix      = "slot-"
)

// slotSize is the size of a slot file: the largest entry, so that an
// entry is always written in place, without changing the file's size.
const slotSize = MaxEntrySize

// maxOpenSlots slot files stay open; the others are opened for each
// write. A runner holding thousands of waiting jobs would otherwise hold a
// descriptor per job for its journal alone, as many as the jobs' own
// (serve's warning about the descriptor limit counts one per job), and
// failed jobs with EMFILE at about 9,000 waiting jobs under a limit of
// 20,000. Opening costs microseconds against the fdatasync's fraction of
// a millisecond.
const maxOpenSlots = 64

// SyncDelay bounds how long an entry [Journal.Add] wrote waits before it
// is flushed to disk (fdatasync). Written, it survives the process's death
// at once (it is in the kernel's page cache); the flush is for the host's
// (power loss, a kernel crash). Flushing later, all the entries written
// meanwhile at once, spares each job a wait for the disk's cache flush,
// and jobs that end within the delay the flush altogether (their entry is
// removed before it is due).
const SyncDelay = time.Second

// Journal is this process's partition of a journal root: the entries of
// the jobs it runs. Create it with [Open]; its methods are safe for
// concurrent use.
//
// Entries are kept in slot files of a fixed size, reused: writing an
// entry overwrites a free slot in place, and the slots written are
// fdatasync'd together within [SyncDelay]. That costs a write and a flush
// of the disk's cache, not the file system journal commits of creating,
// renaming and removing files (a fifth of the time on ext4;
// docs/benchmarks.md). A new slot file is made (and fsync'd,
// with its directory) only when every slot is taken, so a partition ends
// up with about as many slots as jobs run at once.
type Journal struct {
	root, dir string

	mu     sync.Mutex
	lock   *os.File // holds the partition's flock
	closed bool
	slots  []*slot       // by index: slot-<i>
	free   []int         // free slots' indexes
	byJob  map[int64]int // the slot of each job's entry
	dirty  map[int]bool  // slots written since they were last synced
	timer  *time.Timer   // flushes the dirty slots; nil when none is due

	syncMu sync.Mutex // one flush at a time; taken before mu
}

// slot is one slot file of the partition.
type slot struct {
	path string
	f    *os.File // nil: opened for each write (see maxOpenSlots)
	used int      // bytes of the last entry written (to clear them)
}

// open returns the slot's file, opened if it is not kept open, and what
// to call when done with it.
func (s *slot) open() (*os.File, func(), error) {
	if s.f != nil {
		return s.f, func() {}, nil
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|syscallNoFollow, 0)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

// close closes the slot's file if it is kept open.
func (s *slot) close() {
	if s.f != nil {
		s.f.Close()
	}
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
		return &Journal{root: root, dir: dir, lock: f, byJob: map[int64]int{}, dirty: map[int]bool{}}, nil
	}
	return nil, fmt.Errorf("journal: could not make a partition in %s", root)
}

// Dir returns the partition's directory.
func (j *Journal) Dir() string { return j.dir }

// Add writes e and returns once it is written: it survives the process's
// death from then on, and the host's once it is flushed, within
// [SyncDelay] (or at [Journal.Sync] or [Journal.Close]). A slot file made
// for it (when every slot is taken) is synced at once. An entry of the same job
// is replaced: the new one is written into another slot first, so that a
// crash in the middle leaves one of the two whole. Writes of different
// jobs go on at once, each into its own slot.
func (j *Journal) Add(e Entry) error {
	data, err := Encode(e)
	if err != nil {
		return err
	}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return errors.New("journal: closed")
	}
	// Take a free slot, or the index of a new one.
	var s *slot
	i := len(j.slots)
	if n := len(j.free); n > 0 {
		i, j.free = j.free[n-1], j.free[:n-1]
		s = j.slots[i]
	} else {
		j.slots = append(j.slots, nil) // made below
	}
	j.mu.Unlock()

	fresh := s == nil // a new slot file is synced as it is made
	if s != nil {
		err = s.write(data)
	} else {
		s, err = j.newSlot(i, data)
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil {
		if j.slots[i] != nil && !j.closed {
			j.clearLocked(i) // back to the free ones, if it can be cleared
		}
		return fmt.Errorf("journal: writing the entry of job %d: %w", e.JobID, err)
	}
	j.slots[i] = s
	if j.closed { // closed meanwhile: the entry stays for Orphans
		err := s.sync()
		s.close()
		if err != nil {
			return fmt.Errorf("journal: syncing the entry of job %d: %w", e.JobID, err)
		}
		return nil
	}
	if !fresh {
		j.markDirtyLocked(i)
	}
	if old, ok := j.byJob[e.JobID]; ok {
		j.clearLocked(old)
	}
	j.byJob[e.JobID] = i
	return nil
}

// markDirtyLocked notes that slot i is to be synced, and has it synced
// within SyncDelay.
func (j *Journal) markDirtyLocked(i int) {
	j.dirty[i] = true
	if j.timer == nil {
		j.timer = time.AfterFunc(SyncDelay, func() { _ = j.Sync() })
	}
}

// Sync flushes to disk the entries written since the last flush. A slot
// that could not be synced is tried again at the next flush, which is
// then due within SyncDelay; the error names it. Adds go on meanwhile:
// the disk is waited for without the journal's lock.
func (j *Journal) Sync() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	slots := j.takeDirtyLocked()
	j.mu.Unlock()
	failed, err := syncSlots(slots)
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, i := range failed {
		j.markDirtyLocked(i)
	}
	return err
}

// takeDirtyLocked returns the dirty slots, no longer dirty, and stops the
// flush that was due.
func (j *Journal) takeDirtyLocked() map[int]*slot {
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	slots := make(map[int]*slot, len(j.dirty))
	for i := range j.dirty {
		if s := j.slots[i]; s != nil {
			slots[i] = s
		}
	}
	clear(j.dirty)
	return slots
}

// syncSlots syncs slots and returns the indexes of those it could not.
func syncSlots(slots map[int]*slot) (failed []int, err error) {
	var errs []error
	for i, s := range slots {
		if err := syncFile(s); err != nil {
			errs = append(errs, fmt.Errorf("journal: syncing %s: %w", s.path, err))
			failed = append(failed, i)
		}
	}
	return failed, errors.Join(errs...)
}

// syncFile syncs a slot; tests replace it to make it fail.
var syncFile = (*slot).sync

// sync flushes the slot's file to disk.
func (s *slot) sync() error {
	f, done, err := s.open()
	if err != nil {
		return err
	}
	defer done()
	return syncData(f)
}

// write overwrites the slot with data, clearing the rest of the last
// entry (not synced: see markDirtyLocked).
func (s *slot) write(data []byte) error {
	buf := data
	if s.used > len(data) {
		buf = append(slices.Clip(data), make([]byte, s.used-len(data))...)
	}
	f, done, err := s.open()
	if err != nil {
		return err
	}
	defer done()
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	s.used = len(data)
	return nil
}

// newSlot makes slot file i holding data, its whole size written (later
// entries then overwrite allocated blocks and never change its size),
// and syncs it and the directory.
func (j *Journal) newSlot(i int, data []byte) (*slot, error) {
	p := filepath.Join(j.dir, slotPrefix+strconv.Itoa(i))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, slotSize)
	copy(buf, data)
	_, err = f.Write(buf)
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = syncDir(j.dir)
	}
	if err != nil {
		f.Close()
		_ = os.Remove(p)
		return nil, err
	}
	if i >= maxOpenSlots {
		f.Close()
		f = nil
	}
	return &slot{path: p, f: f, used: len(data)}, nil
}

// clearLocked frees slot i, zeroing the entry it held (not synced: see
// the package doc).
func (j *Journal) clearLocked(i int) {
	s := j.slots[i]
	f, done, err := s.open()
	if err != nil {
		// The slot cannot be trusted to read as free: leave it taken.
		return
	}
	_, err = f.WriteAt(make([]byte, max(s.used, 1)), 0)
	done()
	if err != nil {
		return
	}
	s.used = 0
	j.free = append(j.free, i)
	// A cleared slot need not be flushed: a crash that loses the clearing
	// only makes the next start report a job that was reported (see the
	// package doc).
	delete(j.dirty, i)
	if len(j.dirty) == 0 && j.timer != nil {
		// Nothing left to flush: no wake-up for nothing.
		j.timer.Stop()
		j.timer = nil
	}
}

// Remove forgets the entry of a job (not synced: see the package doc).
// A job without an entry is not an error.
func (j *Journal) Remove(jobID int64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return errors.New("journal: closed")
	}
	if i, ok := j.byJob[jobID]; ok {
		delete(j.byJob, jobID)
		j.clearLocked(i)
	}
	return nil
}

// Close flushes the entries written and releases the partition: it is
// removed when it holds no entries, else left for [Orphans] (of the next
// start, or another process). The error is the flush's.
func (j *Journal) Close() error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	_, err := syncSlots(j.takeDirtyLocked())
	for _, s := range j.slots {
		if s != nil {
			s.close()
		}
	}
	if len(j.byJob) == 0 {
		removePartition(j.dir)
	}
	unlockFile(j.lock)
	return err
}

// removePartition removes a partition and everything in it.
func removePartition(dir string) {
	names, err := readNames(dir)
	if err != nil {
		return
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
	// Entries are the jobs the partition holds, one per job, by job id.
	Entries []Entry
	// Problems are entries that could not be read (each error names its
	// file); they were cleared, as nothing can be done with them.
	Problems []error

	mu    sync.Mutex
	slots map[int64][]string // the slot files of each job's entries
}

// Dir returns the partition's directory.
func (o *Orphan) Dir() string { return o.dir }

// Done forgets the entry of a job that was reported. Done and Close are
// safe for concurrent use.
func (o *Orphan) Done(jobID int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	for _, p := range o.slots[jobID] {
		errs = append(errs, clearSlot(p))
	}
	delete(o.slots, jobID)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// Close removes the partition if no entries are left in it and releases
// its lock.
func (o *Orphan) Close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.slots) == 0 {
		removePartition(o.dir)
	}
	unlockFile(o.lock)
}

// clearSlot zeroes the entry in a slot file.
func clearSlot(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|syscallNoFollow, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(make([]byte, slotSize), 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
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
	o := &Orphan{dir: dir, lock: f, slots: map[int64][]string{}}
	names, err := readNames(dir)
	if err != nil {
		unlockFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // its owner removed it as we locked it
		}
		return nil, fmt.Errorf("journal: %s: %w", dir, err)
	}
	byJob := map[int64]Entry{}
	for _, n := range names {
		if !strings.HasPrefix(n, slotPrefix) {
			continue
		}
		p := filepath.Join(dir, n)
		e, ok, err := readSlot(p)
		if err != nil {
			o.Problems = append(o.Problems, fmt.Errorf("journal: %s: %w", p, err))
			if cerr := clearSlot(p); cerr != nil {
				_ = os.Remove(p) // not a slot we can write: a link, a directory
			}
			continue
		}
		if !ok {
			continue // free
		}
		o.slots[e.JobID] = append(o.slots[e.JobID], p)
		// A job in two slots: a rewrite was cut short by the crash; the
		// later one (with the result) wins.
		if prev, dup := byJob[e.JobID]; !dup || prev.Result == "" {
			byJob[e.JobID] = e
		}
	}
	for _, e := range byJob {
		o.Entries = append(o.Entries, e)
	}
	slices.SortFunc(o.Entries, func(a, b Entry) int { return cmp.Compare(a.JobID, b.JobID) })
	return o, nil
}

// readSlot reads and decodes a slot file: a regular file of at most
// slotSize bytes, not a link. ok is false for a free slot (it starts with
// a zero byte).
func readSlot(p string) (e Entry, ok bool, err error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscallNoFollow, 0)
	if err != nil {
		return Entry{}, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Entry{}, false, err
	}
	if !fi.Mode().IsRegular() {
		return Entry{}, false, fmt.Errorf("%w: not a regular file", ErrCorrupt)
	}
	data, err := io.ReadAll(io.LimitReader(f, slotSize+1))
	if err != nil {
		return Entry{}, false, err
	}
	return decodeSlot(data)
}

// decodeSlot decodes the content of a slot file: an entry followed by
// zero bytes, or nothing (a free slot starts with a zero byte; ok is then
// false).
func decodeSlot(data []byte) (e Entry, ok bool, err error) {
	if len(data) > slotSize {
		return Entry{}, false, fmt.Errorf("%w: more than %d bytes", ErrCorrupt, slotSize)
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i]
	}
	if len(data) == 0 {
		return Entry{}, false, nil
	}
	e, err = Decode(data)
	return e, err == nil, err
}

// Entries returns the entries of every partition of root, live or not,
// for inspection (tests, an operator's tools): it takes no lock and
// changes nothing. Slots that cannot be read are left out.
func Entries(root string) ([]Entry, error) {
	parts, err := filepath.Glob(filepath.Join(root, partitionPrefix+"*"))
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, part := range parts {
		slots, err := filepath.Glob(filepath.Join(part, slotPrefix+"*"))
		if err != nil {
			return nil, err
		}
		for _, p := range slots {
			if e, ok, err := readSlot(p); err == nil && ok {
				out = append(out, e)
			}
		}
	}
	return out, nil
}
