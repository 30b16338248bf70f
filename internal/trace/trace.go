package trace

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// Client is the part of the GitLab runner API client a Trace needs.
// *gitlab.Client implements it.
type Client interface {
	PatchTrace(ctx context.Context, jobID int64, jobToken string, offset int64, content []byte) (gitlab.PatchResult, error)
	UpdateJob(ctx context.Context, jobID int64, req gitlab.UpdateJobRequest) (gitlab.UpdateResult, error)
}

var _ Client = (*gitlab.Client)(nil)

// Defaults for the zero fields of a [Config].
const (
	DefaultUpdateInterval   = 3 * time.Second
	DefaultMinInterval      = time.Second
	DefaultKeepAlive        = 30 * time.Second
	DefaultLimit            = 4 << 20
	DefaultMaxFinalAttempts = 10
	DefaultMaxRetryDelay    = 30 * time.Second
)

// Config describes the job a Trace belongs to and how it talks to GitLab.
// Zero fields get the defaults named in their comments.
type Config struct {
	// JobID is the job's id.
	JobID int64
	// Token is the job token.
	Token string
	// UpdateInterval is how often accumulated output is sent (and an idle
	// job kept alive) until GitLab names an interval of its own with
	// X-GitLab-Trace-Update-Interval, which then replaces it. Default
	// [DefaultUpdateInterval].
	UpdateInterval time.Duration
	// MinInterval is the shortest interval the trace adopts, whatever
	// GitLab or UpdateInterval say. Default [DefaultMinInterval].
	MinInterval time.Duration
	// MaxInterval, when positive, is the longest interval the trace adopts:
	// an operator knob for snappier cancellation and log updates than
	// GitLab asks for. It wins over MinInterval. Default: no cap.
	MaxInterval time.Duration
	// KeepAlive is how long the trace may go without contacting GitLab
	// while the job runs before it sends a keep-alive (an update of the
	// job's state, which also learns whether the job was canceled), as
	// GitLab Runner's force-send interval: at each tick the trace sends
	// the output written since the last one, and when there is none and
	// GitLab last answered more than KeepAlive ago, a keep-alive. Ticks
	// come every update interval, so a job that prints nothing learns of
	// its cancellation within KeepAlive plus an interval. Default
	// [DefaultKeepAlive].
	KeepAlive time.Duration
	// Limit is the most log bytes kept and sent; past it the trace gets
	// one notice line and later output is dropped. Default [DefaultLimit].
	Limit int64
	// MaxFinalAttempts bounds the rounds of [Trace.Finish] that GitLab
	// answered without completing the update (202 or 412). Rounds that
	// failed transiently (GitLab unreachable, 5xx) do not count: they are
	// retried, with backoff up to MaxRetryDelay, until Finish's context
	// ends, so an outage of GitLab loses no final update that its caller
	// is still willing to wait for. Default [DefaultMaxFinalAttempts].
	MaxFinalAttempts int
	// MaxRetryDelay caps the wait between rounds of Finish that failed
	// transiently (each round's calls have their own retries in the
	// client). Default [DefaultMaxRetryDelay].
	MaxRetryDelay time.Duration
	// Logger receives operator messages; nil discards them.
	Logger *slog.Logger
	// OnStatus, when set, learns of job states GitLab reports while the
	// trace streams (between Start and Finish): [gitlab.StateCanceling]
	// for a graceful cancel, [gitlab.StateCanceled] or [gitlab.StateFailed]
	// when the job must be aborted. When GitLab refuses the job's calls
	// (403 or 404, see [gitlab.JobGone]) it reports the Job-Status GitLab
	// named if that is canceled or failed, else canceled. Each state is
	// reported at most once. OnStatus runs on the sender goroutine: it must
	// return promptly and must not call [Trace.Finish].
	OnStatus func(gitlab.JobState)
}

// Final is the outcome of a job, for [Trace.Finish].
type Final struct {
	// State is gitlab.StateSuccess or gitlab.StateFailed.
	State gitlab.JobState
	// FailureReason says why a failed job failed.
	FailureReason gitlab.FailureReason
	// ExitCode is the script's exit code, if it had one.
	ExitCode int
}

// ErrUnfinished is matched by the error [Trace.Finish] returns when GitLab
// did not complete the final update within Config.MaxFinalAttempts rounds.
var ErrUnfinished = errors.New("GitLab did not complete the final update")

// errStalled reports patches that make no headway: GitLab keeps its
// trace size while the trace has bytes beyond it.
var errStalled = errors.New("GitLab's trace size does not advance")

// maxStalls is how many patches in a row may leave GitLab's trace size
// where it was before the trace waits for the next interval.
const maxStalls = 3

// Trace is the log of one job on its way to GitLab. Create it with [New].
// Its methods are safe for concurrent use.
type Trace struct {
	client Client
	cfg    Config
	log    *slog.Logger
	notice []byte // the line that ends a trace cut off at the limit

	mu       sync.Mutex
	buf      []byte    // the whole trace; only ever appended to
	full     bool      // the limit was reached: drop writes
	closed   bool      // Finish began: drop writes
	sent     int64     // bytes GitLab acknowledged
	contact  time.Time // when GitLab last answered a patch or keep-alive
	interval time.Duration
	gone     error // why GitLab no longer takes calls for the job
	reported map[gitlab.JobState]bool

	// The sender is a timer, not a goroutine: a job waiting for hours
	// holds no goroutine for its log between ticks.
	runMu   sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	timer   *time.Timer    // fires the next tick
	ticking sync.WaitGroup // a tick in progress

	finishMu sync.Mutex // serialises Finish
	finished bool
}

// New returns a trace for the job cfg names, talking to GitLab through c.
// Nothing is sent before [Trace.Start] or [Trace.Finish].
func New(c Client, cfg Config) *Trace {
	if cfg.UpdateInterval <= 0 {
		cfg.UpdateInterval = DefaultUpdateInterval
	}
	if cfg.MinInterval <= 0 {
		cfg.MinInterval = DefaultMinInterval
	}
	if cfg.MaxInterval < 0 {
		cfg.MaxInterval = 0
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.Limit <= 0 {
		cfg.Limit = DefaultLimit
	}
	if cfg.MaxFinalAttempts <= 0 {
		cfg.MaxFinalAttempts = DefaultMaxFinalAttempts
	}
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = DefaultMaxRetryDelay
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &Trace{
		client:   c,
		cfg:      cfg,
		log:      logger.With(slog.Int64("job", cfg.JobID)),
		notice:   limitNotice(cfg.Limit),
		reported: make(map[gitlab.JobState]bool),
	}
	t.interval = t.clamp(cfg.UpdateInterval)
	return t
}

// limitNotice is the line that ends a trace cut off at limit bytes.
func limitNotice(limit int64) []byte {
	return []byte("\n\x1b[31;1mJob's log exceeded limit of " + strconv.FormatInt(limit, 10) +
		" bytes.\nJob execution will continue but no more output will be collected.\x1b[0;m\n")
}

// Write adds p to the trace and returns len(p), nil. It never waits for
// GitLab. Past the output limit, and after Finish began, bytes are
// dropped.
func (t *Trace) Write(p []byte) (int, error) {
	t.mu.Lock()
	if t.closed || t.full {
		t.mu.Unlock()
		return len(p), nil
	}
	room := t.cfg.Limit - int64(len(t.buf))
	if int64(len(p)) <= room {
		t.appendLocked(p)
		t.mu.Unlock()
		return len(p), nil
	}
	t.appendLocked(p[:room])
	t.appendLocked(t.notice)
	t.full = true
	t.mu.Unlock()
	t.log.LogAttrs(context.Background(), slog.LevelWarn, "job log reached its limit; further output is dropped",
		slog.Int64("limit", t.cfg.Limit))
	return len(p), nil
}

// minGrowth is the smallest buffer the trace allocates.
const minGrowth = 1 << 10

// appendLocked appends p to the buffer, doubling its capacity when it
// runs out (append grows large slices by only a quarter, which costs many
// copies of a log of megabytes), but never beyond the limit and notice.
func (t *Trace) appendLocked(p []byte) {
	need := len(t.buf) + len(p)
	if need > cap(t.buf) {
		c := min(int64(max(2*cap(t.buf), minGrowth)), t.cfg.Limit+int64(len(t.notice)))
		nb := make([]byte, len(t.buf), max(int(c), need))
		copy(nb, t.buf)
		t.buf = nb
	}
	t.buf = append(t.buf, p...)
}

// Len returns the size of the trace: the bytes accepted so far, including
// the limit notice.
func (t *Trace) Len() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int64(len(t.buf))
}

// Bytes returns a copy of the trace as it is (or was) sent to GitLab.
func (t *Trace) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}

// Sent returns how many bytes of the trace GitLab has acknowledged.
func (t *Trace) Sent() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}

// Start starts streaming the trace to GitLab in the background. Streaming
// stops when ctx is done or Finish is called. Start does nothing when
// called again or after Finish.
func (t *Trace) Start(ctx context.Context) {
	t.runMu.Lock()
	defer t.runMu.Unlock()
	if t.started || t.stopped {
		return
	}
	t.started = true
	ctx, t.cancel = context.WithCancel(ctx)
	t.mu.Lock()
	if t.contact.IsZero() {
		t.contact = time.Now() // the job was just handed out
	}
	t.mu.Unlock()
	t.timer = time.AfterFunc(t.period(), func() { t.fire(ctx) })
}

// stop ends the sender and waits for a tick in progress. A call in
// flight is abandoned; GitLab's replies to the next patch (416 with its
// trace size) bring the offsets back in line.
func (t *Trace) stop() {
	t.runMu.Lock()
	t.stopped = true
	cancel, timer := t.cancel, t.timer
	t.runMu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if cancel != nil {
		cancel()
	}
	t.ticking.Wait()
}

// fire runs a tick on the timer's goroutine and sets the timer for the
// next one.
func (t *Trace) fire(ctx context.Context) {
	t.runMu.Lock()
	if t.stopped || ctx.Err() != nil {
		t.runMu.Unlock()
		return
	}
	t.ticking.Add(1) // before stop's Wait: stop sets stopped first
	t.runMu.Unlock()
	defer t.ticking.Done()
	if !t.tick(ctx) {
		return
	}
	t.runMu.Lock()
	if !t.stopped {
		t.timer.Reset(t.period())
	}
	t.runMu.Unlock()
}

// tick sends what accumulated, or a keep-alive when there was nothing to
// send and GitLab last answered more than KeepAlive ago. It
// reports whether the sender should go on.
func (t *Trace) tick(ctx context.Context) bool {
	contacted, err := t.flush(ctx, true)
	if err == nil && !contacted && t.silence() > t.cfg.KeepAlive {
		err = t.keepAlive(ctx)
	}
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
		return false
	case gitlab.JobGone(err):
		t.setGone(err)
		t.log.LogAttrs(ctx, slog.LevelWarn, "GitLab no longer accepts the job's log; stopped sending",
			slog.String("error", err.Error()))
		t.report(goneState(err))
		return false
	default:
		t.log.LogAttrs(ctx, slog.LevelWarn, "sending the job log failed; trying again next interval",
			slog.String("error", err.Error()))
		return true
	}
}

// silence is how long ago GitLab last answered.
func (t *Trace) silence() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Since(t.contact)
}

// flush sends the trace from the acknowledged offset to where it ended
// when flush was called (output written meanwhile waits for the next
// tick, as GitLab Runner sends it), in patches of at most
// gitlab.MaxPatchSize bytes, and reports whether GitLab answered any
// patch. streaming says the sender goroutine calls.
func (t *Trace) flush(ctx context.Context, streaming bool) (contacted bool, err error) {
	stalls := 0
	t.mu.Lock()
	upto := int64(len(t.buf))
	t.mu.Unlock()
	for {
		t.mu.Lock()
		off := t.sent
		end := min(upto, off+gitlab.MaxPatchSize)
		if end < off {
			end = off
		}
		chunk := t.buf[off:end:end] // bytes below len(buf) never change
		t.mu.Unlock()
		if len(chunk) == 0 {
			return contacted, nil
		}

		res, err := t.client.PatchTrace(ctx, t.cfg.JobID, t.cfg.Token, off, chunk)
		t.observe(ctx, res.UpdateInterval, res.JobStatus, streaming)
		if err != nil {
			return contacted, fmt.Errorf("trace: sending bytes %d-%d of the log of job %d: %w", off, end-1, t.cfg.JobID, err)
		}
		contacted = true

		next := res.Offset
		switch {
		case !res.Accepted:
			t.log.LogAttrs(ctx, slog.LevelDebug, "GitLab's trace size differs (416); resuming from its size",
				slog.Int64("sent_from", off), slog.Int64("gitlab_size", next))
		case next < end:
			t.log.LogAttrs(ctx, slog.LevelDebug, "GitLab stored less than was sent; resending the rest",
				slog.Int64("sent_to", end), slog.Int64("gitlab_size", next))
		}
		t.mu.Lock()
		size := int64(len(t.buf))
		clamped := next > size
		if clamped {
			next = size
		}
		t.sent = next
		t.contact = time.Now()
		t.mu.Unlock()
		if clamped {
			t.log.LogAttrs(ctx, slog.LevelWarn, "GitLab holds more of the log than was written; the final update will have it sent again",
				slog.Int64("gitlab_size", res.Offset), slog.Int64("trace_size", size))
		}

		if next > off {
			stalls = 0
			continue
		}
		if stalls++; stalls >= maxStalls {
			return contacted, fmt.Errorf("trace: sending the log of job %d from byte %d: %w", t.cfg.JobID, off, errStalled)
		}
	}
}

// keepAlive tells GitLab the job is still running and learns its status.
func (t *Trace) keepAlive(ctx context.Context) error {
	res, err := t.client.UpdateJob(ctx, t.cfg.JobID, gitlab.UpdateJobRequest{
		Token: t.cfg.Token,
		State: gitlab.StateRunning,
	})
	t.observe(ctx, res.UpdateInterval, res.JobStatus, true)
	if err != nil {
		return fmt.Errorf("trace: keep-alive of job %d: %w", t.cfg.JobID, err)
	}
	t.mu.Lock()
	t.contact = time.Now()
	t.mu.Unlock()
	return nil
}

// observe adopts GitLab's update interval and, while streaming, reports
// the job states that matter to the job's owner.
func (t *Trace) observe(ctx context.Context, interval time.Duration, status gitlab.JobState, streaming bool) {
	if interval > 0 {
		t.mu.Lock()
		t.interval = t.clamp(interval)
		t.mu.Unlock()
	}
	if !streaming {
		return
	}
	switch status {
	case gitlab.StateCanceling, gitlab.StateCanceled, gitlab.StateFailed:
		t.report(status)
	case "", gitlab.StateRunning:
	default:
		t.log.LogAttrs(ctx, slog.LevelDebug, "GitLab reports an unexpected job status", slog.String("status", string(status)))
	}
}

// report calls OnStatus once per state.
func (t *Trace) report(s gitlab.JobState) {
	t.mu.Lock()
	seen := t.reported[s]
	t.reported[s] = true
	t.mu.Unlock()
	if seen {
		return
	}
	t.log.LogAttrs(context.Background(), slog.LevelInfo, "GitLab reports a job status", slog.String("status", string(s)))
	if t.cfg.OnStatus != nil {
		t.cfg.OnStatus(s)
	}
}

// goneState is the state to report for an error that means the job is
// gone: the Job-Status GitLab named when it is canceled or failed, else
// canceled (GitLab invalidates the token of a job that ended).
func goneState(err error) gitlab.JobState {
	var se *gitlab.StatusError
	if errors.As(err, &se) && (se.JobStatus == gitlab.StateCanceled || se.JobStatus == gitlab.StateFailed) {
		return se.JobStatus
	}
	return gitlab.StateCanceled
}

func (t *Trace) setGone(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone == nil {
		t.gone = err
	}
}

// clamp bounds an update interval by MinInterval and MaxInterval.
func (t *Trace) clamp(d time.Duration) time.Duration {
	d = max(d, t.cfg.MinInterval)
	if t.cfg.MaxInterval > 0 {
		d = min(d, t.cfg.MaxInterval)
	}
	return d
}

// currentInterval is the update interval in force.
func (t *Trace) currentInterval() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.interval
}

// period is how long the sender waits before its next tick.
func (t *Trace) period() time.Duration {
	return t.currentInterval()
}

// Finish stops streaming, sends what GitLab does not have yet and reports
// the job's outcome with the trace's checksum and size. It returns once
// GitLab completed the update, following its replies: after a 202 it
// updates again an interval later, after a 412 it sends the whole trace
// again first, within Config.MaxFinalAttempts such rounds (then the error
// matches [ErrUnfinished]); transient failures (GitLab unreachable or
// answering 5xx) are retried with backoff for as long as ctx lasts. The
// trace stays whole in memory meanwhile (see Config.Limit), and what
// GitLab acknowledged is never sent again.
//
// When GitLab no longer takes calls for the job, Finish returns an error
// wrapping GitLab's, for which [gitlab.JobGone] is true; if that was
// already known while streaming, it returns it without contacting GitLab.
//
// Writes after Finish began are dropped. Finish may be called again after
// it failed, for example with a fresh context; once it succeeded, later
// calls return nil.
func (t *Trace) Finish(ctx context.Context, f Final) error {
	if f.State != gitlab.StateSuccess && f.State != gitlab.StateFailed {
		return fmt.Errorf("trace: finishing job %d: final state must be %s or %s, not %q",
			t.cfg.JobID, gitlab.StateSuccess, gitlab.StateFailed, f.State)
	}
	t.finishMu.Lock()
	defer t.finishMu.Unlock()
	if t.finished {
		return nil
	}
	t.stop()

	t.mu.Lock()
	t.closed = true
	data := t.buf[:len(t.buf):len(t.buf)]
	gone := t.gone
	t.mu.Unlock()
	if gone != nil {
		return fmt.Errorf("trace: finishing job %d: the job is gone: %w", t.cfg.JobID, gone)
	}

	req := gitlab.UpdateJobRequest{
		Token:         t.cfg.Token,
		State:         f.State,
		FailureReason: f.FailureReason,
		ExitCode:      f.ExitCode,
		Output:        gitlab.NewJobOutput(crc32.ChecksumIEEE(data), int64(len(data))),
	}
	backoff := t.cfg.MinInterval
	var delay time.Duration
	var last error
	rounds := 0 // rounds GitLab answered without completing the update
	for round := 1; ; round++ {
		if delay > 0 {
			if err := sleep(ctx, delay); err != nil {
				return fmt.Errorf("trace: finishing job %d: %w (last failure: %w)", t.cfg.JobID, err, last)
			}
		}
		res, err := t.finalRound(ctx, req)
		switch {
		case err != nil && ctx.Err() != nil:
			return err
		case err != nil && gitlab.JobGone(err):
			t.setGone(err)
			return err
		case err != nil && Transient(err):
			t.log.LogAttrs(ctx, slog.LevelWarn, "final update of the job failed; retrying",
				slog.Int("round", round), slog.Duration("delay", backoff), slog.String("error", err.Error()))
			last, delay = err, backoff
			backoff = max(min(2*backoff, t.cfg.MaxRetryDelay), t.cfg.MinInterval)
			continue
		case err != nil:
			t.log.LogAttrs(ctx, slog.LevelWarn, "final update of the job failed; retrying",
				slog.Int("round", round), slog.Duration("delay", backoff), slog.String("error", err.Error()))
			last, delay = err, backoff
			backoff = max(min(2*backoff, t.currentInterval()), t.cfg.MinInterval)
		case res.Done():
			t.finished = true
			return nil
		case res.Pending():
			last, delay = errors.New("GitLab answered 202: update not complete"), t.currentInterval()
			t.log.LogAttrs(ctx, slog.LevelDebug, "GitLab has not completed the final update yet; updating again",
				slog.Int("round", round), slog.Duration("delay", delay))
		case res.ResendTrace():
			last, delay = errors.New("GitLab answered 412: trace invalid"), 0
			t.log.LogAttrs(ctx, slog.LevelWarn, "GitLab rejected the job log's checksum; sending the whole log again",
				slog.Int("round", round))
			t.mu.Lock()
			t.sent = 0
			t.mu.Unlock()
		default:
			last, delay = fmt.Errorf("unexpected reply %d to the final update", res.StatusCode), backoff
		}
		if rounds++; rounds >= t.cfg.MaxFinalAttempts {
			return fmt.Errorf("trace: finishing job %d: giving up after %d rounds: %w: %w", t.cfg.JobID, rounds, ErrUnfinished, last)
		}
	}
}

// Transient reports whether err is a failure that says nothing about
// the job: GitLab unreachable or answering 5xx, 408, 409 or 429 (after
// the client's own retries). Such failures are retried for as long as the
// caller waits; others (a trace that makes no headway, an unexpected
// reply) count against Config.MaxFinalAttempts.
func Transient(err error) bool {
	var se *gitlab.StatusError
	if errors.As(err, &se) && se.StatusCode == http.StatusRequestTimeout {
		return true
	}
	return errors.Is(err, gitlab.ErrTransport) || errors.Is(err, gitlab.ErrServer) ||
		errors.Is(err, gitlab.ErrTooManyRequests) || errors.Is(err, gitlab.ErrConflict)
}

// finalRound sends what GitLab lacks of the trace, then the final update.
func (t *Trace) finalRound(ctx context.Context, req gitlab.UpdateJobRequest) (gitlab.UpdateResult, error) {
	if _, err := t.flush(ctx, false); err != nil {
		return gitlab.UpdateResult{}, err
	}
	res, err := t.client.UpdateJob(ctx, t.cfg.JobID, req)
	t.observe(ctx, res.UpdateInterval, res.JobStatus, false)
	if err != nil {
		return res, fmt.Errorf("trace: final update of job %d: %w", t.cfg.JobID, err)
	}
	return res, nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
