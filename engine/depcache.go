package engine

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/wasmrunner/wasmrunner/internal/archive"
)

// SharedFileGuard is a [Handler] that keeps its job from changing in place
// the files of the build dir that [Job.SharedFile] reports: it changes a
// private copy instead (engine/modules' WebAssembly handlers do, through
// sandboxfs.WithShared). With Config.LinkDependencies, only the jobs of
// such handlers get their dependencies' files as hard links.
type SharedFileGuard interface {
	Handler
	// GuardsSharedFiles marks the handler; it does nothing.
	GuardsSharedFiles()
}

// SharedFile reports whether the file with device dev and inode ino is
// shared with other jobs (Config.LinkDependencies): it must not be changed
// in place.
func (j *Job) SharedFile(dev, ino uint64) bool {
	if j.runner == nil {
		return false
	}
	return j.runner.deps.shared(dev, ino)
}

// depCache holds the dependencies' archives extracted once each, for
// Config.LinkDependencies.
type depCache struct {
	mu      sync.Mutex
	dir     string // under BuildsDir, made on first use
	entries map[int64]*depEntry
	inodes  map[[2]uint64]bool // the files of the extracted archives
}

// depEntry is one dependency's archive, extracted (or failed) once done is
// closed.
type depEntry struct {
	done chan struct{}
	dir  string
	err  error
}

func (c *depCache) shared(dev, ino uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inodes[[2]uint64{dev, ino}]
}

// extracted returns the dir that the archive of dependency id (r, size
// bytes) is extracted in, extracting it the first time. Another job
// extracting it meanwhile is waited for.
func (r *Runner) extracted(ctx context.Context, id int64, ra io.ReaderAt, size int64, lim archive.Limits) (string, error) {
	c := &r.deps
	c.mu.Lock()
	e, ok := c.entries[id]
	if !ok {
		if c.entries == nil {
			c.entries, c.inodes = map[int64]*depEntry{}, map[[2]uint64]bool{}
		}
		e = &depEntry{done: make(chan struct{})}
		c.entries[id] = e
	}
	if c.dir == "" && !ok {
		c.dir, e.err = os.MkdirTemp(r.cfg.BuildsDir, ".dependencies-")
	}
	dir := c.dir
	c.mu.Unlock()
	if ok {
		select {
		case <-e.done:
			return e.dir, e.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	defer close(e.done)
	if e.err != nil {
		c.forget(id)
		return "", e.err
	}
	to := filepath.Join(dir, strconv.FormatInt(id, 10))
	err := os.Mkdir(to, 0o700)
	if err == nil {
		lim.Budget = nil
		err = archive.Extract(ctx, ra, size, to, lim)
	}
	var inodes [][2]uint64
	if err == nil {
		inodes, err = regularInodes(to)
	}
	if err != nil {
		os.RemoveAll(to)
		e.err = fmt.Errorf("extracting for the jobs that need it: %w", err)
		if ctx.Err() != nil {
			c.forget(id) // not the archive's fault: the next job tries again
		}
		return "", e.err
	}
	c.mu.Lock()
	for _, k := range inodes {
		c.inodes[k] = true
	}
	c.mu.Unlock()
	e.dir = to
	return to, nil
}

// forget drops a failed entry, for the next job to try again.
func (c *depCache) forget(id int64) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// regularInodes lists the device and inode of each regular file under dir.
func regularInodes(dir string) ([][2]uint64, error) {
	var out [][2]uint64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no inode", p)
		}
		out = append(out, [2]uint64{uint64(st.Dev), uint64(st.Ino)})
		return nil
	})
	return out, err
}

// removeDependencies removes the extracted archives once the runner stops.
func (r *Runner) removeDependencies() {
	c := &r.deps
	c.mu.Lock()
	dir := c.dir
	c.dir, c.entries, c.inodes = "", nil, nil
	c.mu.Unlock()
	if dir == "" {
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		r.log.Warn("removing the extracted dependencies failed", "dir", dir, "error", err)
	}
}
