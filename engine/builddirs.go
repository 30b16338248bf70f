package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// freeDirsPrefix starts the name of the dir under BuildsDir that holds
// the emptied build dirs a runner keeps for later jobs
// (Config.ReuseBuildDirs).
const freeDirsPrefix = ".free-"

// takeBuildDir makes dir, the build dir of a job, from a kept one if
// there is one, else creates it.
func (r *Runner) takeBuildDir(dir string) error {
	if r.cfg.ReuseBuildDirs {
		r.freeMu.Lock()
		var free string
		if n := len(r.freeDirs); n > 0 {
			free = r.freeDirs[n-1]
			r.freeDirs = r.freeDirs[:n-1]
		}
		r.freeMu.Unlock()
		if free != "" {
			if err := os.Rename(free, dir); err == nil {
				return nil
			}
			_ = os.RemoveAll(free)
		}
	}
	return os.MkdirAll(dir, 0o755)
}

// keepBuildDir empties a job's build dir and keeps it for a later job. It
// reports false, leaving the dir for removal, when it cannot.
func (r *Runner) keepBuildDir(dir string) bool {
	r.freeMu.Lock()
	full := len(r.freeDirs) >= r.cfg.Concurrency
	r.freeMu.Unlock()
	if full || emptyDir(dir) != nil {
		return false
	}
	r.freeMu.Lock()
	defer r.freeMu.Unlock()
	if len(r.freeDirs) >= r.cfg.Concurrency {
		return false
	}
	if r.freeParent == "" {
		// A dir of this runner's own: runners may share a builds dir.
		p, err := os.MkdirTemp(r.cfg.BuildsDir, freeDirsPrefix)
		if err != nil {
			return false
		}
		r.freeParent = p
	}
	r.freeSeq++
	free := filepath.Join(r.freeParent, strconv.Itoa(r.freeSeq))
	if err := os.Rename(dir, free); err != nil {
		return false
	}
	r.freeDirs = append(r.freeDirs, free)
	return true
}

// emptyDir removes what dir holds and gives it the mode of a new build
// dir; it fails if dir is not a directory or anything in it is left.
func emptyDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm() != 0o755 {
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
	}
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, n)))
	}
	return errors.Join(errs...)
}

// removeFreeDirs removes the build dirs kept for later jobs once the
// runner stops.
func (r *Runner) removeFreeDirs() {
	r.freeMu.Lock()
	parent := r.freeParent
	r.freeDirs, r.freeParent = nil, ""
	r.freeMu.Unlock()
	if parent == "" {
		return
	}
	if err := os.RemoveAll(parent); err != nil {
		r.log.Warn("removing the kept build dirs failed", "dir", parent, "error", err)
	}
}
