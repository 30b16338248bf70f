package trace

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

type nopClient struct{}

func (nopClient) PatchTrace(_ context.Context, _ int64, _ string, offset int64, content []byte) (gitlab.PatchResult, error) {
	return gitlab.PatchResult{Accepted: true, Offset: offset + int64(len(content))}, nil
}

func (nopClient) UpdateJob(context.Context, int64, gitlab.UpdateJobRequest) (gitlab.UpdateResult, error) {
	return gitlab.UpdateResult{StatusCode: http.StatusOK}, nil
}

// A second Start makes no second sender, and a Start after Finish none;
// between ticks no goroutine of the trace exists.
func TestStartTwiceAndAfterFinish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(nopClient{}, Config{JobID: 1, Token: "t", UpdateInterval: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tr.Start(ctx)
		first := tr.timer
		tr.Start(ctx)
		if tr.timer != first || first == nil {
			t.Errorf("second Start replaced the sender (%p, %p)", first, tr.timer)
		}
		_, _ = tr.Write([]byte("x\n"))
		time.Sleep(3 * time.Second)
		synctest.Wait() // no goroutine of the trace runs between ticks
		if err := tr.Finish(context.Background(), Final{State: gitlab.StateSuccess}); err != nil {
			t.Fatal(err)
		}
		tr.Start(ctx)
		if tr.timer != first {
			t.Error("Start after Finish made a sender")
		}
		if first.Stop() {
			t.Error("the sender's timer was still set after Finish")
		}
	})
}
