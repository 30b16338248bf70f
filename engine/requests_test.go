package engine_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
)

// countingGitLab is an in-memory GitLab that hands out one job and counts
// the calls made for it. It lives in a synctest bubble, where loopback
// HTTP cannot: the figures are about which calls the runner makes, not
// about the wire.
type countingGitLab struct {
	job *gitlab.Job

	mu                        sync.Mutex
	handed                    bool
	requests, patches, update int
	final                     bool
	size                      int64
}

var _ engine.Client = (*countingGitLab)(nil)

func (g *countingGitLab) RequestJob(context.Context, gitlab.JobRequest) (gitlab.JobRequestResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.handed {
		return gitlab.JobRequestResult{}, nil
	}
	g.handed = true
	g.requests++
	return gitlab.JobRequestResult{Job: g.job}, nil
}

func (g *countingGitLab) PatchTrace(_ context.Context, _ int64, _ string, offset int64, content []byte) (gitlab.PatchResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.patches++
	if offset != g.size {
		return gitlab.PatchResult{Offset: g.size}, nil
	}
	g.size += int64(len(content))
	return gitlab.PatchResult{Accepted: true, Offset: g.size}, nil
}

func (g *countingGitLab) UpdateJob(_ context.Context, _ int64, req gitlab.UpdateJobRequest) (gitlab.UpdateResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.update++
	if req.State != gitlab.StateRunning {
		g.final = true
	}
	return gitlab.UpdateResult{StatusCode: http.StatusOK, JobStatus: gitlab.StateRunning}, nil
}

func (g *countingGitLab) UploadArtifact(context.Context, int64, string, gitlab.ArtifactUpload, io.ReaderAt, int64) error {
	return fmt.Errorf("no artifacts here")
}

func (g *countingGitLab) DownloadArtifactToFile(context.Context, int64, string, string, int64) (int64, error) {
	return 0, fmt.Errorf("no artifacts here")
}

// runnerRequests is how many calls GitLab Runner makes for a job of run
// that prints a line every every (0: never), going by its
// network/trace.go: one job request; at each update interval a patch when
// there is new output (its header is there from the start), else an
// update once none was sent for more than the force-send interval (30 s);
// then the rest of the output (the job's result line) and the final
// update.
func runnerRequests(interval, run, every time.Duration) int {
	const forceSend = 30 * time.Second
	calls := 1 // the job request
	var lastSent time.Duration
	sentLines := -1 // the header is line 0
	lines := func(at time.Duration) int {
		if every == 0 {
			return 0
		}
		return int(min(at, run) / every)
	}
	run += time.Second / 2 // as countRequests
	for now := interval; now < run; now += interval {
		if n := lines(now); n > sentLines {
			sentLines, lastSent = n, now
			calls++
		} else if now-lastSent > forceSend {
			lastSent = now
			calls++
		}
	}
	return calls + 2 // the result line and the final update
}

// The GitLab requests a job costs, against GitLab Runner's with the same
// update interval (issue: "GitLab load per job-hour no higher than the
// official runner's"). Run with -v for the table; docs/benchmarks.md
// keeps it.
func TestGitLabRequestsPerJob(t *testing.T) {
	for _, tc := range []struct {
		interval, run, every time.Duration
	}{
		{3 * time.Second, time.Second, 0},
		{3 * time.Second, time.Minute, 0},
		{3 * time.Second, time.Minute, time.Second},
		{3 * time.Second, time.Hour, 0},
		{3 * time.Second, time.Hour, time.Second},
		{3 * time.Second, time.Hour, time.Minute},
		{60 * time.Second, time.Hour, 0},
		{60 * time.Second, time.Hour, time.Second},
	} {
		name := fmt.Sprintf("interval=%s/run=%s/line every %s", tc.interval, tc.run, tc.every)
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got := countRequests(t, tc.interval, tc.run, tc.every)
				want := runnerRequests(tc.interval, tc.run, tc.every)
				t.Logf("%-55s wasmrunner %5d  GitLab Runner %5d", name, got, want)
				if got > want {
					t.Errorf("%d GitLab requests for the job, GitLab Runner makes %d", got, want)
				}
			})
		})
	}
}

// countRequests runs one job of run printing a line every every and
// returns the GitLab calls made for it.
func countRequests(t *testing.T, interval, run, every time.Duration) int {
	g := &countingGitLab{job: &gitlab.Job{
		ID: 1, Token: "job-token",
		RunnerInfo: gitlab.RunnerInfo{Timeout: int64(2 * run / time.Second)},
		Steps:      []gitlab.Step{{Name: gitlab.StepScript, Script: []string{"run"}, When: gitlab.StepWhenOnSuccess}},
	}}
	step := func(ctx context.Context, job *engine.Job, _ []string, _ engine.Phase) error {
		// Ends between two ticks: on the simulated clock a tick and the
		// end of the job at the same instant could come in either order.
		run := run + time.Second/2
		start := time.Now()
		for time.Since(start) < run {
			d := run - time.Since(start)
			if every > 0 {
				d = min(d, every)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
			if every > 0 {
				job.Println("line")
			}
		}
		return nil
	}
	r, err := engine.New(engine.Config{
		Client: g, Token: "runner-token", SystemID: "s_000000000000",
		Handler: func(_ context.Context, job *engine.Job) (engine.Handler, error) {
			return &funcHandler{job: job, step: step}, nil
		},
		BuildsDir:      t.TempDir(),
		CheckInterval:  interval,
		UpdateInterval: interval,
		Process:        resource.NewProcess(resource.ProcessConfig{Jobs: 1}),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	for {
		time.Sleep(time.Second)
		g.mu.Lock()
		final := g.final
		g.mu.Unlock()
		if final {
			break
		}
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.requests + g.patches + g.update
}
