package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultCacheSize bounds a [Cache] made with size 0.
const DefaultCacheSize = 5 << 30

// Cache holds the runner's clone cache: one bare repository per project,
//
//	<dir>/project-<id>/lock      the project's lock file
//	<dir>/project-<id>/repo.git  the project's objects and refs
//	<dir>/project-<id>/modules/  its submodules' repositories
//
// never shared across projects (a submodule that is another project is
// fetched again for each project that uses it). A job of the project holds
// the project's lock while it fetches and checks out: in the process a
// per-project semaphore (waiting ends with the job's context), across
// processes that share the dir an flock on the lock file. Two jobs of one
// project at once take turns; jobs of other projects do not wait.
//
// The cache is bounded in bytes: after each use, the least recently used
// projects (by the lock file's modification time, touched at each use)
// whose lock is free are emptied until the cache fits its bound; the
// project just used goes last, so a project larger than the whole bound
// is emptied after its job checked out. A repository that cannot be read
// is emptied and fetched again.
type Cache struct {
	dir string
	max int64

	mu    sync.Mutex
	locks map[int64]chan struct{}
	// evicting serializes evictions.
	evicting sync.Mutex
}

// NewCache returns the cache in dir, bounded to maxBytes
// ([DefaultCacheSize] when 0 or less).
func NewCache(dir string, maxBytes int64) *Cache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheSize
	}
	return &Cache{dir: dir, max: maxBytes, locks: make(map[int64]chan struct{})}
}

// Dir returns the cache's directory.
func (c *Cache) Dir() string { return c.dir }

// projectDir returns the dir of project id.
func (c *Cache) projectDir(id int64) string {
	return filepath.Join(c.dir, "project-"+strconv.FormatInt(id, 10))
}

// held is a project's lock, held.
type held struct {
	c       *Cache
	id      int64
	dir     string
	sem     chan struct{}
	unflock func()
}

// lock takes project id's lock, waiting for it until ctx ends; waiting
// is called once if the lock is taken by another job.
func (c *Cache) lock(ctx context.Context, id int64, waiting func()) (*held, error) {
	c.mu.Lock()
	sem, ok := c.locks[id]
	if !ok {
		sem = make(chan struct{}, 1)
		c.locks[id] = sem
	}
	c.mu.Unlock()
	select {
	case sem <- struct{}{}:
	default:
		waiting()
		waiting = func() {}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	h := &held{c: c, id: id, dir: c.projectDir(id), sem: sem}
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		<-sem
		return nil, err
	}
	unflock, err := flockWait(ctx, filepath.Join(h.dir, "lock"), waiting)
	if err != nil {
		<-sem
		return nil, err
	}
	h.unflock = unflock
	now := time.Now()
	_ = os.Chtimes(filepath.Join(h.dir, "lock"), now, now)
	return h, nil
}

func (h *held) unlock() {
	h.unflock()
	<-h.sem
}

// empty removes the project's repositories (not its lock file).
func (h *held) empty() error {
	return emptyProject(h.dir)
}

func emptyProject(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Name() != "lock" {
			errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// project is a project dir of the cache, for eviction.
type project struct {
	id   int64
	dir  string
	size int64
	used time.Time
	last bool // the project just used: evicted last
}

// evict empties the least recently used projects until the cache fits its
// bound; current, the project just used, goes last. It returns the ids
// of the projects it emptied.
func (c *Cache) evict(current int64) []int64 {
	c.evicting.Lock()
	defer c.evicting.Unlock()
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return nil
	}
	var projects []project
	var total int64
	for _, e := range entries {
		idStr, ok := strings.CutPrefix(e.Name(), "project-")
		id, err := strconv.ParseInt(idStr, 10, 64)
		if !ok || err != nil || !e.IsDir() {
			continue
		}
		p := project{id: id, dir: filepath.Join(c.dir, e.Name()), last: id == current}
		if fi, err := os.Stat(filepath.Join(p.dir, "lock")); err == nil {
			p.used = fi.ModTime()
		}
		p.size = dirSize(p.dir)
		total += p.size
		projects = append(projects, p)
	}
	if total <= c.max {
		return nil
	}
	slices.SortFunc(projects, func(a, b project) int {
		switch {
		case a.last != b.last:
			if a.last {
				return 1
			}
			return -1
		default:
			return a.used.Compare(b.used)
		}
	})
	var evicted []int64
	for _, p := range projects {
		if total <= c.max {
			break
		}
		if p.size == 0 {
			continue
		}
		h, ok := c.tryLock(p.id)
		if !ok {
			continue // a job uses it
		}
		if err := h.empty(); err == nil {
			total -= p.size
			evicted = append(evicted, p.id)
		}
		h.unlock()
	}
	return evicted
}

// tryLock takes project id's lock if it is free.
func (c *Cache) tryLock(id int64) (*held, bool) {
	c.mu.Lock()
	sem, ok := c.locks[id]
	if !ok {
		sem = make(chan struct{}, 1)
		c.locks[id] = sem
	}
	c.mu.Unlock()
	select {
	case sem <- struct{}{}:
	default:
		return nil, false
	}
	h := &held{c: c, id: id, dir: c.projectDir(id), sem: sem}
	unflock, ok := flockTry(filepath.Join(h.dir, "lock"))
	if !ok {
		<-sem
		return nil, false
	}
	h.unflock = unflock
	return h, true
}

// dirSize returns the bytes of the regular files under dir, not
// following symlinks.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// errLocked is flock's answer for a lock held elsewhere.
var errLocked = errors.New("locked")

// flockWait takes an exclusive flock on file, polling until ctx ends.
func flockWait(ctx context.Context, file string, waiting func()) (func(), error) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		unlock, err := flock(file)
		if !errors.Is(err, errLocked) {
			if err != nil {
				return nil, fmt.Errorf("locking the project's cached repository: %w", err)
			}
			return unlock, nil
		}
		waiting()
		waiting = func() {}
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

func flockTry(file string) (func(), bool) {
	unlock, err := flock(file)
	return unlock, err == nil
}
