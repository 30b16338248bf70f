package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/gitsource"
	"github.com/wasmrunner/wasmrunner/internal/trace"
)

// Client is the part of the GitLab client the engine uses.
type Client interface {
	RequestJob(ctx context.Context, req gitlab.JobRequest) (gitlab.JobRequestResult, error)
	PatchTrace(ctx context.Context, jobID int64, jobToken string, offset int64, content []byte) (gitlab.PatchResult, error)
	UpdateJob(ctx context.Context, jobID int64, req gitlab.UpdateJobRequest) (gitlab.UpdateResult, error)
	UploadArtifact(ctx context.Context, jobID int64, jobToken string, up gitlab.ArtifactUpload, content io.ReaderAt, size int64) error
	DownloadArtifactToFile(ctx context.Context, jobID int64, token, path string, max int64) (int64, error)
}

var _ Client = (*gitlab.Client)(nil)

// Config configures a [Runner].
type Config struct {
	// Client talks to GitLab (required).
	Client Client
	// Token is the runner authentication token (required).
	Token string
	// SystemID is sent with every job request (see gitlab.SystemID).
	SystemID string
	// Info describes the runner to GitLab; empty Features default to
	// gitlab.DefaultFeatures.
	Info gitlab.RunnerMeta
	// Handler creates each job's handler (required).
	Handler HandlerFactory
	// BuildsDir holds one build dir per running job (required).
	BuildsDir string
	// Concurrency is the most jobs run at once; default 1.
	Concurrency int
	// CheckInterval is the wait between job requests while GitLab has no
	// job; default 3 s.
	CheckInterval time.Duration
	// MaxBackoff caps the wait between job requests while GitLab fails;
	// default 1 minute.
	MaxBackoff time.Duration
	// DrainGrace is how long a job request already sent may still take
	// when the runner drains: GitLab may hand it a job meanwhile (a long
	// poll), which the runner then runs, since dropping the reply would
	// leave that job running nowhere. Default 60 s (GitLab's long polling
	// holds a request up to about 50 s). An abort ends the request at
	// once.
	DrainGrace time.Duration
	// OutputLimit bounds each job's log in bytes; default 4 MiB.
	OutputLimit int64
	// UpdateInterval is how often the job log is sent (GitLab's
	// X-GitLab-Trace-Update-Interval replaces it); default 3 s.
	UpdateInterval time.Duration
	// MaxUpdateInterval caps the interval GitLab asks for, which also
	// bounds how late a cancellation is noticed; 0 means no cap.
	MaxUpdateInterval time.Duration
	// KeepAlive is how long a running job may go without contacting
	// GitLab before its trace sends a keep-alive, which is also how a job
	// that prints nothing learns it was canceled: GitLab Runner's
	// force-send interval. Default 30 s.
	KeepAlive time.Duration
	// AfterScriptTimeout bounds after_script when GitLab sets no timeout
	// for it; default 5 minutes.
	AfterScriptTimeout time.Duration
	// CleanupTimeout bounds the handler's Cleanup; default 1 minute.
	CleanupTimeout time.Duration
	// ReportTimeout bounds the upload of a job's artifacts once the job's
	// own context has ended; default 2 minutes.
	ReportTimeout time.Duration
	// ReportDeadline is how long the final update of a job (and the report
	// of a job lost in a crash, see JournalDir) is retried while GitLab is
	// unreachable or failing (5xx): the job's log is kept meanwhile, and
	// past the deadline the job is given up (logged); default 1 hour.
	ReportDeadline time.Duration
	// JournalDir, when set, holds a journal of the runner's jobs in flight
	// (internal/journal): each job is recorded (fsync'd) before it starts
	// and forgotten once GitLab accepted its final update. [Runner.Run]
	// reports the jobs that processes which are gone left there (killed,
	// crashed, their machine lost) to GitLab: a last line in their log and
	// failed with runner_system_failure. Processes sharing the dir never
	// touch each other's jobs. Give each runner (GitLab URL and runner
	// entry) a dir of its own. Empty: no journal.
	JournalDir string
	// RecoverInterval is how often the journal is searched for jobs of
	// processes that are gone, after the search at start; default 1
	// minute.
	RecoverInterval time.Duration
	// Logger receives the operator log; nil discards it.
	Logger *slog.Logger
	// JobLogLevel is the least level of the slog records written to a
	// job's log (see [Job.Logger] and [NewLogHandler]); default
	// slog.LevelInfo.
	JobLogLevel slog.Leveler
	// ForwardJobLogs sends those records to the operator log (Logger) as
	// well, with the job's id; by default the two streams stay apart.
	ForwardJobLogs bool
	// Observer, if set, learns when jobs start and end (for metrics).
	Observer Observer
	// SourcesCacheDir holds the clone cache of jobs whose handler wants
	// their sources (see [Job.WantSources]): a bare repository per
	// project; default <BuildsDir>/.sources. SourcesCacheSize bounds it in
	// bytes (least recently used projects are emptied first); default
	// 5 GiB.
	SourcesCacheDir  string
	SourcesCacheSize int64
	// ReuseBuildDirs keeps a job's build dir, emptied, for a later job
	// instead of removing it (as GitLab Runner reuses its builds dirs):
	// on ext4 with discard, creating and removing a directory costs a
	// millisecond or more, more than running a short job. A dir is kept
	// only when it could be emptied and nothing of the job can still
	// write to it: every step of the handler returned before its context
	// ended and its Cleanup returned in time (a handler must not use the
	// build dir after Cleanup returns); otherwise it is removed as
	// without this option. A job still starts with an empty build dir at
	// BuildsDir/<job id>.
	ReuseBuildDirs bool
	// LinkDependencies extracts each dependency's artifacts once, under
	// BuildsDir, and gives the jobs that need them hard links to those
	// files rather than copies of their own: creating a file costs about
	// 30 times as much as linking one on ext4. Only for jobs whose handler
	// is a SharedFileGuard (others get copies): a job must not change
	// what another receives. A dependency is known by its job id, so the
	// Client must serve the same archive for an id to every job (as
	// exec's in-process source does; GitLab's artifacts can expire or be
	// replaced, so serve does not link).
	LinkDependencies bool
	// Process holds the budgets shared by every runner of the process:
	// each job (and each job request) also holds one of its job slots, and
	// its Stop.Abandon is how long a handler may take to return after its
	// step's context ends before the engine gives up waiting for it. Nil:
	// a process of this runner alone.
	Process *resource.Process
}

// Observer learns of jobs starting and ending. Its methods are called from
// the jobs' goroutines and must return quickly.
type Observer interface {
	JobStarted(JobEvent)
	JobFinished(JobEvent)
}

// JobEvent describes a job starting or ending.
type JobEvent struct {
	ID          int64
	Name        string
	ProjectID   int64
	ProjectName string
	Image       string
	// State, FailureReason, ExitCode and Duration are set when the job
	// ends: State is success or failed; FailureReason is the reason sent
	// to GitLab.
	State         gitlab.JobState
	FailureReason gitlab.FailureReason
	ExitCode      int
	Duration      time.Duration
}

func (c *Config) setDefaults() error {
	switch {
	case c.Client == nil:
		return errors.New("engine: Config.Client is required")
	case c.Token == "":
		return errors.New("engine: Config.Token is required")
	case c.Handler == nil:
		return errors.New("engine: Config.Handler is required")
	case c.BuildsDir == "":
		return errors.New("engine: Config.BuildsDir is required")
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.CheckInterval, 3*time.Second)
	def(&c.MaxBackoff, time.Minute)
	def(&c.DrainGrace, time.Minute)
	def(&c.UpdateInterval, 3*time.Second)
	def(&c.KeepAlive, trace.DefaultKeepAlive)
	def(&c.AfterScriptTimeout, 5*time.Minute)
	def(&c.CleanupTimeout, time.Minute)
	def(&c.ReportTimeout, 2*time.Minute)
	def(&c.ReportDeadline, time.Hour)
	def(&c.RecoverInterval, time.Minute)
	if c.OutputLimit <= 0 {
		c.OutputLimit = 4 << 20
	}
	if c.Info == (gitlab.RunnerMeta{}) || c.Info.Features == (gitlab.Features{}) {
		c.Info.Features = gitlab.DefaultFeatures()
	}
	if c.Info.Name == "" {
		c.Info.Name = "wasmrunner"
	}
	if c.Info.Platform == "" {
		c.Info.Platform = runtime.GOOS
	}
	if c.Info.Architecture == "" {
		c.Info.Architecture = runtime.GOARCH
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.JobLogLevel == nil {
		c.JobLogLevel = slog.LevelInfo
	}
	if c.Process == nil {
		c.Process = resource.NewProcess(resource.ProcessConfig{Jobs: c.Concurrency})
	}
	if c.SourcesCacheDir == "" {
		c.SourcesCacheDir = filepath.Join(c.BuildsDir, ".sources")
	}
	if c.SourcesCacheSize <= 0 {
		c.SourcesCacheSize = gitsource.DefaultCacheSize
	}
	return nil
}

// Runner takes jobs from GitLab and runs them. Create it with [New], run
// it with [Runner.Run], stop it with [Runner.Shutdown] or [Runner.Abort].
type Runner struct {
	cfg     Config
	log     *slog.Logger
	sources *gitsource.Cache

	running atomic.Int64
	token   atomic.Pointer[string] // the runner token; SetToken changes it
	drainCh chan struct{}          // closed by Drain
	drainMu sync.Once
	aborted context.Context // ended by Abort
	abort   context.CancelFunc
	doneCh  chan struct{} // closed when Run returns
	started atomic.Bool

	journal journalState
	// hostFault, set by tests (export_test.go), fails the host-side
	// write steps of jobs it returns an error for (see hostWrite).
	hostFault func(step string) error

	// With ReuseBuildDirs: emptied build dirs, and job dirs outside them,
	// for the next jobs.
	freeBuilds, freeTmps dirPool

	deps depCache // with LinkDependencies
}

// hostWrite is called before each host-side write step of a job
// ("journal", "build dir", "sources", "dependencies", "artifacts"): an
// error a test injected there is the step's.
func (r *Runner) hostWrite(step string) error {
	if r.hostFault != nil {
		return r.hostFault(step)
	}
	return nil
}

// New checks cfg and returns a Runner.
func New(cfg Config) (*Runner, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.BuildsDir, 0o755); err != nil {
		return nil, fmt.Errorf("engine: builds dir: %w", err)
	}
	r := &Runner{
		freeBuilds: dirPool{perm: 0o755},
		freeTmps:   dirPool{perm: 0o700},
		cfg:        cfg,
		log:        cfg.Logger,
		sources:    gitsource.NewCache(cfg.SourcesCacheDir, cfg.SourcesCacheSize),
		drainCh:    make(chan struct{}),
		doneCh:     make(chan struct{}),
	}
	r.aborted, r.abort = context.WithCancel(context.Background())
	r.token.Store(&cfg.Token)
	return r, nil
}

// SetToken makes token the runner authentication token of the job
// requests from now on (after GitLab replaced the old one, see
// gitlab.Client.ResetToken). Running jobs are not affected: they use their
// job tokens.
func (r *Runner) SetToken(token string) {
	if token != "" {
		r.token.Store(&token)
	}
}

// Running returns the number of jobs in progress.
func (r *Runner) Running() int { return int(r.running.Load()) }

// Drain stops taking new jobs; Run returns once the running ones finish.
func (r *Runner) Drain() {
	r.drainMu.Do(func() { close(r.drainCh) })
}

// Abort stops taking jobs and aborts the running ones: each is reported
// failed with a line in its log saying the runner is shutting down. Run
// returns once they are reported.
func (r *Runner) Abort() {
	r.Drain()
	r.abort()
}

// Shutdown drains the runner and waits for Run to return. If ctx ends
// first, it aborts the running jobs, waits for them to be reported, and
// returns ctx's error.
func (r *Runner) Shutdown(ctx context.Context) error {
	r.Drain()
	if !r.started.Load() {
		return nil
	}
	select {
	case <-r.doneCh:
		return nil
	case <-ctx.Done():
		r.Abort()
		<-r.doneCh
		return ctx.Err()
	}
}

// Run takes and runs jobs until the runner is drained or aborted, or ctx
// ends; ending ctx aborts the running jobs as [Runner.Abort] does. It
// returns once every job it started has been reported to GitLab.
func (r *Runner) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("engine: Run called twice")
	}
	defer close(r.doneCh)
	stop := context.AfterFunc(ctx, r.Abort)
	defer stop()

	// pollCtx ends the job requests: at once when the runner aborts;
	// DrainGrace after it drains (a request in flight may bring a job that
	// GitLab has already handed to this runner).
	pollCtx, cancelPoll := context.WithCancel(ctx)
	defer cancelPoll()
	stopAbort := context.AfterFunc(r.aborted, cancelPoll)
	defer stopAbort()
	go func() {
		select {
		case <-r.drainCh:
		case <-pollCtx.Done():
			return
		}
		t := time.NewTimer(r.cfg.DrainGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelPoll()
		case <-pollCtx.Done():
		}
	}()

	// Every job request and job holds one of the runner's slots and one of
	// the process's.
	var g errgroup.Group
	slots := resource.NewSlots("runner job slots", r.cfg.Concurrency)
	shared := r.cfg.Process.Jobs
	r.log.Info("runner started", "concurrency", r.cfg.Concurrency, "builds_dir", r.cfg.BuildsDir)

	r.openJournal()
	defer r.closeJournal()
	// Jobs lost by processes that are gone are reported in the
	// background, until the runner drains or aborts (what is left stays
	// in the journal for the next start).
	recoverCtx, stopRecover := context.WithCancel(ctx)
	recovered := make(chan struct{})
	go func() {
		defer close(recovered)
		go func() {
			select {
			case <-r.drainCh:
				stopRecover()
			case <-recoverCtx.Done():
			}
		}()
		r.recoverLoop(recoverCtx)
	}()
	defer func() {
		stopRecover()
		<-recovered
	}()

	var lastUpdate string
	failures := 0
	for {
		if !slots.AcquireOr(r.drainCh) {
			break
		}
		if !shared.AcquireOr(r.drainCh) {
			slots.Release()
			break
		}
		if r.draining() { // the slots were free as the drain began
			shared.Release()
			slots.Release()
			break
		}
		held := &heldSlot{slots: shared, held: true}
		release := func() {
			held.release()
			slots.Release()
		}
		res, err := r.cfg.Client.RequestJob(pollCtx, gitlab.JobRequest{
			Token:      *r.token.Load(),
			SystemID:   r.cfg.SystemID,
			Info:       r.cfg.Info,
			LastUpdate: lastUpdate,
		})
		if res.LastUpdate != "" {
			lastUpdate = res.LastUpdate
		}
		if err == nil && res.Job != nil {
			failures = 0
			job := res.Job
			r.running.Add(1)
			g.Go(func() error {
				defer release()
				defer r.running.Add(-1)
				r.runJob(job, held)
				return nil
			})
			continue // ask again at once while capacity remains
		}
		release()
		if r.draining() {
			break
		}
		wait := r.cfg.CheckInterval
		if err != nil {
			if errors.Is(err, gitlab.ErrBadPayload) {
				// The job is assigned to us but unusable: nothing can be
				// reported for it without its id and token.
				r.log.Error("GitLab sent a job that cannot be decoded", "error", err)
			} else {
				failures++
				wait = backoffWait(r.cfg.CheckInterval, r.cfg.MaxBackoff, failures)
				level := slog.LevelWarn
				if errors.Is(err, gitlab.ErrForbidden) {
					level = slog.LevelError
					err = fmt.Errorf("%w (is the runner token valid?)", err)
				}
				r.log.Log(ctx, level, "requesting a job failed", "error", err, "retry_in", wait)
			}
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.drainCh:
			t.Stop()
		}
	}
	cancelPoll()
	_ = g.Wait()
	r.removeFreeDirs()
	r.removeDependencies()
	r.log.Info("runner stopped")
	return nil
}

// heldSlot is a job's slot of the process's job budget, which the job
// gives back while it waits for something else (see Job.WaitFor).
type heldSlot struct {
	slots *resource.Slots
	mu    sync.Mutex
	held  bool
}

func (h *heldSlot) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		h.slots.Release()
		h.held = false
	}
}

// acquire takes the slot again, waiting for one.
func (h *heldSlot) acquire(ctx context.Context) error {
	if err := h.slots.Acquire(ctx); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held { // cannot happen: one job, one goroutine waiting
		h.slots.Release()
	}
	h.held = true
	return nil
}

func (r *Runner) draining() bool {
	select {
	case <-r.drainCh:
		return true
	default:
		return false
	}
}

// backoffWait doubles base for each failure in a row, up to max.
func backoffWait(base, max time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// traceConfig returns the trace settings of a job.
func (r *Runner) traceConfig(job *gitlab.Job, onStatus func(gitlab.JobState)) trace.Config {
	return trace.Config{
		JobID:          job.ID,
		Token:          job.Token,
		UpdateInterval: r.cfg.UpdateInterval,
		MinInterval:    min(r.cfg.UpdateInterval, time.Second),
		MaxInterval:    r.cfg.MaxUpdateInterval,
		KeepAlive:      r.cfg.KeepAlive,
		Limit:          r.cfg.OutputLimit,
		Logger:         r.log, // trace adds the job id itself
		OnStatus:       onStatus,
	}
}
