package handlertest

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// Job describes a job for the handler. The zero Job is a job named "test"
// with an empty script.
type Job struct {
	// Name and Stage are the job's name and stage; default "test".
	Name, Stage string
	// Image chooses the handler; default the Runner's handler.
	Image string
	// Script and AfterScript are the lines of the job's script (with
	// before_script) and after_script.
	Script, AfterScript []string
	// Variables are the job's variables, after GitLab's predefined ones.
	Variables []Variable
	// Dependencies are earlier jobs whose artifacts this job receives:
	// extracted into its build dir, and readable through the SDK.
	Dependencies []Dependency
	// Artifacts are the job's artifacts:paths, uploaded when the script
	// succeeds (the handler may add files of its own).
	Artifacts []string
	// Timeout is the job's timeout, in whole seconds; default one minute.
	Timeout time.Duration
	// Edit, if set, changes the fake GitLab's job description last, for
	// what the fields above do not cover.
	Edit func(*gitlabtest.JobBuilder)
}

// Variable is a job variable.
type Variable struct {
	Key, Value string
	// Masked variables are replaced by [MASKED] in the trace.
	Masked bool
	// File variables reach the handler as the path of a file holding the
	// value.
	File bool
}

// Var is a plain variable.
func Var(key, value string) Variable { return Variable{Key: key, Value: value} }

// MaskedVar is a masked variable.
func MaskedVar(key, value string) Variable { return Variable{Key: key, Value: value, Masked: true} }

// FileVar is a file variable.
func FileVar(key, value string) Variable { return Variable{Key: key, Value: value, File: true} }

// Dependency is a finished job whose artifacts a job receives.
type Dependency struct {
	// Name is the job's name; default "build".
	Name string
	// Files are the files of its artifacts archive (name -> content).
	Files map[string]string
	// Zip is its artifacts archive, used when Files is nil. Without
	// either, the dependency has no artifacts.
	Zip []byte
}

// defaultTimeout is the timeout of a Job that sets none.
const defaultTimeout = time.Minute

// Run runs job and returns its result once it has ended: see
// [Runner.Start] and [JobRun.Wait].
func (r *Runner) Run(ctx context.Context, job Job) (*Result, error) {
	return r.Start(job).Wait(ctx)
}

// Start enqueues job and returns at once; the engine picks it up within
// milliseconds.
func (r *Runner) Start(job Job) *JobRun {
	name := job.Name
	if name == "" {
		name = "test"
	}
	b := gitlabtest.NewJob(name).Script(job.Script...)
	if job.Stage != "" {
		b.Stage(job.Stage)
	}
	switch {
	case job.Image != "":
		b.Image(job.Image)
	case r.image != "":
		b.Image(r.image)
	}
	if job.AfterScript != nil {
		b.AfterScript(job.AfterScript...)
	}
	for _, v := range job.Variables {
		b.Variable(gitlab.Variable{Key: v.Key, Value: v.Value, Masked: v.Masked, File: v.File, Public: !v.Masked && !v.File})
	}
	for _, d := range job.Dependencies {
		depName := d.Name
		if depName == "" {
			depName = "build"
		}
		zip := d.Zip
		if d.Files != nil {
			zip = gitlabtest.Zip(d.Files)
		}
		b.DependsOn(r.srv.AddFinishedJob(depName, zip))
	}
	if len(job.Artifacts) > 0 {
		b.Artifacts(gitlab.ArtifactSpec{Paths: job.Artifacts})
	}
	timeout := job.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	b.Timeout(max(timeout, time.Second))
	if job.Edit != nil {
		job.Edit(b)
	}
	return &JobRun{srv: r.srv, id: r.srv.Enqueue(b)}
}

// JobRun is a job that was started.
type JobRun struct {
	srv *gitlabtest.Server
	id  int64
}

// ID returns the job's id in the fake GitLab.
func (j *JobRun) ID() int64 { return j.id }

// Trace returns the trace received so far, as it is.
func (j *JobRun) Trace() []byte { return j.srv.Job(j.id).Trace }

// Log returns the trace received so far as plain text (see Result.Log).
func (j *JobRun) Log() string { return plain(j.Trace()) }

// Cancel cancels the job as a user's cancel does: at once, without
// after_script. The handler's step sees it as cancelled (its sleeps and
// HTTP requests end) and is interrupted after a grace period.
func (j *JobRun) Cancel() { j.srv.Cancel(j.id) }

// CancelGracefully cancels the job gracefully: the script step is
// cancelled, then after_script runs, with CI_JOB_STATUS "canceled".
func (j *JobRun) CancelGracefully() { j.srv.CancelGracefully(j.id) }

// WaitLog waits until the job's log (as plain text) holds text. It fails
// when the job ends without it or ctx ends first.
func (j *JobRun) WaitLog(ctx context.Context, text string) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		rec := j.srv.Job(j.id)
		if strings.Contains(plain(rec.Trace), text) {
			return nil
		}
		if finished(rec.State) {
			return fmt.Errorf("handlertest: job %d ended (%s) without %q in its log:\n%s", j.id, rec.State, text, plain(rec.Trace))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("handlertest: waiting for %q in the log of job %d: %w; log so far:\n%s", text, j.id, ctx.Err(), plain(rec.Trace))
		case <-tick.C:
		}
	}
}

func finished(s gitlab.JobState) bool {
	return s == gitlab.StateSuccess || s == gitlab.StateFailed || s == gitlab.StateCanceled
}

// Wait waits until the job has ended and returns its result. It fails
// when ctx ends first (the job's own timeout ends it anyway).
func (j *JobRun) Wait(ctx context.Context) (*Result, error) {
	rec, err := j.srv.WaitForState(ctx, j.id, gitlab.StateSuccess, gitlab.StateFailed, gitlab.StateCanceled)
	if err != nil {
		return nil, fmt.Errorf("handlertest: %w; log so far:\n%s", err, plain(rec.Trace))
	}
	res := &Result{
		ID: rec.ID, State: rec.State, FailureReason: rec.FailureReason, ExitCode: rec.ExitCode,
		Trace: rec.Trace, Log: plain(rec.Trace), Artifacts: map[string][]byte{}, Record: rec,
	}
	for _, a := range rec.Artifacts {
		if a.Format != string(gitlab.FormatZip) {
			continue
		}
		files, err := a.ZipFiles()
		if err != nil {
			return res, fmt.Errorf("handlertest: job %d: %w", j.id, err)
		}
		maps.Copy(res.Artifacts, files)
	}
	return res, nil
}

// Result is how a job ended.
type Result struct {
	// ID is the job's id in the fake GitLab.
	ID int64
	// State is "success", "failed" or "canceled".
	State gitlab.JobState
	// FailureReason says why a failed job failed: "script_failure" for
	// a non-zero exit code, "job_execution_timeout", "runner_system_failure"...
	FailureReason gitlab.FailureReason
	// ExitCode is the script's exit code as the runner reported it (0 when
	// it reported none, as after a cancel).
	ExitCode int
	// Trace is the job's trace as GitLab stores it: ANSI colours, section
	// markers and all.
	Trace []byte
	// Log is Trace as plain text, for asserts: without ANSI escapes and
	// section markers (a section's header stays, as a line), "\r\n" as "\n".
	Log string
	// Artifacts are the files of the job's uploaded artifacts archives, by
	// name (none when the job uploaded none).
	Artifacts map[string][]byte
	// Record is everything the fake GitLab knows of the job.
	Record gitlabtest.JobRecord
}

var (
	sectionMarker = regexp.MustCompile(`section_start:\d+:[^\r\n]*\r\x1b\[0K|section_end:\d+:[^\r\n]*\r\x1b\[0K\n?`)
	ansiEscape    = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
)

// plain turns a trace into plain text.
func plain(trace []byte) string {
	s := sectionMarker.ReplaceAllString(string(trace), "")
	s = ansiEscape.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, "\r\n", "\n")
}
