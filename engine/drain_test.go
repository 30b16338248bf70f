package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// TestDrainKeepsTheRequestInFlight: a job request waiting in GitLab's long
// poll when the runner drains is not cut off: the job GitLab hands it
// meanwhile is run and reported (cutting the request would leave that job
// assigned to a runner that never got it). An abort cuts it at once.
func TestDrainKeepsTheRequestInFlight(t *testing.T) {
	for _, abort := range []bool{false, true} {
		name := map[bool]string{false: "drain", true: "abort"}[abort]
		t.Run(name, func(t *testing.T) {
			srv := gitlabtest.NewServer(gitlabtest.WithLongPoll(time.Minute))
			t.Cleanup(srv.Close)
			client, err := gitlab.New(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, stepFunc(func(_ context.Context, job *engine.Job, _ []string, _ engine.Phase) error {
				job.Println("ran")
				return nil
			}), func(c *engine.Config) {
				c.Client, c.Token, c.Concurrency = client, srv.RunnerToken, 1
			})
			h.srv = srv
			done := make(chan error, 1)
			go func() { done <- h.runner.Run(context.Background()) }()
			// The runner's request waits in the long poll.
			waitFor(t, func() bool {
				for _, r := range srv.Requests() {
					if r.Endpoint == gitlabtest.EndpointRequestJob && r.Status == 0 {
						return true
					}
				}
				return false
			}, "a job request in the long poll")
			if abort {
				h.runner.Abort()
			} else {
				h.runner.Drain()
			}
			if abort {
				// Cut at once: Run returns without the job.
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					t.Fatal("Run did not return after Abort")
				}
				id := srv.Enqueue(gitlabtest.NewJob("after abort"))
				if st := srv.Job(id).State; st != gitlab.StatePending {
					t.Errorf("a job was taken after the abort: %s", st)
				}
				return
			}
			id := srv.Enqueue(gitlabtest.NewJob("handed during the drain"))
			rec := h.wait(id)
			if rec.State != gitlab.StateSuccess {
				t.Errorf("the job handed to the draining runner: %s\n%s", rec.State, rec.Trace)
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return after the drain")
			}
		})
	}
}
