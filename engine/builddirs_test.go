package engine_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// emptyBuildDir checks that a job starts with an empty build dir of its
// own, BuildsDir/<id>, that CI_PROJECT_DIR names.
func emptyBuildDir(job *engine.Job, buildsDir string) error {
	dir := job.BuildDir()
	if want := filepath.Join(buildsDir, strconv.FormatInt(job.ID(), 10)); dir != want {
		return fmt.Errorf("build dir %s, want %s", dir, want)
	}
	if v, _ := job.Variable("CI_PROJECT_DIR"); v.Value != dir {
		return fmt.Errorf("CI_PROJECT_DIR = %q", v.Value)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		return fmt.Errorf("build dir mode %v", fi.Mode())
	}
	names, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("build dir holds %v", names)
	}
	return nil
}

// With ReuseBuildDirs a job's build dir is emptied and given to the next
// job: a job never sees an earlier job's files, nor the mode it left its
// dir in, and removing what it left does not follow its symbolic links.
func TestReusedBuildDirIsEmpty(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside.txt")
	if err := os.WriteFile(outside, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var first os.FileInfo
	var buildsDir string
	h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
		if err := emptyBuildDir(job, buildsDir); err != nil {
			return err
		}
		dir := job.BuildDir()
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if first == nil {
			first = fi
		} else if !os.SameFile(first, fi) {
			return errors.New("the build dir was not reused")
		}
		if data, err := os.ReadFile(outside); err != nil || string(data) != "keep" {
			return fmt.Errorf("the file a link pointed to: %q, %v", data, err)
		}
		// The job's dir outside its build dir (file variables, scratch)
		// starts as its own too.
		scratch, err := job.ScratchDir()
		if err != nil {
			return err
		}
		if names, err := os.ReadDir(filepath.Dir(scratch)); err != nil || len(names) != 2 {
			return fmt.Errorf("the job's own dir holds %v, %v; want its file variables and scratch dirs", names, err)
		}
		if names, err := os.ReadDir(scratch); err != nil || len(names) != 0 {
			return fmt.Errorf("scratch dir holds %v, %v", names, err)
		}
		if data, err := os.ReadFile(filepath.Join(job.FileVariablesDir(), "CONFIG")); err != nil || string(data) != job.Name() {
			return fmt.Errorf("file variable: %q, %v", data, err)
		}
		if err := os.WriteFile(filepath.Join(scratch, "left-over"), nil, 0o600); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Join(dir, "sub", "deeper"), 0o755); err != nil {
			return err
		}
		for _, f := range []string{"top.txt", "sub/deeper/file.txt", ".hidden"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte("left over"), 0o444); err != nil {
				return err
			}
		}
		if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
			return err
		}
		if err := os.Symlink(filepath.Dir(outside), filepath.Join(dir, "dirlink")); err != nil {
			return err
		}
		return os.Chmod(dir, 0o700)
	}), func(c *engine.Config) {
		c.Concurrency = 1
		c.ReuseBuildDirs = true
	})
	buildsDir = h.cfg.BuildsDir
	var ids []int64
	for i := range 3 {
		name := fmt.Sprint("job-", i)
		ids = append(ids, h.srv.Enqueue(gitlabtest.NewJob(name).FileVar("CONFIG", name)))
	}
	h.start()
	for _, id := range ids {
		if rec := h.wait(id); rec.State != gitlab.StateSuccess {
			t.Fatalf("job %d: %s\n%s", id, rec.State, rec.Trace)
		}
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("the file a job's link pointed to: %v", err)
	}
}

// A build dir is not reused when a job's handler may still hold it: a
// step that returned only because its context ended (a WebAssembly
// handler returns so without its guest) leaves a dir that is removed, so
// what it still writes reaches no later job.
func TestBuildDirOfAnInterruptedJobIsNotReused(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		t.Run(fmt.Sprint("graceful=", graceful), func(t *testing.T) {
			started := make(chan struct{})
			var buildsDir string
			var mu sync.Mutex
			var kept *os.Root
			h := newHarness(t, abandoning(func(ctx context.Context, job *engine.Job, _ []string, phase engine.Phase) error {
				if err := emptyBuildDir(job, buildsDir); err != nil {
					return err
				}
				switch job.Name() {
				case "interrupted":
					if phase != engine.Script {
						return nil
					}
					root, err := os.OpenRoot(job.BuildDir())
					if err != nil {
						return err
					}
					mu.Lock()
					kept = root
					mu.Unlock()
					close(started)
					<-ctx.Done()
					return ctx.Err()
				case "next":
					mu.Lock()
					defer mu.Unlock()
					f, err := kept.Create("late.txt")
					if err == nil {
						f.Close()
						return errors.New("the interrupted job's handler can write to a build dir kept for later jobs")
					}
					return nil
				}
				return nil
			}), func(c *engine.Config) {
				c.Concurrency = 1
				c.ReuseBuildDirs = true
			})
			buildsDir = h.cfg.BuildsDir
			first := h.srv.Enqueue(gitlabtest.NewJob("interrupted"))
			next := h.srv.Enqueue(gitlabtest.NewJob("next"))
			h.start()
			<-started
			if graceful {
				h.srv.CancelGracefully(first)
			} else {
				h.srv.Cancel(first)
			}
			if rec := h.wait(next); rec.State != gitlab.StateSuccess {
				t.Fatalf("next job: %s\n%s", rec.State, rec.Trace)
			}
			mu.Lock()
			kept.Close()
			mu.Unlock()
		})
	}
}
