package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// submit stands for library code: it knows nothing of jobs and logs with
// the default logger and the context it is given.
func submit(ctx context.Context, board string, n int) {
	log := slog.Default().With("board", board)
	for i := range n {
		log.InfoContext(ctx, "submitted", "attempt", i)
	}
	log.DebugContext(ctx, "debug detail")
	slog.WarnContext(ctx, "lab slow", "board", board)
}

// Records logged by library code with a job's context land in that job's
// log and in no other, with two jobs logging at once, and stay out of the
// operator log unless ForwardJobLogs says otherwise.
func TestLibraryLogsReachTheirJob(t *testing.T) {
	for _, forward := range []bool{false, true} {
		t.Run(fmt.Sprintf("forward=%v", forward), func(t *testing.T) {
			var operator syncBuffer
			opHandler := slog.NewTextHandler(&operator, nil)
			old := slog.Default()
			slog.SetDefault(slog.New(engine.NewLogHandler(opHandler)))
			t.Cleanup(func() { slog.SetDefault(old) })

			// Both jobs log only once both are running.
			var started sync.WaitGroup
			started.Add(2)
			h := newHarness(t, stepFunc(func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
				started.Done()
				started.Wait()
				submit(ctx, job.Name(), 200)
				job.Logger().With("step", phase).Error("handler record")
				return nil
			}), func(c *engine.Config) {
				c.Concurrency = 2
				c.ForwardJobLogs = forward
				c.Logger = slog.New(opHandler)
			})
			a := h.srv.Enqueue(gitlabtest.NewJob("board-a"))
			b := h.srv.Enqueue(gitlabtest.NewJob("board-b"))
			h.start()
			slog.Info("outside any job")
			for _, tc := range []struct {
				id          int64
				mine, other string
			}{{a, "board-a", "board-b"}, {b, "board-b", "board-a"}} {
				tr := string(h.wait(tc.id).Trace)
				if n := strings.Count(tr, "INFO\x1b[0;m submitted board="+tc.mine+" attempt="); n != 200 {
					t.Errorf("%s: %d records of its own, want 200:\n%s", tc.mine, n, tr)
				}
				if strings.Contains(tr, tc.other) || strings.Contains(tr, "outside any job") || strings.Contains(tr, "debug detail") {
					t.Errorf("%s: a record of another job, of no job or below the level:\n%s", tc.mine, tr)
				}
				if !strings.Contains(tr, "WARN\x1b[0;m lab slow board="+tc.mine+"\n") ||
					!strings.Contains(tr, "ERROR\x1b[0;m handler record step=script\n") {
					t.Errorf("%s: missing records:\n%s", tc.mine, tr)
				}
			}
			op := operator.String()
			if !strings.Contains(op, "outside any job") {
				t.Errorf("the operator log lost a record of no job:\n%s", op)
			}
			forwarded := strings.Count(op, "msg=submitted")
			if !forward && (forwarded != 0 || strings.Contains(op, "handler record")) {
				t.Errorf("job records in the operator log without ForwardJobLogs:\n%s", op)
			}
			if forward && (forwarded != 400 || strings.Count(op, "msg=\"handler record\" job=") != 2) {
				t.Errorf("forwarded %d records, want 400 and 2 with job ids:\n%s", forwarded, op)
			}
		})
	}
}
