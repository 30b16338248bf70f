package trace_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/trace"
)

func crcOf(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

func notice(limit int64) string {
	return fmt.Sprintf("\n\x1b[31;1mJob's log exceeded limit of %d bytes.\nJob execution will continue but no more output will be collected.\x1b[0;m\n", limit)
}

func TestConcurrentWritesArriveExactly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := e.start(t, e.config())

	const writers, lines = 8, 400
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(tr, "writer %d line %d\n", g, i)
				if i%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	want := tr.Bytes()
	e.checkFinished(t, want, gitlab.StateSuccess)

	got := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	seen := make(map[string]bool)
	for _, l := range got {
		if seen[l] {
			t.Fatalf("line %q twice", l)
		}
		seen[l] = true
	}
	for g := range writers {
		for i := range lines {
			if l := fmt.Sprintf("writer %d line %d", g, i); !seen[l] {
				t.Fatalf("line %q missing", l)
			}
		}
	}
	if tr.Sent() != tr.Len() || tr.Len() != int64(len(want)) {
		t.Errorf("Sent %d, Len %d, trace %d bytes", tr.Sent(), tr.Len(), len(want))
	}
}

func TestLargeOutputSplitIntoPatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config()
	cfg.Limit = 8 << 20
	tr := e.start(t, cfg)

	data := make([]byte, 3<<20+12345)
	r := rand.NewChaCha8([32]byte{1})
	_, _ = r.Read(data)
	_, _ = tr.Write(data[:100])
	_, _ = tr.Write(data[100 : 2<<20])
	_, _ = tr.Write(data[2<<20:])
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	rec := e.checkFinished(t, data, gitlab.StateSuccess)
	if len(rec.Patches) < 4 {
		t.Errorf("%d patches for %d bytes, want at least 4", len(rec.Patches), len(data))
	}
}

func TestTraceArrivesWhileJobRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := e.start(t, e.config())

	_, _ = tr.Write([]byte("$ make\n"))
	eventually(t, "the first output at GitLab", func() bool {
		return string(e.srv.Job(e.id).Trace) == "$ make\n"
	})
	_, _ = tr.Write([]byte("building...\n"))
	eventually(t, "the second output at GitLab", func() bool {
		return string(e.srv.Job(e.id).Trace) == "$ make\nbuilding...\n"
	})
	if s := e.srv.Job(e.id).State; s != gitlab.StateRunning {
		t.Fatalf("job %s before Finish", s)
	}
	eventually(t, "Sent to catch up", func() bool { return tr.Sent() == tr.Len() })

	_, _ = tr.Write([]byte("done\n"))
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	rec := e.checkFinished(t, []byte("$ make\nbuilding...\ndone\n"), gitlab.StateSuccess)
	if len(rec.Patches) != 3 {
		t.Errorf("%d patches, want 3", len(rec.Patches))
	}
}

func TestDroppedPatchIsResent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := e.start(t, e.config())
	_, _ = tr.Write([]byte("one\n"))
	eventually(t, "the first output at GitLab", func() bool { return len(e.srv.Job(e.id).Trace) == 4 })

	e.srv.DropNextPatches(2)
	_, _ = tr.Write([]byte("two\n"))
	eventually(t, "the lost output at GitLab", func() bool {
		return string(e.srv.Job(e.id).Trace) == "one\ntwo\n"
	})
	dropped := 0
	for _, r := range e.requests(gitlabtest.EndpointTrace) {
		if r.Fault == "drop patch" {
			dropped++
		}
	}
	if dropped != 2 {
		t.Errorf("%d patches dropped, want 2", dropped)
	}
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	e.checkFinished(t, []byte("one\ntwo\n"), gitlab.StateSuccess)
}

// A patch GitLab stored but whose reply was lost: the next patch gets a
// 416 with GitLab's size, and the trace resumes from there.
func TestResumesAfter416(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logs := &logBuffer{}
	cfg := e.config()
	cfg.Logger = logs.logger()
	tr := trace.New(e.client, cfg)
	_, _ = tr.Write([]byte("hello\nworld\n"))
	if _, err := e.client.PatchTrace(context.Background(), e.id, e.token, 0, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	e.checkFinished(t, []byte("hello\nworld\n"), gitlab.StateSuccess)
	var statuses []int
	for _, r := range e.requests(gitlabtest.EndpointTrace) {
		statuses = append(statuses, r.Status)
	}
	if !slices.Equal(statuses, []int{202, 416, 202}) {
		t.Errorf("trace replies %v, want [202 416 202]", statuses)
	}
	if !strings.Contains(logs.String(), "416") {
		t.Errorf("the 416 was not logged:\n%s", logs.String())
	}
}

// GitLab holds bytes the runner never wrote (its trace got ahead): the
// trace cannot resume, warns, and the final update's 412 gets the whole
// trace resent.
func TestFinal412ResendsWholeTrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logs := &logBuffer{}
	cfg := e.config()
	cfg.Logger = logs.logger()
	tr := e.start(t, cfg)
	body := bytes.Repeat([]byte("0123456789abcdef"), 1000)
	_, _ = tr.Write(body)
	eventually(t, "the output acknowledged", func() bool { return tr.Sent() == int64(len(body)) })

	// Something else appends to GitLab's copy.
	if _, err := e.client.PatchTrace(context.Background(), e.id, e.token, int64(len(body)), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	_, _ = tr.Write([]byte("tail\n")) // its patch meets a 416 beyond the trace's end
	eventually(t, "the 416", func() bool {
		for _, r := range e.requests(gitlabtest.EndpointTrace) {
			if r.Status == http.StatusRequestedRangeNotSatisfiable {
				return true
			}
		}
		return false
	})
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	want := append(body, "tail\n"...)
	rec := e.checkFinished(t, want, gitlab.StateSuccess)
	var statuses []int
	for _, r := range e.requests(gitlabtest.EndpointUpdate) {
		if r.Status != http.StatusOK || len(statuses) > 0 {
			statuses = append(statuses, r.Status)
		}
	}
	if len(statuses) < 2 || statuses[0] != http.StatusPreconditionFailed || statuses[len(statuses)-1] != http.StatusOK {
		t.Errorf("final update replies %v, want 412 ... 200", statuses)
	}
	if len(finalUpdates(rec)) != 2 {
		t.Errorf("%d final updates, want 2", len(finalUpdates(rec)))
	}
	if !strings.Contains(logs.String(), "GitLab holds more of the log than was written") {
		t.Errorf("no warning about GitLab being ahead:\n%s", logs.String())
	}
}

func TestTransientTraceErrorsWhileStreaming(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logs := &logBuffer{}
	cfg := e.config()
	cfg.Logger = logs.logger()
	tr := e.start(t, cfg)
	// More failures than one call's retries: the sender tries again at
	// its next tick.
	e.srv.FailNext(gitlabtest.EndpointTrace, http.StatusServiceUnavailable, 5)
	e.srv.ResetNext(gitlabtest.EndpointTrace, 1)
	_, _ = tr.Write([]byte("survives\n"))
	eventually(t, "the output at GitLab", func() bool {
		return string(e.srv.Job(e.id).Trace) == "survives\n"
	})
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	e.checkFinished(t, []byte("survives\n"), gitlab.StateSuccess)
	if !strings.Contains(logs.String(), "trying again next interval") {
		t.Errorf("the failed tick was not logged:\n%s", logs.String())
	}
}

func TestFinishRetriesTransientErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := trace.New(e.client, e.config()) // not started: Finish does all the talking
	e.srv.FailNext(gitlabtest.EndpointTrace, http.StatusInternalServerError, 2)
	e.srv.ResetNext(gitlabtest.EndpointTrace, 1)
	e.srv.FailNext(gitlabtest.EndpointUpdate, http.StatusBadGateway, 5) // beyond one call's 4 attempts
	e.srv.ResetNext(gitlabtest.EndpointUpdate, 1)
	_, _ = tr.Write([]byte("flaky network\n"))
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateFailed, FailureReason: gitlab.ScriptFailure, ExitCode: 3}); err != nil {
		t.Fatal(err)
	}
	rec := e.checkFinished(t, []byte("flaky network\n"), gitlab.StateFailed)
	if rec.FailureReason != gitlab.ScriptFailure || rec.ExitCode != 3 {
		t.Errorf("failure reason %q exit code %d", rec.FailureReason, rec.ExitCode)
	}
	faults := 0
	for _, r := range e.srv.Requests() {
		if r.Fault != "" {
			faults++
		}
	}
	if faults != 9 {
		t.Errorf("%d requests met a fault, want 9", faults)
	}
}

func TestFinalUpdatePending(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := e.start(t, e.config())
	e.srv.AcceptNextFinalUpdates(2)
	_, _ = tr.Write([]byte("slow GitLab\n"))
	begin := time.Now()
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	// Each 202 makes Finish wait the interval (GitLab's 1 s, capped).
	if d := time.Since(begin); d < 2*testMaxInterval {
		t.Errorf("Finish took %s, want at least two intervals (%s)", d, 2*testMaxInterval)
	}
	rec := e.checkFinished(t, []byte("slow GitLab\n"), gitlab.StateSuccess)
	if n := len(finalUpdates(rec)); n != 3 {
		t.Errorf("%d final updates, want 3", n)
	}
}

func TestFinalUpdateGivesUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config()
	cfg.MaxFinalAttempts = 3
	tr := trace.New(e.client, cfg)
	e.srv.AcceptNextFinalUpdates(6)
	err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess})
	if !errors.Is(err, trace.ErrUnfinished) {
		t.Fatalf("Finish = %v, want ErrUnfinished", err)
	}
	if n := len(finalUpdates(e.srv.Job(e.id))); n != 3 {
		t.Errorf("%d final updates, want 3", n)
	}
	// Called again, Finish tries again and completes.
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); !errors.Is(err, trace.ErrUnfinished) {
		t.Fatalf("second Finish = %v, want ErrUnfinished", err)
	}
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	e.checkFinished(t, nil, gitlab.StateSuccess)
	n := len(e.srv.Requests())
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatalf("Finish after success = %v", err)
	}
	if len(e.srv.Requests()) != n {
		t.Error("Finish after success made requests")
	}
}

func TestFinishRejectsNonFinalState(t *testing.T) {
	t.Parallel()
	c := &stubClient{}
	tr := trace.New(c, trace.Config{JobID: 1, Token: "t"})
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateRunning}); err == nil {
		t.Fatal("Finish accepted state running")
	}
	if p, u := c.counts(); p+u != 0 {
		t.Errorf("%d requests", p+u)
	}
}

func TestOutputLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := e.config()
	cfg.Limit = 1000
	tr := e.start(t, cfg)

	var written []byte
	for i := 0; len(written) < 5000; i++ {
		chunk := []byte(fmt.Sprintf("line %d of a chatty job\n", i))
		n, err := tr.Write(chunk)
		if n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		written = append(written, chunk...)
	}
	want := append(slices.Clone(written[:1000]), notice(1000)...)
	if got := tr.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("trace\n got %q\nwant %q", got, want)
	}
	eventually(t, "the trace at GitLab", func() bool { return tr.Sent() == int64(len(want)) })
	_, _ = tr.Write([]byte("more output\n"))
	if tr.Len() != int64(len(want)) {
		t.Errorf("Len %d after the limit, want %d", tr.Len(), len(want))
	}
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	e.checkFinished(t, want, gitlab.StateSuccess)
}

func TestLimitBoundary(t *testing.T) {
	t.Parallel()
	tr := trace.New(&stubClient{}, trace.Config{Limit: 10})
	_, _ = tr.Write([]byte("0123456789")) // exactly the limit: kept whole
	if got := string(tr.Bytes()); got != "0123456789" {
		t.Fatalf("trace %q", got)
	}
	_, _ = tr.Write(nil)
	if tr.Len() != 10 {
		t.Fatalf("an empty write changed the trace: %q", tr.Bytes())
	}
	_, _ = tr.Write([]byte("x"))
	_, _ = tr.Write([]byte("y"))
	if got, want := string(tr.Bytes()), "0123456789"+notice(10); got != want {
		t.Fatalf("trace %q, want %q", got, want)
	}
}

func TestWriteAfterFinishIsDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := trace.New(e.client, e.config())
	_, _ = tr.Write([]byte("before\n"))
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	if n, err := tr.Write([]byte("after\n")); n != 6 || err != nil {
		t.Fatalf("Write after Finish = %d, %v", n, err)
	}
	if got := string(tr.Bytes()); got != "before\n" {
		t.Errorf("trace %q", got)
	}
	e.checkFinished(t, []byte("before\n"), gitlab.StateSuccess)
}

// A job that prints nothing still learns of its cancellation through the
// keep-alive, within a couple of intervals, and Finish then gives up at
// once.
func TestSilentJobCanceled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := newStatusRecorder()
	cfg := e.config()
	cfg.OnStatus = st.OnStatus
	tr := e.start(t, cfg)
	eventually(t, "a keep-alive", func() bool { return len(e.srv.Job(e.id).Updates) > 0 })

	before := len(e.srv.Job(e.id).Updates)
	e.srv.Cancel(e.id)
	if s := st.wait(t); s != gitlab.StateCanceled {
		t.Fatalf("reported %s, want canceled", s)
	}
	// Counted in keep-alives rather than time (a loaded machine must not
	// fail this): the first keep-alive GitLab answers after the cancel
	// tells the job; one more may have been in flight as it was cancelled.
	if d := len(e.srv.Job(e.id).Updates) - before; d > 2 {
		t.Errorf("cancel detected after %d keep-alives, want the first one after it", d)
	}

	n := len(e.srv.Requests())
	time.Sleep(3 * testMaxInterval) // the sender has stopped
	_, _ = tr.Write([]byte("ignored by GitLab\n"))
	err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateFailed})
	if !gitlab.JobGone(err) {
		t.Fatalf("Finish = %v, want an error for which gitlab.JobGone is true", err)
	}
	if !errors.Is(err, gitlab.ErrForbidden) {
		t.Errorf("Finish = %v, want it to wrap the 403", err)
	}
	if m := len(e.srv.Requests()); m != n {
		t.Errorf("%d requests after the job was gone", m-n)
	}
	if got := st.all(); !slices.Equal(got, []gitlab.JobState{gitlab.StateCanceled}) {
		t.Errorf("reported %v", got)
	}
	if s := e.srv.Job(e.id).State; s != gitlab.StateCanceled {
		t.Errorf("job %s", s)
	}
}

// Cancellation while output flows is seen through the patches' replies.
func TestCanceledWhileWriting(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := newStatusRecorder()
	cfg := e.config()
	cfg.OnStatus = st.OnStatus
	tr := e.start(t, cfg)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			fmt.Fprintf(tr, "line %d\n", i)
			time.Sleep(time.Millisecond)
		}
	})
	eventually(t, "output at GitLab", func() bool { return len(e.srv.Job(e.id).Trace) > 0 })
	e.srv.Cancel(e.id)
	if s := st.wait(t); s != gitlab.StateCanceled {
		t.Fatalf("reported %s, want canceled", s)
	}
	n := len(e.requests(gitlabtest.EndpointTrace))
	time.Sleep(3 * testMaxInterval)
	if m := len(e.requests(gitlabtest.EndpointTrace)); m != n {
		t.Errorf("%d patches after the job was canceled", m-n)
	}
	close(stop)
	wg.Wait()
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateFailed}); !gitlab.JobGone(err) {
		t.Fatalf("Finish = %v, want the job gone", err)
	}
}

func TestGracefulCancel(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := newStatusRecorder()
	cfg := e.config()
	cfg.OnStatus = st.OnStatus
	tr := e.start(t, cfg)
	_, _ = tr.Write([]byte("$ long-running\n"))

	e.srv.CancelGracefully(e.id)
	if s := st.wait(t); s != gitlab.StateCanceling {
		t.Fatalf("reported %s, want canceling", s)
	}
	// The owner runs after_script; its output still reaches GitLab.
	_, _ = tr.Write([]byte("$ after_script\ncleaned up\n"))
	time.Sleep(3 * testMaxInterval) // more keep-alives and patches: still reported once
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateFailed, FailureReason: gitlab.JobCanceled}); err != nil {
		t.Fatal(err)
	}
	e.checkFinished(t, []byte("$ long-running\n$ after_script\ncleaned up\n"), gitlab.StateCanceled)
	if got := st.all(); !slices.Equal(got, []gitlab.JobState{gitlab.StateCanceling}) {
		t.Errorf("reported %v, want [canceling]", got)
	}
}

// A job GitLab does not know (404) is gone too.
func TestUnknownJobIsGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	st := newStatusRecorder()
	cfg := e.config()
	cfg.JobID = e.id + 1000
	cfg.OnStatus = st.OnStatus
	tr := e.start(t, cfg)
	_, _ = tr.Write([]byte("nobody listens\n"))
	if s := st.wait(t); s != gitlab.StateCanceled {
		t.Fatalf("reported %s, want canceled", s)
	}
	err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess})
	if !gitlab.JobGone(err) || !errors.Is(err, gitlab.ErrNotFound) {
		t.Fatalf("Finish = %v, want a 404 for which gitlab.JobGone is true", err)
	}
}

// GitLab's interval replaces the configured one, bounded by MaxInterval.
func TestAdoptsGitLabInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, gitlabtest.WithTraceUpdateInterval(time.Second))
	const capped = 150 * time.Millisecond
	cfg := e.config()
	cfg.MaxInterval = capped
	cfg.KeepAlive = capped // a keep-alive at every tick
	tr := e.start(t, cfg)
	eventually(t, "four keep-alives", func() bool { return len(e.requests(gitlabtest.EndpointUpdate)) >= 4 })
	reqs := e.requests(gitlabtest.EndpointUpdate)
	for i := 1; i < len(reqs); i++ {
		// The first keep-alive came after the configured 20 ms; the
		// others wait GitLab's 1 s, capped.
		if gap := reqs[i].Time.Sub(reqs[i-1].Time); gap < capped-20*time.Millisecond {
			t.Errorf("keep-alive %d came %s after the previous one, want about %s", i, gap, capped)
		}
	}
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
}

// GitLab's interval is never adopted below MinInterval: output written
// all the time goes out once per floored interval.
func TestMinIntervalFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &stubClient{patch: func(offset int64, content []byte) (gitlab.PatchResult, error) {
			return gitlab.PatchResult{Accepted: true, Offset: offset + int64(len(content)), UpdateInterval: time.Millisecond}, nil
		}}
		tr := trace.New(c, trace.Config{JobID: 1, Token: "t", UpdateInterval: time.Millisecond, MinInterval: 50 * time.Millisecond, KeepAlive: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		tr.Start(ctx)
		for range 275 {
			_, _ = tr.Write([]byte("x"))
			time.Sleep(time.Millisecond)
		}
		cancel()
		synctest.Wait()
		if p, _ := c.counts(); p != 5 {
			t.Errorf("%d patches in 275 ms of output with a 50 ms floor, want 5", p)
		}
	})
}

// The request pattern of GitLab Runner's trace (network/trace.go): at
// each update interval the output written since the last tick, else,
// once GitLab has not answered for the force-send interval (30 s), a
// keep-alive; never both, and nothing more.
func TestKeepAliveAsGitLabRunner(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		interval, run, output time.Duration // output: a line every output, 0 for none
		patches, keepAlives   int
	}{
		{name: "silent 5 min at 3 s", interval: 3 * time.Second, run: 5 * time.Minute, keepAlives: 9},
		{name: "silent 5 min at 60 s", interval: time.Minute, run: 5 * time.Minute, keepAlives: 5},
		{name: "a line a second at 3 s", interval: 3 * time.Second, run: time.Minute, output: time.Second, patches: 21},
		{name: "a line a minute at 3 s", interval: 3 * time.Second, run: 10 * time.Minute, output: time.Minute, patches: 10, keepAlives: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &stubClient{}
				tr := trace.New(c, trace.Config{JobID: 1, Token: "t", UpdateInterval: tc.interval})
				ctx, cancel := context.WithCancel(context.Background())
				tr.Start(ctx)
				start := time.Now()
				if tc.output == 0 {
					time.Sleep(tc.run)
				} else {
					// Half a second off the ticks, so no write and tick
					// fall on the same instant.
					time.Sleep(time.Second / 2)
					for time.Since(start) < tc.run {
						time.Sleep(tc.output)
						_, _ = tr.Write([]byte("line\n"))
					}
				}
				time.Sleep(3 * time.Second) // the last line's tick
				cancel()
				synctest.Wait()
				p, k := c.counts()
				if p != tc.patches || k != tc.keepAlives {
					t.Errorf("%d patches and %d keep-alives in %s, want %d and %d", p, k, tc.run, tc.patches, tc.keepAlives)
				}
			})
		})
	}
}

// A server that never advances its trace size makes the tick give up
// instead of spinning.
func TestStalledServerDoesNotSpin(t *testing.T) {
	t.Parallel()
	// A simulated clock: two ticks are two ticks however loaded the
	// machine is.
	synctest.Test(t, func(t *testing.T) {
		c := &stubClient{patch: func(int64, []byte) (gitlab.PatchResult, error) {
			return gitlab.PatchResult{Accepted: true, Offset: 0}, nil
		}}
		logs := &logBuffer{}
		tr := trace.New(c, trace.Config{JobID: 1, Token: "t", UpdateInterval: 40 * time.Millisecond, MinInterval: 40 * time.Millisecond, Logger: logs.logger()})
		_, _ = tr.Write([]byte("lost"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tr.Start(ctx)
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		cancel()
		if p, _ := c.counts(); p != 6 {
			t.Errorf("%d patches in 2 ticks, want 3 per tick", p)
		}
		if !strings.Contains(logs.String(), "does not advance") {
			t.Errorf("the stall was not logged:\n%s", logs.String())
		}
	})
}

// The sender's ctx ends streaming; Finish with another ctx still delivers
// the trace. Not parallel: it counts sender goroutines.
func TestStartContextCanceled(t *testing.T) {
	e := newEnv(t)
	tr := trace.New(e.client, e.config())
	ctx, cancel := context.WithCancel(context.Background())
	tr.Start(ctx)
	_, _ = tr.Write([]byte("streamed\n"))
	eventually(t, "the output at GitLab", func() bool { return tr.Sent() == 9 })
	cancel()
	waitNoSenders(t)

	n := len(e.srv.Requests())
	_, _ = tr.Write([]byte("kept for Finish\n"))
	time.Sleep(3 * testMaxInterval)
	if m := len(e.srv.Requests()); m != n {
		t.Fatalf("%d requests after the context ended", m-n)
	}
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	e.checkFinished(t, []byte("streamed\nkept for Finish\n"), gitlab.StateSuccess)
}

// Finish with a done context abandons the sender's call in flight, stops
// it and returns promptly; a later Finish completes. Not parallel: it
// counts sender goroutines.
func TestFinishContextCanceled(t *testing.T) {
	e := newEnv(t)
	tr := trace.New(e.client, e.config())
	tr.Start(context.Background())
	e.srv.DelayNext(gitlabtest.EndpointTrace, 10*time.Second, 2)
	_, _ = tr.Write([]byte("output\n"))
	eventually(t, "the sender's patch to hang", func() bool {
		for _, r := range e.requests(gitlabtest.EndpointTrace) {
			if strings.HasPrefix(r.Fault, "delay") {
				return true
			}
		}
		return false
	})

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := tr.Finish(ctx, trace.Final{State: gitlab.StateSuccess}) // its patch hangs too
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Finish = %v, want the context's error", err)
	}
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("Finish took %s with a 100 ms context", d)
	}
	waitNoSenders(t)

	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); err != nil {
		t.Fatal(err)
	}
	e.checkFinished(t, []byte("output\n"), gitlab.StateSuccess)
}

// A job canceled before Finish contacted GitLab: the final round learns it,
// and a second Finish does not ask again.
func TestCanceledBeforeFinish(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tr := trace.New(e.client, e.config())
	_, _ = tr.Write([]byte("too late\n"))
	e.srv.Cancel(e.id)
	err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess})
	if !gitlab.JobGone(err) {
		t.Fatalf("Finish = %v, want the job gone", err)
	}
	n := len(e.srv.Requests())
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateSuccess}); !gitlab.JobGone(err) {
		t.Fatalf("second Finish = %v, want the job gone", err)
	}
	if m := len(e.srv.Requests()); m != n {
		t.Errorf("second Finish made %d requests", m-n)
	}
}

// A 403 naming the job failed is reported as failed.
func TestGoneAsFailed(t *testing.T) {
	t.Parallel()
	c := &stubClient{update: func(gitlab.UpdateJobRequest) (gitlab.UpdateResult, error) {
		return gitlab.UpdateResult{StatusCode: http.StatusForbidden},
			&gitlab.StatusError{Op: "update job", StatusCode: http.StatusForbidden, JobStatus: gitlab.StateFailed}
	}}
	st := newStatusRecorder()
	tr := trace.New(c, trace.Config{JobID: 1, Token: "t", UpdateInterval: 10 * time.Millisecond, MinInterval: 10 * time.Millisecond, KeepAlive: 10 * time.Millisecond, OnStatus: st.OnStatus})
	tr.Start(context.Background())
	if s := st.wait(t); s != gitlab.StateFailed {
		t.Fatalf("reported %s, want failed", s)
	}
	if err := tr.Finish(context.Background(), trace.Final{State: gitlab.StateFailed}); !gitlab.JobGone(err) {
		t.Fatalf("Finish = %v, want the job gone", err)
	}
	if _, u := c.counts(); u != 1 {
		t.Errorf("%d updates, want the one keep-alive", u)
	}
}
