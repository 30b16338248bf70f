package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
)

// freeDirsPrefix starts the name of the dirs under BuildsDir that hold
// the emptied dirs a runner keeps for later jobs (Config.ReuseBuildDirs).
const freeDirsPrefix = ".free-"

// dirPool holds emptied dirs of one kind (build dirs, or the jobs' dirs
// outside them) for later jobs.
type dirPool struct {
	perm   fs.FileMode
	mu     sync.Mutex
	dirs   []string
	parent string // a dir of BuildsDir of this runner's own, made on first use
	seq    int
}

// takeBuildDir makes dir, the build dir of a job, from a kept one if
// there is one, else creates it.
func (r *Runner) takeBuildDir(dir string) error { return r.takeDir(&r.freeBuilds, dir) }

// takeTmpDir is takeBuildDir for a job's dir outside its build dir.
func (r *Runner) takeTmpDir(dir string) error { return r.takeDir(&r.freeTmps, dir) }

func (r *Runner) takeDir(pool *dirPool, dir string) error {
	if r.cfg.ReuseBuildDirs {
		pool.mu.Lock()
		var free string
		if n := len(pool.dirs); n > 0 {
			free = pool.dirs[n-1]
			pool.dirs = pool.dirs[:n-1]
		}
		pool.mu.Unlock()
		if free != "" {
			err := os.Rename(free, dir)
			if errors.Is(err, fs.ErrNotExist) {
				// The parent is missing (the first job dir outside
				// build dirs).
				if os.MkdirAll(filepath.Dir(dir), 0o755) == nil {
					err = os.Rename(free, dir)
				}
			}
			if err == nil {
				return nil
			}
			_ = os.RemoveAll(free)
		}
	}
	return os.MkdirAll(dir, pool.perm)
}

// keepBuildDir empties a job's build dir and keeps it for a later job. It
// reports false, leaving the dir for removal, when it cannot.
func (r *Runner) keepBuildDir(dir string) bool { return r.keepDir(&r.freeBuilds, dir) }

// keepTmpDir is keepBuildDir for a job's dir outside its build dir.
func (r *Runner) keepTmpDir(dir string) bool { return r.keepDir(&r.freeTmps, dir) }

func (r *Runner) keepDir(pool *dirPool, dir string) bool {
	pool.mu.Lock()
	full := len(pool.dirs) >= r.cfg.Concurrency
	pool.mu.Unlock()
	if full || emptyDir(dir, pool.perm) != nil {
		return false
	}
	pool.mu.Lock()
	defer pool.mu.Unlock()
	if len(pool.dirs) >= r.cfg.Concurrency {
		return false
	}
	if pool.parent == "" {
		// A dir of this runner's own: runners may share a builds dir.
		p, err := os.MkdirTemp(r.cfg.BuildsDir, freeDirsPrefix)
		if err != nil {
			return false
		}
		pool.parent = p
	}
	pool.seq++
	free := filepath.Join(pool.parent, strconv.Itoa(pool.seq))
	if err := os.Rename(dir, free); err != nil {
		return false
	}
	pool.dirs = append(pool.dirs, free)
	return true
}

// emptyDir removes what dir holds and gives it perm, the mode of a new
// dir of its kind; it fails if dir is not a directory or anything in it is
// left.
func emptyDir(dir string, perm fs.FileMode) error {
	// One descriptor for the checks, the mode and the listing (not a
	// link, a directory), opened with the system call: os.OpenFile would
	// also try to register it with the network poller, for nothing.
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fs.FileMode(st.Mode)&fs.ModePerm != perm {
		if err := syscall.Fchmod(fd, uint32(perm)); err != nil {
			return &fs.PathError{Op: "chmod", Path: dir, Err: err}
		}
	}
	var names []string
	var buf [4096]byte
	for {
		n, err := syscall.ReadDirent(fd, buf[:])
		if err != nil {
			return &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, n)))
	}
	return errors.Join(errs...)
}

// removeFreeDirs removes the dirs kept for later jobs once the runner
// stops.
func (r *Runner) removeFreeDirs() {
	for _, pool := range []*dirPool{&r.freeBuilds, &r.freeTmps} {
		pool.mu.Lock()
		parent := pool.parent
		pool.dirs, pool.parent = nil, ""
		pool.mu.Unlock()
		if parent == "" {
			continue
		}
		if err := os.RemoveAll(parent); err != nil {
			r.log.Warn("removing the kept job dirs failed", "dir", parent, "error", err)
		}
	}
}
