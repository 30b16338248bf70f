package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

type guardHandler struct{ funcHandler }

func (*guardHandler) GuardsSharedFiles() {}

var _ engine.SharedFileGuard = (*guardHandler)(nil)

// With LinkDependencies, the jobs of a SharedFileGuard handler get a
// dependency's files as hard links to one extracted copy, which
// Job.SharedFile reports; the jobs of other handlers get copies of their
// own.
func TestLinkDependencies(t *testing.T) {
	for _, guard := range []bool{true, false} {
		t.Run(fmt.Sprint("guard=", guard), func(t *testing.T) {
			var mu sync.Mutex
			seen := map[[2]uint64]int{}
			step := func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
				p := filepath.Join(job.BuildDir(), "dist", "app.bin")
				data, err := os.ReadFile(p)
				if err != nil || string(data) != "binary" {
					return fmt.Errorf("extracted file: %q, %v", data, err)
				}
				fi, err := os.Stat(p)
				if err != nil {
					return err
				}
				st := fi.Sys().(*syscall.Stat_t)
				if shared := job.SharedFile(uint64(st.Dev), uint64(st.Ino)); shared != guard {
					return fmt.Errorf("SharedFile = %v, want %v", shared, guard)
				}
				if linked := st.Nlink > 1; linked != guard {
					return fmt.Errorf("%d links to the file, want more than one: %v", st.Nlink, guard)
				}
				mu.Lock()
				seen[[2]uint64{uint64(st.Dev), uint64(st.Ino)}]++
				mu.Unlock()
				// The engine's own writes make the job's own file.
				if err := job.AddArtifactData("dist/app.bin", []byte("mine")); err != nil {
					return err
				}
				if data, err := os.ReadFile(p); err != nil || string(data) != "mine" {
					return fmt.Errorf("after AddArtifactData: %q, %v", data, err)
				}
				return nil
			}
			factory := func(_ context.Context, job *engine.Job) (engine.Handler, error) {
				if guard {
					return &guardHandler{funcHandler{job: job, step: step}}, nil
				}
				return &funcHandler{job: job, step: step}, nil
			}
			h := newHarness(t, factory, func(c *engine.Config) {
				c.LinkDependencies = true
				c.Concurrency = 1 // each job after the one before changed its file
			})
			build := h.srv.AddFinishedJob("build", gitlabtest.Zip(map[string]string{"dist/app.bin": "binary"}))
			var ids []int64
			for i := range 3 {
				ids = append(ids, h.srv.Enqueue(gitlabtest.NewJob(fmt.Sprint("test-", i)).DependsOn(build)))
			}
			h.start()
			for _, id := range ids {
				if rec := h.wait(id); rec.State != gitlab.StateSuccess {
					t.Fatalf("state %s:\n%s", rec.State, rec.Trace)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if guard && len(seen) != 1 {
				t.Errorf("the jobs' files are %d inodes, want 1", len(seen))
			}
		})
	}
}
