// Package local is what `wasmrunner exec` runs a pipeline with, without
// GitLab: it describes the project and its predefined variables
// ([Discover], [Predefined]), turns the jobs of a parsed pipeline into the
// payloads GitLab would send ([Plan]), and is an in-process job source
// ([Source]) that hands them to the engine as their upstream jobs end
// (several at once along the DAG), streams their logs ([Output]: raw,
// prefixed or grouped), keeps their artifacts on disk and serves them,
// their dotenv variables and the project's files to later jobs, retries
// failed jobs and times delayed ones.
package local

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/pipeline"
)

// Rule says when a queued job runs, as GitLab decides from the jobs before
// it.
type Rule struct {
	// When is "on_success" (default: every job in After succeeded or was
	// allowed to fail), "on_failure" (one of them failed), "always",
	// "manual" (a manual job nobody starts: it does not run) or "delayed"
	// (as on_success, StartIn after it could start).
	When    string
	StartIn time.Duration
	// After are the jobs whose results decide (a job's needs, or the jobs
	// of earlier stages). ByNeeds says they are its needs: a manual job
	// that did not run then blocks it even when allowed to fail.
	After   []int64
	ByNeeds bool
	// AllowFailure: a failure of this job does not count as one for the
	// jobs after it. AllowFailureExitCodes, if any, limit that to those
	// exit codes.
	AllowFailure          bool
	AllowFailureExitCodes []int
	// Retry says when a failed job runs again (as a new job, after
	// "Retrying job").
	Retry pipeline.Retry
	// PipelineVars is how many of the payload's variables, at its end,
	// are pipeline variables: the dotenv variables of its dependencies go
	// before them (they win over the configuration's, not over those).
	PipelineVars int
}

// Result is how a job ended.
type Result struct {
	State         gitlab.JobState
	FailureReason gitlab.FailureReason
	ExitCode      int
	// Artifacts are the files the job uploaded, in ArtifactsDir.
	Artifacts []string
	// Duration is how long the job ran (its last attempt).
	Duration time.Duration
	// Retries is how many times it was run again after a failure.
	Retries int
}

// Source serves jobs to an engine.Runner as GitLab would. Create it with
// [New]; it is safe for concurrent use.
type Source struct {
	out          *Output
	artifactsDir string

	now func() time.Time

	mu       sync.Mutex
	queue    []*gitlab.Job
	readyAt  map[int64]time.Time // delayed jobs: when they may start
	started  map[int64]time.Time
	rules    map[int64]Rule
	names    map[int64]string
	current  map[int64]*gitlab.Job
	results  map[int64]*Result
	archive  map[int64]string           // job id -> its "archive" artifact (zip), for dependents
	dotenv   map[int64]gitlab.Variables // job id -> its dotenv report's variables
	orig     map[int64]int64            // retry's job id -> the id of the job it retries
	tries    map[int64]int              // job id -> how many times it was retried
	nextID   int64
	pristine map[int64]*gitlab.Job // job id -> its payload as added, for retries
	merged   map[string]int64      // merged archives: dependency ids -> the archive's id
	mergeDir string
	done     chan struct{} // closed when the queue is empty and no job runs
	changed  chan struct{} // closed (and replaced) when a job ends or is added
	hold     time.Duration // how long a job request may wait (SetLongPoll)
}

// New returns a source that hands out jobs as their upstream jobs end,
// writing their logs to log (raw, see [Source.SetOutput]) and their
// artifacts under artifactsDir/<job name>/.
func New(log io.Writer, artifactsDir string) *Source {
	return &Source{
		out: NewOutput(log, Raw, true), artifactsDir: artifactsDir,
		now: time.Now, readyAt: map[int64]time.Time{}, started: map[int64]time.Time{},
		current: map[int64]*gitlab.Job{}, results: map[int64]*Result{}, archive: map[int64]string{}, dotenv: map[int64]gitlab.Variables{}, orig: map[int64]int64{}, tries: map[int64]int{}, nextID: 1 << 40, merged: map[string]int64{}, pristine: map[int64]*gitlab.Job{}, rules: map[int64]Rule{}, names: map[int64]string{},
		done: make(chan struct{}), changed: make(chan struct{}),
	}
}

// SetProjectFiles makes the zip archive at path the artifacts of the
// "project files" dependency ([ProjectFilesID]) every job planned with
// PlanConfig.ProjectFiles receives first.
func (s *Source) SetProjectFiles(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archive[ProjectFilesID] = path
	s.names[ProjectFilesID] = "project files"
}

// SetClock replaces the clock that times delayed jobs and durations (for
// tests).
func (s *Source) SetClock(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

func (s *Source) printf(format string, args ...any) {
	s.out.Printf(format, args...)
}

// SetOutput makes the source write job logs and its messages through o
// (by default, raw and coloured to the writer given to New).
func (s *Source) SetOutput(o *Output) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.out = o
}

// SetLongPoll makes a job request that finds no job ready wait up to max
// for one, as GitLab's long polling holds a runner's request, instead of
// returning at once: the runner then starts a job as soon as its upstream
// jobs end rather than at its next poll. A request does not wait while a
// delayed job waits for its time (the runner's polls notice it).
func (s *Source) SetLongPoll(max time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = max
}

// changedLocked wakes the job requests waiting for a change.
func (s *Source) changedLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// NewToken returns a random job token.
func NewToken() string { return "local-" + rand.Text() }

// Add queues a job. Jobs run in the order added, each when its rule says;
// the others are skipped.
func (s *Source) Add(job *gitlab.Job, rule Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(s.queue, job)
	p := *job
	p.Variables, p.Dependencies = slices.Clone(job.Variables), slices.Clone(job.Dependencies)
	s.pristine[job.ID] = &p
	s.rules[job.ID] = rule
	s.names[job.ID] = job.JobInfo.Name
	s.changedLocked()
}

// Done is closed once every queued job has ended.
func (s *Source) Done() <-chan struct{} { return s.done }

// Result returns how a job ended, or nil while it has not.
func (s *Source) Result(id int64) *Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results[id]
}

// RequestJob hands out the first queued job whose upstream jobs have all
// ended, and skips those their results rule out. Several jobs may run at
// once: the engine's concurrency bounds them. With [Source.SetLongPoll],
// a request that finds no job ready waits while a running job's end may
// make one ready.
func (s *Source) RequestJob(ctx context.Context, _ gitlab.JobRequest) (gitlab.JobRequestResult, error) {
	var timeout <-chan time.Time
	for {
		s.mu.Lock()
		job := s.nextLocked()
		if job != nil || s.hold <= 0 || !s.mayWaitLocked() {
			s.mu.Unlock()
			return gitlab.JobRequestResult{Job: job}, nil
		}
		changed := s.changed
		if timeout == nil {
			t := time.NewTimer(s.hold)
			defer t.Stop()
			timeout = t.C
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return gitlab.JobRequestResult{}, nil
		case <-timeout:
			return gitlab.JobRequestResult{}, nil
		}
	}
}

// mayWaitLocked reports whether a job request may wait for a change: jobs
// are queued, one is running, and none waits for its time (delayed).
func (s *Source) mayWaitLocked() bool {
	if len(s.queue) == 0 || len(s.current) == 0 {
		return false
	}
	for _, j := range s.queue {
		if s.rules[j.ID].When == "delayed" {
			return false
		}
	}
	return true
}

// nextLocked returns the next job to run, or nil, skipping those the
// results of the jobs before them rule out.
func (s *Source) nextLocked() *gitlab.Job {
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(s.queue); i++ {
			job := s.queue[i]
			if !s.readyLocked(job) {
				continue
			}
			rule := s.rules[job.ID]
			if why, state, skip := s.skipLocked(job); skip {
				s.queue = slices.Delete(s.queue, i, i+1)
				i--
				changed = true
				s.results[job.ID] = &Result{State: state}
				s.printf("\x1b[33;1mSkipping job %q: %s\x1b[0;m\n", job.JobInfo.Name, why)
				continue
			}
			if rule.When == "delayed" {
				at, ok := s.readyAt[job.ID]
				if !ok {
					at = s.now().Add(rule.StartIn)
					s.readyAt[job.ID] = at
					s.printf("Job %q is delayed: it starts in %s\n", job.JobInfo.Name, rule.StartIn)
				}
				if s.now().Before(at) {
					continue
				}
			}
			s.queue = slices.Delete(s.queue, i, i+1)
			s.addDotenvLocked(job, rule)
			if err := s.mergeDepsLocked(job); err != nil {
				s.printf("\x1b[33;1mWARNING: %v; the job receives them one by one\x1b[0;m\n", err)
			}
			// Dependencies announce artifacts only if their job made some.
			for i := range job.Dependencies {
				d := &job.Dependencies[i]
				if path, ok := s.archive[d.ID]; ok {
					if fi, err := os.Stat(path); err == nil {
						d.ArtifactsFile = &gitlab.DependencyArtifactsFile{Filename: filepath.Base(path), Size: fi.Size()}
					}
				}
			}
			s.current[job.ID] = job
			s.started[job.ID] = s.now()
			// A predefined variable: first, the lowest precedence.
			job.Variables = append(gitlab.Variables{{Key: "CI_JOB_STARTED_AT", Value: s.started[job.ID].UTC().Format(time.RFC3339), Public: true, Raw: true}}, job.Variables...)
			s.out.Start(job.ID, job.JobInfo.Name, fmt.Sprintf("\x1b[1mJob %q (stage %s)\x1b[0m\n", job.JobInfo.Name, job.JobInfo.Stage))
			return job
		}
	}
	s.closeDoneLocked()
	return nil
}

// idLocked returns the id of the job a retry stands for (jobID itself
// for a first attempt).
func (s *Source) idLocked(jobID int64) int64 {
	if o, ok := s.orig[jobID]; ok {
		return o
	}
	return jobID
}

// retryLocked reports whether a failed job is to run again (docs: ci/yaml
// "retry", "retry:when", "retry:exit_codes").
func (s *Source) retryLocked(id int64, req gitlab.UpdateJobRequest) bool {
	r := s.rules[id].Retry
	if s.tries[id] >= r.Max {
		return false
	}
	if len(r.ExitCodes) > 0 && !slices.Contains(r.ExitCodes, req.ExitCode) {
		return false
	}
	if len(r.When) == 0 || slices.Contains(r.When, "always") {
		return true
	}
	reason := string(req.FailureReason)
	if reason == "" {
		reason = "unknown_failure"
	}
	for _, w := range r.When {
		if w == reason || w == "stuck_or_timeout_failure" && reason == string(gitlab.JobExecutionTimeout) {
			return true
		}
	}
	return false
}

// addDotenvLocked gives the job the dotenv variables of its dependencies
// (docs: ci/yaml "artifacts:reports:dotenv"), in their order, before its
// pipeline variables.
func (s *Source) addDotenvLocked(job *gitlab.Job, rule Rule) {
	var add gitlab.Variables
	for _, d := range job.Dependencies {
		add = append(add, s.dotenv[d.ID]...)
	}
	if len(add) == 0 {
		return
	}
	at := max(0, len(job.Variables)-rule.PipelineVars)
	vars := make(gitlab.Variables, 0, len(job.Variables)+len(add))
	vars = append(vars, job.Variables[:at]...)
	vars = append(vars, add...)
	job.Variables = append(vars, job.Variables[at:]...)
}

// StateManual is the state of a manual job that was not started, and
// StateWaiting ("created", as GitLab shows it) that of a job that waits
// for one: neither is a failure.
const (
	StateManual  gitlab.JobState = "manual"
	StateWaiting gitlab.JobState = "created"
)

// readyLocked reports whether every job the job waits for has ended.
func (s *Source) readyLocked(job *gitlab.Job) bool {
	for _, id := range s.rules[job.ID].After {
		if s.results[id] == nil || s.results[id].State == "" {
			return false
		}
	}
	return true
}

// skipLocked applies the job's rule to the results of the jobs before it:
// whether it does not run, why, and the state it is left in (skipped, or
// manual or waiting for a manual job, which are not failures).
func (s *Source) skipLocked(job *gitlab.Job) (string, gitlab.JobState, bool) {
	rule := s.rules[job.ID]
	if rule.When == "manual" {
		return "it is a manual job (name it, or pass --manual, to run it)", StateManual, true
	}
	failed, blocked, waiting := "", "", ""
	for _, id := range rule.After {
		r := s.results[id]
		switch {
		case r.State == StateManual && !rule.ByNeeds && s.rules[id].AllowFailure:
			// A manual job allowed to fail does not hold later stages.
		case r.State == StateManual || r.State == StateWaiting:
			// GitLab keeps the job "created" until the manual job runs.
			if waiting == "" {
				waiting = s.nameLocked(id)
			}
		case r.State == gitlab.StateSkipped || r.State == gitlab.StateCanceled:
			if blocked == "" {
				blocked = s.nameLocked(id)
			}
		case r.State == gitlab.StateFailed && !s.allowedToFailLocked(id, r):
			if failed == "" {
				failed = s.nameLocked(id)
			}
		}
	}
	switch rule.When {
	case "always":
		return "", "", false
	case "on_failure":
		if failed == "" {
			return "it runs only when an earlier job fails", gitlab.StateSkipped, true
		}
		return "", "", false
	default:
		if failed != "" {
			return fmt.Sprintf("%q failed", failed), gitlab.StateSkipped, true
		}
		if blocked != "" {
			return fmt.Sprintf("%q did not run", blocked), gitlab.StateSkipped, true
		}
		if waiting != "" {
			return fmt.Sprintf("it waits for the manual job %q", waiting), StateWaiting, true
		}
		return "", "", false
	}
}

// allowedToFailLocked reports whether a failed job's failure is allowed.
func (s *Source) allowedToFailLocked(id int64, r *Result) bool {
	rule := s.rules[id]
	if !rule.AllowFailure {
		return false
	}
	if len(rule.AllowFailureExitCodes) == 0 {
		return true
	}
	for _, c := range rule.AllowFailureExitCodes {
		if c == r.ExitCode {
			return true
		}
	}
	return false
}

// AllowedToFail reports whether a job's failure does not fail the run.
func (s *Source) AllowedToFail(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.results[id]
	return r != nil && r.State == gitlab.StateFailed && s.allowedToFailLocked(id, r)
}

func (s *Source) nameLocked(id int64) string {
	for _, j := range s.queue {
		if j.ID == id {
			return j.JobInfo.Name
		}
	}
	if n, ok := s.names[id]; ok {
		return n
	}
	return fmt.Sprint(id)
}

func (s *Source) closeDoneLocked() {
	if len(s.queue) == 0 && len(s.current) == 0 {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
}

// PatchTrace writes log bytes as they come.
func (s *Source) PatchTrace(_ context.Context, jobID int64, _ string, offset int64, content []byte) (gitlab.PatchResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.current[jobID]; !ok {
		return gitlab.PatchResult{}, &gitlab.StatusError{Op: "patch trace", StatusCode: http.StatusNotFound}
	}
	s.out.Write(jobID, content)
	return gitlab.PatchResult{Accepted: true, Offset: offset + int64(len(content)), JobStatus: gitlab.StateRunning}, nil
}

// UpdateJob records a job's end.
func (s *Source) UpdateJob(_ context.Context, jobID int64, req gitlab.UpdateJobRequest) (gitlab.UpdateResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.current[jobID]; !ok {
		return gitlab.UpdateResult{}, &gitlab.StatusError{Op: "update job", StatusCode: http.StatusNotFound}
	}
	if req.State == gitlab.StateRunning {
		return gitlab.UpdateResult{StatusCode: http.StatusOK, JobStatus: gitlab.StateRunning}, nil
	}
	job := s.current[jobID]
	delete(s.current, jobID)
	defer s.changedLocked()
	s.out.End(jobID)
	id := s.idLocked(jobID)
	if req.State == gitlab.StateFailed && s.retryLocked(id, req) {
		s.tries[id]++
		retry := *s.pristine[id]
		retry.Variables, retry.Dependencies = slices.Clone(retry.Variables), slices.Clone(retry.Dependencies)
		retry.ID = s.nextID
		s.nextID++
		s.orig[retry.ID] = id
		delete(s.results, id)
		s.queue = append([]*gitlab.Job{&retry}, s.queue...)
		s.printf("\x1b[33;1mRetrying job %q (attempt %d of %d)\x1b[0;m\n", job.JobInfo.Name, s.tries[id]+1, s.rules[id].Retry.Max+1)
		return gitlab.UpdateResult{StatusCode: http.StatusOK, JobStatus: req.State}, nil
	}
	r := s.results[id]
	if r == nil {
		r = &Result{}
		s.results[id] = r
	}
	r.State, r.FailureReason, r.ExitCode = req.State, req.FailureReason, req.ExitCode
	r.Duration = s.now().Sub(s.started[jobID])
	r.Retries = s.tries[id]
	s.closeDoneLocked()
	return gitlab.UpdateResult{StatusCode: http.StatusOK, JobStatus: req.State}, nil
}

// UploadArtifact writes an artifact to the job's artifacts dir.
func (s *Source) UploadArtifact(ctx context.Context, jobID int64, _ string, up gitlab.ArtifactUpload, content io.ReaderAt, size int64) error {
	s.mu.Lock()
	job, ok := s.current[jobID]
	s.mu.Unlock()
	if !ok {
		return &gitlab.StatusError{Op: "upload artifacts", StatusCode: http.StatusNotFound}
	}
	if up.Type == "dotenv" {
		vars, err := readDotenv(io.NewSectionReader(content, 0, size), up.Format)
		if err != nil {
			return fmt.Errorf("dotenv report: %w", err)
		}
		s.mu.Lock()
		id := s.idLocked(jobID)
		s.dotenv[id] = append(s.dotenv[id], vars...)
		s.mu.Unlock()
	}
	dir := filepath.Join(s.artifactsDir, safeName(job.JobInfo.Name))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := up.Filename
	if name == "" {
		name = safeName(up.Name)
		if name == "" {
			name = "artifacts"
		}
		switch up.Format {
		case gitlab.FormatZip, "":
			name += ".zip"
		case gitlab.FormatGzip:
			name += ".gz"
		}
	}
	path := filepath.Join(dir, filepath.Base(name))
	if err := storeArtifact(path, content, size); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.idLocked(jobID)
	r := s.results[id]
	if r == nil {
		r = &Result{}
		s.results[id] = r
	}
	r.Artifacts = append(r.Artifacts, path)
	if (up.Type == "" || up.Type == "archive") && (up.Format == "" || up.Format == gitlab.FormatZip) {
		s.archive[id] = path
	}
	return nil
}

// storeArtifact writes an uploaded archive to path: a hard link to it
// when it is a whole file (the engine's archive, which it removes and
// never changes after the upload), else a copy.
func storeArtifact(path string, content io.ReaderAt, size int64) error {
	if f, ok := content.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
			if err := os.Remove(path); err == nil || errors.Is(err, fs.ErrNotExist) {
				if os.Link(f.Name(), path) == nil {
					if lfi, err := os.Stat(path); err == nil && os.SameFile(fi, lfi) {
						return nil
					}
					os.Remove(path)
				}
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, io.NewSectionReader(content, 0, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// DownloadArtifactToFile puts a finished job's archive at path: a hard
// link when the file system allows (each dependent job gets the archive
// without a copy), else a copy. An archive larger than max is
// gitlab.ErrTooLarge.
func (s *Source) DownloadArtifactToFile(_ context.Context, jobID int64, _ string, path string, max int64) (int64, error) {
	s.mu.Lock()
	src, ok := s.archive[jobID]
	s.mu.Unlock()
	if !ok {
		return 0, &gitlab.StatusError{Op: "download artifacts", StatusCode: http.StatusNotFound}
	}
	fi, err := os.Stat(src)
	if err != nil {
		return 0, err
	}
	if max > 0 && fi.Size() > max {
		return 0, fmt.Errorf("%w: %d bytes", gitlab.ErrTooLarge, fi.Size())
	}
	if err := os.Link(src, path); err == nil {
		return fi.Size(), nil
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// safeName makes a job or artifact name usable as a file name.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if string(b) == "." || string(b) == ".." {
		return "_"
	}
	return string(b)
}

// Limits of a dotenv report (GitLab: 5 KB, 50 variables on GitLab.com).
const (
	maxDotenvBytes = 5 << 10
	maxDotenvVars  = 50
)

// readDotenv reads a dotenv report: KEY=VALUE lines.
func readDotenv(r io.Reader, format gitlab.ArtifactFormat) (gitlab.Variables, error) {
	if format == gitlab.FormatGzip {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(io.LimitReader(r, maxDotenvBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDotenvBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxDotenvBytes)
	}
	vars, err := ParseVariables(data, "dotenv")
	if err != nil {
		return nil, err
	}
	if len(vars) > maxDotenvVars {
		return nil, fmt.Errorf("more than %d variables", maxDotenvVars)
	}
	return vars, nil
}
