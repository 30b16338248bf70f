package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/archive"
	"github.com/wasmrunner/wasmrunner/internal/gitsource"
	"github.com/wasmrunner/wasmrunner/internal/journal"
	"github.com/wasmrunner/wasmrunner/internal/mask"
	"github.com/wasmrunner/wasmrunner/internal/trace"
)

// result is how a job ended.
type result struct {
	state    gitlab.JobState // success or failed
	reason   gitlab.FailureReason
	exitCode int
	err      error // why it failed, for the log
}

func succeeded() result { return result{state: gitlab.StateSuccess} }

func failed(reason gitlab.FailureReason, exitCode int, err error) result {
	return result{state: gitlab.StateFailed, reason: reason, exitCode: exitCode, err: err}
}

// ciStatus is the CI_JOB_STATUS value for a result.
func (res result) ciStatus() string {
	switch {
	case res.state == gitlab.StateSuccess:
		return "success"
	case errors.Is(res.err, ErrCanceled):
		return "canceled"
	default:
		return "failed"
	}
}

// jobRun is the engine's state of one running job.
type jobRun struct {
	r       *Runner
	payload *gitlab.Job
	job     *Job
	trace   *trace.Trace
	log     *slog.Logger

	// hard ends on a hard cancel or an abort: nothing more is done for
	// the job but cleanup and the report.
	hard       context.Context
	cancelHard context.CancelCauseFunc
	// script ends also on a graceful cancel (canceling).
	script       context.Context
	cancelScript context.CancelCauseFunc

	mu   sync.Mutex
	seen map[gitlab.JobState]bool

	started   time.Time
	journaled *journal.Journal // holds the job's entry, once written

	// unsettled: a step or the cleanup of the handler may not have
	// ended (its context ended first, it panicked or was abandoned), so
	// the build dir is not kept for another job (Config.ReuseBuildDirs).
	unsettled atomic.Bool
}

// runJob drives one job through its life and reports it.
func (r *Runner) runJob(p *gitlab.Job, slot *heldSlot) {
	start := time.Now()
	log := r.log.With("job", p.ID, "project", p.JobInfo.ProjectName, "job_name", p.JobInfo.Name, "image", p.Image.Name)
	log.Info("job started", "stage", p.JobInfo.Stage)

	jr := &jobRun{r: r, payload: p, log: log, seen: map[gitlab.JobState]bool{}, started: start}
	jr.hard, jr.cancelHard = context.WithCancelCause(context.Background())
	defer jr.cancelHard(nil)
	// No goroutine per job waits for an abort: a waiting job costs what
	// it holds, and thousands may wait at once.
	stopAbort := context.AfterFunc(r.aborted, func() { jr.cancelHard(ErrAborted) })
	defer stopAbort()

	jr.trace = trace.New(r.cfg.Client, r.traceConfig(p, jr.onStatus))
	traceCtx, stopTrace := context.WithCancel(context.Background())
	defer stopTrace()
	jr.trace.Start(traceCtx)

	// The job token is masked even where no variable marks it (it is in
	// git_info.repo_url, for one).
	buildDir := filepath.Join(r.cfg.BuildsDir, strconv.FormatInt(p.ID, 10))
	vars := expandVariables(append(append(gitlab.Variables(nil), p.Variables...),
		gitlab.Variable{Key: "CI_PROJECT_DIR", Value: buildDir, Public: true},
		gitlab.Variable{Key: "CI_BUILDS_DIR", Value: r.cfg.BuildsDir, Public: true},
		gitlab.Variable{Key: "CI_JOB_STATUS", Value: "running", Public: true},
	))
	// Masked values are masked as sent and as expanded.
	secrets := append(append(p.Variables.Masked(), vars.Masked()...), p.Token)
	prefixes := append(gitlab.TokenPrefixes(), p.Features.TokenMaskPrefixes...)
	jl := &jobLog{m: mask.New(jr.trace, secrets, prefixes), secrets: secrets, prefixes: prefixes}

	jr.job = &Job{
		payload:  p,
		runner:   r,
		buildDir: buildDir,
		tmpDir:   filepath.Join(r.cfg.BuildsDir, ".tmp", strconv.FormatInt(p.ID, 10)),
		log:      jl,
		client:   r.cfg.Client,
		slot:     slot,
		vars:     vars,
		level:    r.cfg.JobLogLevel,
	}
	if r.cfg.ForwardJobLogs {
		jr.job.forward = log.Handler()
	}
	// Every context a handler gets carries its job, for JobFromContext
	// and NewLogHandler.
	jr.hard = withJob(jr.hard, jr.job)
	for _, d := range p.Dependencies {
		jr.job.deps = append(jr.job.deps, &Dependency{
			ID: d.ID, Name: d.Name, HasArtifacts: d.ArtifactsFile != nil, job: jr.job, token: d.Token,
		})
	}

	ev := JobEvent{ID: p.ID, Name: p.JobInfo.Name, ProjectID: p.JobInfo.ProjectID, ProjectName: p.JobInfo.ProjectName, Image: p.Image.Name}
	if r.cfg.Observer != nil {
		r.cfg.Observer.JobStarted(ev)
	}
	res := jr.execute()
	jr.report(res)
	ev.State, ev.FailureReason, ev.ExitCode, ev.Duration = res.state, p.FailureReason(res.reason), res.exitCode, time.Since(start)
	log.Info("job finished", "result", res.state, "failure_reason", ev.FailureReason,
		"exit_code", res.exitCode, "duration", ev.Duration.Round(time.Millisecond))
	if r.cfg.Observer != nil {
		r.cfg.Observer.JobFinished(ev)
	}
}

// onStatus reacts to the job status GitLab reports.
func (jr *jobRun) onStatus(s gitlab.JobState) {
	jr.mu.Lock()
	first := !jr.seen[s]
	jr.seen[s] = true
	jr.mu.Unlock()
	if !first {
		return
	}
	switch s {
	case gitlab.StateCanceling:
		jr.log.Info("job is being canceled gracefully")
		if jr.cancelScript != nil {
			jr.cancelScript(ErrCanceled)
		}
	case gitlab.StateCanceled, gitlab.StateFailed:
		jr.log.Info("job is no longer running in GitLab", "status", s)
		jr.cancelHard(ErrCanceled)
	}
}

// gracefullyCanceled reports whether GitLab asked for a graceful cancel.
func (jr *jobRun) gracefullyCanceled() bool {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	return jr.seen[gitlab.StateCanceling]
}

// execute runs everything up to the report and returns the job's result.
func (jr *jobRun) execute() result {
	r, p, job := jr.r, jr.payload, jr.job
	defer jr.cleanupDirs()

	timeout := p.Timeout()
	ctx, cancelTimeout := context.WithTimeoutCause(jr.hard, timeout, ErrTimeout)
	defer cancelTimeout()
	jr.script, jr.cancelScript = context.WithCancelCause(ctx)
	defer jr.cancelScript(nil)
	if jr.gracefullyCanceled() { // reported before the script context existed
		jr.cancelScript(ErrCanceled)
	}

	if r.cfg.SystemID != "" {
		job.Printf("\x1b[1;36mRunning with wasmrunner %s\x1b[0;m on %s (system id %s)", r.cfg.Info.Version, r.cfg.Info.Name, r.cfg.SystemID)
	} else {
		job.Printf("\x1b[1;36mRunning with wasmrunner %s\x1b[0;m on %s", r.cfg.Info.Version, r.cfg.Info.Name)
	}
	if p.Image.Name != "" {
		job.Printf("Using handler for image %q", p.Image.Name)
	}
	for _, st := range p.Steps {
		if st.Name != gitlab.StepScript && st.Name != gitlab.StepAfterScript {
			job.Printf("\x1b[33;1mWARNING: step %q is not supported by wasmrunner; skipped\x1b[0;m", st.Name)
		}
	}

	if err := jr.journalAdd(); err != nil {
		return jr.hostFailure("recording the job in the journal of jobs in flight", err)
	}
	if err := jr.prepareDirs(); err != nil {
		return jr.hostFailure("preparing the build dir", err)
	}
	if err := job.writeFileVariables(); err != nil {
		return jr.hostFailure("writing file variables", err)
	}

	h, err := jr.newHandler(ctx)
	if err != nil {
		return failed(gitlab.RunnerSystemFailure, 0, fmt.Errorf("creating the handler: %w", err))
	}
	defer jr.cleanupHandler(h)

	if job.wantsSources() {
		if err := jr.getSources(ctx); err != nil {
			if res, ok := jr.interrupted(ctx); ok {
				return res
			}
			if diskFull(err) {
				return jr.hostFailure("getting the sources", err)
			}
			// As GitLab Runner's get_sources stage, a script of its own.
			return failed(gitlab.ScriptFailure, 1, err)
		}
	}
	_, guard := h.(SharedFileGuard)
	if err := jr.downloadDependencies(ctx, r.cfg.LinkDependencies && guard); err != nil {
		if res, ok := jr.interrupted(ctx); ok {
			return res
		}
		return jr.hostFailure("downloading artifacts", err)
	}

	res := succeeded()
	if lines := job.Script(Script); len(lines) > 0 {
		job.StartSection("step_script", `Executing "step_script" stage of the job script`)
		err := jr.step(jr.script, h, lines, Script)
		job.EndSection("step_script")
		res = jr.classify(err)
	}
	// An interruption from outside decides the result, whatever the
	// handler returned.
	if ir, ok := jr.interrupted(ctx); ok {
		res = ir
	}
	switch {
	case jr.hard.Err() != nil:
		// Hard cancel or abort: no after_script, no artifacts.
		return res
	case errors.Is(res.err, ErrTimeout):
		// No after_script after a timeout; artifacts for failed jobs still go up.
		return jr.withArtifacts(res)
	}

	// after_script runs after success, failure and a graceful cancel.
	if lines := job.Script(AfterScript); len(lines) > 0 {
		jr.afterScript(ctx, h, lines, res)
		if ir, ok := jr.interrupted(ctx); ok && (jr.hard.Err() != nil || errors.Is(ir.err, ErrTimeout)) {
			return ir
		}
	}
	if errors.Is(res.err, ErrCanceled) {
		return res
	}
	return jr.withArtifacts(res)
}

// withArtifacts uploads the job's artifacts for res; a failed upload
// fails a job that had succeeded.
func (jr *jobRun) withArtifacts(res result) result {
	err := jr.uploadArtifacts(res)
	switch {
	case err == nil:
		return res
	case jr.hard.Err() != nil:
		ir, _ := jr.interrupted(jr.hard)
		return ir
	case res.state == gitlab.StateSuccess:
		return jr.hostFailure("uploading artifacts", err)
	default:
		return res
	}
}

// interrupted reports a job ended from outside: timeout, cancel or abort.
func (jr *jobRun) interrupted(ctx context.Context) (result, bool) {
	if cause := context.Cause(jr.hard); cause != nil {
		if errors.Is(cause, ErrAborted) {
			return failed(gitlab.RunnerSystemFailure, 0, ErrAborted), true
		}
		return failed(gitlab.JobCanceled, 0, ErrCanceled), true
	}
	if cause := context.Cause(ctx); cause != nil {
		if errors.Is(cause, ErrTimeout) {
			return failed(gitlab.JobExecutionTimeout, 0,
				fmt.Errorf("%w: execution took longer than %s", ErrTimeout, jr.payload.Timeout())), true
		}
	}
	if jr.script != nil && errors.Is(context.Cause(jr.script), ErrCanceled) {
		return failed(gitlab.JobCanceled, 0, ErrCanceled), true
	}
	return result{}, false
}

// classify turns a step's error into the job's result.
func (jr *jobRun) classify(err error) result {
	var je *JobError
	var ee *ExitError
	switch {
	case err == nil:
		return succeeded()
	case errors.Is(err, ErrHandlerPanic):
		return failed(gitlab.RunnerSystemFailure, 0, err)
	case errors.As(err, &je):
		return failed(je.Reason, 0, err)
	case errors.As(err, &ee):
		return failed(gitlab.ScriptFailure, ee.Code, err)
	default:
		return failed(gitlab.ScriptFailure, 0, err)
	}
}

// diskFull reports whether err is the host's file system being full
// (ENOSPC) or a disk quota of the runner's user used up (EDQUOT).
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// hostFailure is the result of a job whose host-side step (what) failed
// with err: runner_system_failure, the machine's fault, which GitLab may
// retry on another runner. A full disk is said plainly, in the job's log
// and the operator's.
func (jr *jobRun) hostFailure(what string, err error) result {
	if diskFull(err) {
		jr.log.Error("the disk under the builds dir is full: a job failed", "builds_dir", jr.r.cfg.BuildsDir, "step", what, "error", err)
		return failed(gitlab.RunnerSystemFailure, 0, fmt.Errorf("%s: the disk under the runner's builds dir is full: %w", what, err))
	}
	return failed(gitlab.RunnerSystemFailure, 0, fmt.Errorf("%s: %w", what, err))
}

func (jr *jobRun) prepareDirs() error {
	if err := jr.r.hostWrite("build dir"); err != nil {
		return err
	}
	// Stale dirs of an earlier run of this job are replaced (a look
	// first: there are none, almost always, and RemoveAll costs more).
	for _, d := range []string{jr.job.buildDir, jr.job.tmpDir} {
		if _, err := os.Lstat(d); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return jr.r.takeBuildDir(jr.job.buildDir)
}

func (jr *jobRun) cleanupDirs() {
	for _, d := range jr.job.Dependencies() {
		d.close()
	}
	var dirs []string
	keep := jr.r.cfg.ReuseBuildDirs && !jr.unsettled.Load() && jr.hard.Err() == nil
	if !keep || !jr.r.keepBuildDir(jr.job.buildDir) {
		dirs = append(dirs, jr.job.buildDir)
	}
	jr.job.mu.Lock()
	tmpMade := jr.job.tmpMade
	jr.job.mu.Unlock()
	switch {
	case tmpMade && keep && jr.r.keepTmpDir(jr.job.tmpDir):
	case tmpMade:
		dirs = append(dirs, jr.job.tmpDir)
	default:
		// Most jobs never make it; one whose making failed halfway may
		// have left it.
		if _, err := os.Lstat(jr.job.tmpDir); !errors.Is(err, fs.ErrNotExist) {
			dirs = append(dirs, jr.job.tmpDir)
		}
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			jr.log.Warn("removing a job dir failed", "dir", d, "error", err)
		}
	}
}

// newHandler calls the factory, turning a panic into an error.
func (jr *jobRun) newHandler(ctx context.Context) (h Handler, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = jr.panicked(p)
		}
	}()
	h, err = jr.r.cfg.Handler(ctx, jr.job)
	if err == nil && h == nil {
		err = errors.New("the handler factory returned no handler")
	}
	return h, err
}

func (jr *jobRun) panicked(p any) error {
	jr.unsettled.Store(true)
	jr.log.Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return fmt.Errorf("%w: %v", ErrHandlerPanic, p)
}

// cleanupHandler runs the handler's Cleanup with a context of its own.
func (jr *jobRun) cleanupHandler(h Handler) {
	ctx, cancel := context.WithTimeout(withJob(context.Background(), jr.job), jr.r.cfg.CleanupTimeout)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if p := recover(); p != nil {
				err := jr.panicked(p)
				jr.job.Printf("\x1b[33;1mWARNING: cleanup failed: %v\x1b[0;m", err)
			}
		}()
		h.Cleanup(ctx)
	}()
	select {
	case <-done:
	case <-time.After(jr.r.cfg.CleanupTimeout + jr.r.cfg.Process.Stop.Abandon):
		jr.unsettled.Store(true)
		jr.job.Printf("\x1b[33;1mWARNING: the handler's cleanup did not finish within %s\x1b[0;m", jr.r.cfg.CleanupTimeout)
	}
}

// step runs one phase of the handler. It returns when the handler does,
// or Stop.Abandon after ctx ends if the handler does not.
func (jr *jobRun) step(ctx context.Context, h Handler, lines []string, phase Phase) error {
	// A handler whose context ended may have left work running (a
	// StepAbandoner returns without its guest).
	defer func() {
		if ctx.Err() != nil {
			jr.unsettled.Store(true)
		}
	}()
	if _, ok := h.(StepAbandoner); ok {
		return jr.stepHere(ctx, h, lines, phase)
	}
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- jr.panicked(p)
			}
		}()
		done <- h.Step(ctx, lines, phase)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	t := time.NewTimer(jr.r.cfg.Process.Stop.Abandon)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		jr.log.Warn("handler did not return after its step ended; abandoning it", "phase", phase, "grace", jr.r.cfg.Process.Stop.Abandon)
		jr.job.Printf("\x1b[33;1mWARNING: the handler did not stop within %s; abandoning it\x1b[0;m", jr.r.cfg.Process.Stop.Abandon)
		return context.Cause(ctx)
	}
}

// stepHere runs the step of a StepAbandoner on the calling goroutine.
func (jr *jobRun) stepHere(ctx context.Context, h Handler, lines []string, phase Phase) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = jr.panicked(p)
		}
	}()
	return h.Step(ctx, lines, phase)
}

// afterScript runs after_script with CI_JOB_STATUS set; its result is
// only logged.
func (jr *jobRun) afterScript(ctx context.Context, h Handler, lines []string, res result) {
	job := jr.job
	job.setVariable(gitlab.Variable{Key: "CI_JOB_STATUS", Value: res.ciStatus(), Public: true})
	timeout := jr.r.cfg.AfterScriptTimeout
	if s, ok := jr.payload.Step(gitlab.StepAfterScript); ok && s.Timeout > 0 {
		timeout = time.Duration(s.Timeout) * time.Second
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	job.StartSection("after_script", "Running after_script")
	err := jr.step(actx, h, lines, AfterScript)
	job.EndSection("after_script")
	switch {
	case err == nil:
	case errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		job.Printf("\x1b[33;1mWARNING: after_script timed out after %s\x1b[0;m", timeout)
	default:
		job.Printf("\x1b[33;1mWARNING: after_script failed: %v\x1b[0;m", err)
	}
}

// getSources puts the job's sources into its build dir, charged to its
// build dir budget, as GitLab Runner's get_sources stage does.
func (jr *jobRun) getSources(ctx context.Context) error {
	job := jr.job
	job.StartSection("get_sources", "Getting source from Git repository")
	defer job.EndSection("get_sources")
	var budget gitsource.Budget
	if b, e := job.BuildDirBudget(); b != nil || e != nil {
		budget = poolBudget{b, e}
	}
	if err := jr.r.hostWrite("sources"); err != nil {
		return err
	}
	return jr.r.sources.Get(ctx, gitsource.Job{
		Payload: jr.payload, Vars: job.Variables(), Dir: job.buildDir, Tmp: job.tmp, Budget: budget, Log: job,
	})
}

// downloadDependencies extracts each dependency's artifacts into the
// build dir.
func (jr *jobRun) downloadDependencies(ctx context.Context, link bool) error {
	deps := jr.job.Dependencies()
	if len(deps) == 0 {
		return nil
	}
	job := jr.job
	job.StartSection("download_artifacts", "Downloading artifacts")
	defer job.EndSection("download_artifacts")
	for _, d := range deps {
		if !d.HasArtifacts {
			continue
		}
		job.Printf("Downloading artifacts for %s (%d)...", d.Name, d.ID)
		a, err := d.Artifacts(ctx)
		if err != nil {
			return err
		}
		ra, size := a.readerAt()
		lim := archive.DefaultLimits()
		if b, e := job.BuildDirBudget(); b != nil || e != nil {
			lim.Budget = poolBudget{b, e}
		}
		if err := jr.r.hostWrite("dependencies"); err != nil {
			return fmt.Errorf("extracting artifacts of %s (job %d): %w", d.Name, d.ID, err)
		}
		from := ""
		if link {
			// A dependency that cannot be extracted there is extracted
			// here, to fail as it would.
			from, _ = jr.r.extracted(ctx, d.ID, ra, size, lim)
		}
		if from != "" {
			err = archive.ExtractLinked(ctx, ra, size, job.buildDir, lim, from)
		} else {
			err = archive.Extract(ctx, ra, size, job.buildDir, lim)
		}
		if err != nil {
			return fmt.Errorf("extracting artifacts of %s (job %d): %w", d.Name, d.ID, err)
		}
		job.Printf("Downloaded and extracted artifacts for %s (%d): %d files", d.Name, d.ID, len(a.Files()))
	}
	return nil
}

// report ends the job log and sends the final update.
func (jr *jobRun) report(res result) {
	job := jr.job
	switch {
	case res.state == gitlab.StateSuccess:
		job.Printf("\x1b[32;1mJob succeeded\x1b[0;m")
	case res.reason == gitlab.ScriptFailure && res.exitCode != 0:
		job.Printf("\x1b[31;1mERROR: Job failed: exit code %d\x1b[0;m", res.exitCode)
	case res.reason == gitlab.ScriptFailure, res.reason == gitlab.JobExecutionTimeout, errors.Is(res.err, ErrCanceled):
		job.Printf("\x1b[31;1mERROR: Job failed: %s\x1b[0;m", oneLine(res.err))
	default:
		job.Printf("\x1b[31;1mERROR: Job failed (system failure): %s\x1b[0;m", oneLine(res.err))
	}
	job.log.close()
	reason := jr.payload.FailureReason(res.reason)
	stopRecording := jr.journalReporting(res.state, reason)

	ctx, cancel := context.WithTimeout(context.Background(), jr.r.cfg.ReportDeadline)
	defer cancel()
	err := jr.trace.Finish(ctx, trace.Final{
		State:         res.state,
		FailureReason: reason,
		ExitCode:      res.exitCode,
	})
	switch {
	case err == nil:
	case gitlab.JobGone(err):
		jr.log.Info("job was gone in GitLab before its final update", "error", err)
	case ctx.Err() != nil:
		jr.log.Error("reporting the job failed: GitLab did not take its final update within the report deadline; giving it up",
			"report_deadline", jr.r.cfg.ReportDeadline, "error", err)
	default:
		jr.log.Error("reporting the job failed", "error", err)
	}
	stopRecording()
	jr.journalRemove()
}

func oneLine(err error) string {
	if err == nil {
		return "unknown error"
	}
	return strings.Join(strings.Fields(err.Error()), " ")
}

// jobLog is a job's log: writes are serialised, masked and sent to the
// trace; after close they are dropped.
type jobLog struct {
	mu     sync.Mutex
	m      *mask.Writer
	closed bool

	secrets, prefixes []string // what m masks, for BoundedLog
}

func (l *jobLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		_, _ = l.m.Write(p)
	}
	return len(p), nil
}

func (l *jobLog) writeString(s string) { _, _ = l.Write([]byte(s)) }

func (l *jobLog) writeBytes(b []byte) { _, _ = l.Write(b) }

func (l *jobLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		_ = l.m.Flush()
		l.closed = true
	}
}
