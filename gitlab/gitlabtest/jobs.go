package gitlabtest

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// JobRecord is a snapshot of a job the server knows: its state and
// everything the runner sent for it.
type JobRecord struct {
	ID    int64
	Name  string
	Token string // the job token
	State gitlab.JobState
	// FailureReason and ExitCode are what the final update reported;
	// a failed job reported without a reason has GitLab's unknown_failure.
	FailureReason gitlab.FailureReason
	ExitCode      int
	// Payload is the job as it was (or will be) sent by jobs/request. For
	// a job built with RawJSON it is what could be decoded of those bytes.
	Payload gitlab.Job
	// Trace is the stored trace.
	Trace []byte
	// Patches are the accepted trace patches, in order.
	Patches []TracePatch
	// Updates are the bodies of every PUT jobs/:id received, in order,
	// whether accepted or not.
	Updates []gitlab.UpdateJobRequest
	// Artifacts are the accepted uploads, in order.
	Artifacts []Artifact
}

// TracePatch is one accepted trace patch.
type TracePatch struct {
	Offset       int64
	Data         []byte
	ContentRange string // the Content-Range header as sent
}

// Artifact is one accepted artifact upload.
type Artifact struct {
	Filename string // file name of the multipart "file" part
	Format   string // artifact_format (zip, gzip, raw)
	Type     string // artifact_type (archive, junit, ...)
	ExpireIn string // expire_in as sent, or ""
	Data     []byte
}

// ZipFiles returns the files of a zip upload, by name; directories are
// left out. It fails when Data is not a zip archive.
func (a Artifact) ZipFiles() (map[string][]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(a.Data), int64(len(a.Data)))
	if err != nil {
		return nil, fmt.Errorf("gitlabtest: artifact %q is not a zip archive: %w", a.Filename, err)
	}
	files := make(map[string][]byte)
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.HasSuffix(f.Name, "/") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("gitlabtest: artifact %q: %s: %w", a.Filename, f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("gitlabtest: artifact %q: %s: %w", a.Filename, f.Name, err)
		}
		files[f.Name] = data
	}
	return files, nil
}

// defaultFailureReasons is GitLab's list of failure reasons, sent in
// features.failure_reasons and accepted by PUT jobs/:id.
var defaultFailureReasons = []string{
	"unknown_failure",
	"script_failure",
	"api_failure",
	"stuck_or_timeout_failure",
	"runner_system_failure",
	"missing_dependency_failure",
	"runner_unsupported",
	"stale_schedule",
	"job_execution_timeout",
	"archived_failure",
	"unmet_prerequisites",
	"scheduler_failure",
	"data_integrity_failure",
	"forward_deployment_failure",
	"user_blocked",
	"project_deleted",
	"ci_quota_exceeded",
	"pipeline_loop_detected",
	"no_matching_runner",
	"trace_size_exceeded",
	"builds_disabled",
	"environment_creation_failure",
	"deployment_rejected",
	"failed_outdated_deployment_job",
	"protected_environment_failure",
	"insufficient_bridge_permissions",
	"downstream_bridge_project_not_found",
	"invalid_bridge_trigger",
	"upstream_bridge_project_not_found",
	"insufficient_upstream_permissions",
	"bridge_pipeline_is_child_pipeline",
	"downstream_pipeline_creation_failed",
	"secrets_provider_not_found",
	"reached_max_descendant_pipelines_depth",
	"ip_restriction_failure",
	"reached_max_pipeline_hierarchy_size",
	"reached_downstream_pipeline_trigger_rate_limit",
	"image_pull_failure",
	"job_canceled",
	"runner_interrupted",
}

// JobBuilder describes a job to enqueue. Create it with NewJob; each
// method changes the builder and returns it.
type JobBuilder struct {
	name        string
	stage       string
	script      []string
	scriptSet   bool
	after       []string
	afterSet    bool
	steps       []gitlab.Step
	vars        gitlab.Variables
	image       string
	timeout     int64
	artifacts   []gitlab.ArtifactSpec
	deps        []int64
	reasons     []string
	reasonsSet  bool
	mutators    []func(*gitlab.Job)
	raw         []byte
	rawSet      bool
	projectID   int64
	projectName string
	runner      string

	repo     *Repo
	ref      string
	sha      string
	refspecs []string
	depth    int
	depthSet bool
}

// NewJob starts describing a job named name: stage "test", project 1
// "demo", a script step running "echo hello" unless another is given, and
// a timeout of one hour.
func NewJob(name string) *JobBuilder {
	return &JobBuilder{
		name:        name,
		stage:       "test",
		timeout:     3600,
		projectID:   1,
		projectName: "demo",
	}
}

// Stage sets the job's stage.
func (b *JobBuilder) Stage(s string) *JobBuilder {
	b.stage = s
	return b
}

// Script sets the "script" step (before_script already joined in): it runs
// on success, with the job's timeout.
func (b *JobBuilder) Script(lines ...string) *JobBuilder {
	b.script = slices.Clone(lines)
	b.scriptSet = true
	return b
}

// AfterScript sets the "after_script" step: it always runs, with a
// timeout of 300 s.
func (b *JobBuilder) AfterScript(lines ...string) *JobBuilder {
	b.after = slices.Clone(lines)
	b.afterSet = true
	return b
}

// Step adds any other step, such as one with a name the runner does not
// know. Steps follow the script step and precede after_script.
func (b *JobBuilder) Step(st gitlab.Step) *JobBuilder {
	st.Script = slices.Clone(st.Script)
	b.steps = append(b.steps, st)
	return b
}

// Var adds a public, unmasked variable.
func (b *JobBuilder) Var(key, value string) *JobBuilder {
	return b.Variable(gitlab.Variable{Key: key, Value: value, Public: true})
}

// MaskedVar adds a masked, non-public variable.
func (b *JobBuilder) MaskedVar(key, value string) *JobBuilder {
	return b.Variable(gitlab.Variable{Key: key, Value: value, Masked: true})
}

// FileVar adds a file variable (non-public, unmasked).
func (b *JobBuilder) FileVar(key, value string) *JobBuilder {
	return b.Variable(gitlab.Variable{Key: key, Value: value, File: true})
}

// Variable adds v as it is. Variables follow GitLab's predefined ones.
func (b *JobBuilder) Variable(v gitlab.Variable) *JobBuilder {
	b.vars = append(b.vars, v)
	return b
}

// Image sets the job's image.
func (b *JobBuilder) Image(name string) *JobBuilder {
	b.image = name
	return b
}

// Timeout sets runner_info.timeout to d in whole seconds; 0 means the
// runner's default.
func (b *JobBuilder) Timeout(d time.Duration) *JobBuilder {
	b.timeout = int64(d / time.Second)
	return b
}

// Artifacts adds an artifacts entry. Empty fields get GitLab's defaults:
// when on_success, format zip, type archive; Name and ExpireIn are kept as
// given.
func (b *JobBuilder) Artifacts(a gitlab.ArtifactSpec) *JobBuilder {
	if a.When == "" {
		a.When = gitlab.ArtifactsOnSuccess
	}
	if a.Format == "" {
		a.Format = gitlab.FormatZip
	}
	if a.Type == "" {
		a.Type = "archive"
	}
	a.Paths = slices.Clone(a.Paths)
	a.Exclude = slices.Clone(a.Exclude)
	b.artifacts = append(b.artifacts, a)
	return b
}

// DependsOn makes the job need earlier jobs of the same server: it is not
// handed out before they all succeeded, is skipped when one of them fails,
// and its payload lists them as dependencies.
func (b *JobBuilder) DependsOn(ids ...int64) *JobBuilder {
	b.deps = append(b.deps, ids...)
	return b
}

// Project sets the job's project: its id and name (its path is
// group/<name>). By default project 1, "demo".
func (b *JobBuilder) Project(id int64, name string) *JobBuilder {
	b.projectID, b.projectName = id, name
	return b
}

// Sources makes the job's git_info point at ref of repo (which also sets
// the job's project): a branch, a tag, or a full ref name such as
// refs/merge-requests/1/head. When the job is enqueued, its sha becomes
// the ref's commit (unless Commit set one), ref_type "tag" for a tag and
// "branch" otherwise, refspecs fetch that ref only (unless Refspecs set
// them), and repo_url is the repository's URL with the job token
// (gitlab-ci-token:<token>@), as GitLab sends it. The depth is 20, GitLab's
// default, unless Depth set it.
func (b *JobBuilder) Sources(repo *Repo, ref string) *JobBuilder {
	b.repo, b.ref = repo, ref
	b.projectID, b.projectName = repo.ProjectID, path.Base(repo.Path)
	return b
}

// Commit sets git_info.sha (a commit the ref may not have, or none).
func (b *JobBuilder) Commit(sha string) *JobBuilder {
	b.sha = sha
	return b
}

// Refspecs sets git_info.refspecs.
func (b *JobBuilder) Refspecs(specs ...string) *JobBuilder {
	b.refspecs = slices.Clone(specs)
	return b
}

// Depth sets git_info.depth (0: the whole history).
func (b *JobBuilder) Depth(n int) *JobBuilder {
	b.depth, b.depthSet = n, true
	return b
}

// ForRunner makes the job go only to the runner authenticating with
// token (the server's RunnerToken or one from AddRunner or registration):
// jobs/request from any other runner does not see it. By default any
// runner of the server may take the job.
func (b *JobBuilder) ForRunner(token string) *JobBuilder {
	b.runner = token
	return b
}

// FailureReasons sets features.failure_reasons. By default it is GitLab's
// full list.
func (b *JobBuilder) FailureReasons(rs ...string) *JobBuilder {
	b.reasons = slices.Clone(rs)
	b.reasonsSet = true
	return b
}

// Raw adds a last-chance edit of the payload, applied once by Enqueue
// after everything else is filled in. The job token becomes whatever the
// edited payload says. When the job is handed out, the artifacts_file of
// the dependencies named by DependsOn is brought up to date.
func (b *JobBuilder) Raw(mutate func(*gitlab.Job)) *JobBuilder {
	b.mutators = append(b.mutators, mutate)
	return b
}

// RawJSON makes jobs/request send exactly data as the job payload. The job
// is still tracked by the id Enqueue returns; its token is whatever data
// holds in "token", if anything.
func (b *JobBuilder) RawJSON(data []byte) *JobBuilder {
	b.raw = slices.Clone(data)
	b.rawSet = true
	return b
}

// job is the server's state of one job.
type job struct {
	rec    JobRecord
	deps   []int64
	raw    []byte // non-nil: the exact payload to send
	runner string // non-empty: only this runner token may take it
}

func (j *job) active() bool {
	return j.rec.State == gitlab.StateRunning || j.rec.State == gitlab.StateCanceling
}

// tokenOK reports whether tok authenticates as this job.
func (j *job) tokenOK(tok string) bool {
	return tok != "" && tok == j.rec.Token
}

// latestArchive returns the last uploaded archive artifact, or nil.
func (j *job) latestArchive() *Artifact {
	for i := len(j.rec.Artifacts) - 1; i >= 0; i-- {
		if j.rec.Artifacts[i].Type == "archive" {
			return &j.rec.Artifacts[i]
		}
	}
	return nil
}

// Enqueue adds a pending job and returns its id. Ids increase from 1000.
// The job gets a random "glcbt-" job token and GitLab's predefined
// variables. Enqueue panics if a DependsOn id is not a job of this server,
// or if the ForRunner token is not one of its runners'.
func (s *Server) Enqueue(b *JobBuilder) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.runners[b.runner]; b.runner != "" && !ok {
		panic(fmt.Sprintf("gitlabtest: job %q is for an unknown runner token", b.name))
	}
	for _, d := range b.deps {
		if _, ok := s.jobs[d]; !ok {
			panic(fmt.Sprintf("gitlabtest: job %q depends on unknown job %d", b.name, d))
		}
	}
	j := s.newJobLocked(b)
	j.rec.State = gitlab.StatePending
	s.changedLocked()
	return j.rec.ID
}

// AddFinishedJob adds a job that already succeeded, with an archive
// artifact holding artifactsZip (none when it is nil), for later jobs to
// depend on. It returns the job's id.
func (s *Server) AddFinishedJob(name string, artifactsZip []byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.newJobLocked(NewJob(name).Stage("build"))
	j.rec.State = gitlab.StateSuccess
	if artifactsZip != nil {
		j.rec.Artifacts = append(j.rec.Artifacts, Artifact{
			Filename: "artifacts.zip",
			Format:   string(gitlab.FormatZip),
			Type:     "archive",
			Data:     slices.Clone(artifactsZip),
		})
	}
	s.changedLocked()
	return j.rec.ID
}

func (s *Server) newJobLocked(b *JobBuilder) *job {
	id := s.nextJobID
	s.nextJobID++
	p := s.buildPayload(b, id, "glcbt-"+randomString(20))
	for _, m := range b.mutators {
		m(&p)
	}
	j := &job{
		rec:    JobRecord{ID: id, Name: b.name, Token: p.Token, Payload: p},
		deps:   slices.Clone(b.deps),
		runner: b.runner,
	}
	if b.rawSet {
		j.raw = slices.Clone(b.raw)
		if j.raw == nil {
			j.raw = []byte{}
		}
		// Keep whatever can be decoded: the token, for one.
		var decoded gitlab.Job
		_ = json.Unmarshal(b.raw, &decoded)
		j.rec.Payload = decoded
		j.rec.Token = decoded.Token
	}
	s.jobs[id] = j
	s.order = append(s.order, id)
	if len(j.deps) > 0 {
		s.dependents = append(s.dependents, id)
	}
	return j
}

// buildPayload fills in the job payload GitLab would send.
func (s *Server) buildPayload(b *JobBuilder, id int64, token string) gitlab.Job {
	u, _ := url.Parse(s.URL)
	host, port := u.Hostname(), u.Port()
	projectPath := "group/" + b.projectName
	git := gitlab.GitInfo{
		Ref:       "main",
		Sha:       s.sha,
		BeforeSha: strings.Repeat("0", 40),
		RefType:   "branch",
		Refspecs:  []string{"+refs/heads/main:refs/remotes/origin/main"},
		Depth:     20,
	}
	if b.repo != nil {
		projectPath = b.repo.Path
		git = b.repo.gitInfo(b.ref)
	}
	if b.sha != "" {
		git.Sha = b.sha
	}
	if b.refspecs != nil {
		git.Refspecs = slices.Clone(b.refspecs)
	}
	if b.depthSet {
		git.Depth = b.depth
	}
	git.RepoURL = "http://gitlab-ci-token:" + token + "@" + u.Host + "/" + projectPath + ".git"
	refName := git.Ref
	projectURL := s.URL + "/" + projectPath
	idStr := strconv.FormatInt(id, 10)
	pub := func(k, v string) gitlab.Variable { return gitlab.Variable{Key: k, Value: v, Public: true} }
	vars := gitlab.Variables{
		pub("CI", "true"),
		pub("GITLAB_CI", "true"),
		pub("CI_SERVER_URL", s.URL),
		pub("CI_SERVER_HOST", host),
		pub("CI_SERVER_PORT", port),
		pub("CI_SERVER_PROTOCOL", "http"),
		pub("CI_SERVER_NAME", "GitLab"),
		pub("CI_API_V4_URL", s.URL+"/api/v4"),
		pub("CI_JOB_ID", idStr),
		pub("CI_JOB_NAME", b.name),
		pub("CI_JOB_STAGE", b.stage),
		pub("CI_JOB_URL", projectURL+"/-/jobs/"+idStr),
		{Key: "CI_JOB_TOKEN", Value: token, Masked: true},
		pub("CI_PIPELINE_ID", "1"),
		pub("CI_PIPELINE_SOURCE", "push"),
		pub("CI_PROJECT_ID", strconv.FormatInt(b.projectID, 10)),
		pub("CI_PROJECT_NAME", b.projectName),
		pub("CI_PROJECT_PATH", projectPath),
		pub("CI_PROJECT_URL", projectURL),
		{Key: "CI_REPOSITORY_URL", Value: git.RepoURL},
		pub("CI_COMMIT_SHA", git.Sha),
		pub("CI_COMMIT_SHORT_SHA", git.Sha[:min(8, len(git.Sha))]),
		pub("CI_COMMIT_REF_NAME", refName),
		pub("CI_DEFAULT_BRANCH", "main"),
		pub("GITLAB_USER_LOGIN", "root"),
	}
	if git.RefType == "tag" {
		vars = append(vars, pub("CI_COMMIT_TAG", refName))
	} else {
		vars = append(vars, pub("CI_COMMIT_BRANCH", refName))
	}
	vars = append(vars, b.vars...)

	var steps []gitlab.Step
	hasScript := false
	for _, st := range b.steps {
		if st.Name == gitlab.StepScript {
			hasScript = true
		}
	}
	if b.scriptSet || !hasScript {
		script := b.script
		if !b.scriptSet {
			script = []string{"echo hello"}
		}
		steps = append(steps, gitlab.Step{
			Name:    gitlab.StepScript,
			Script:  slices.Clone(script),
			Timeout: b.timeout,
			When:    gitlab.StepWhenOnSuccess,
		})
	}
	for _, st := range b.steps {
		st.Script = slices.Clone(st.Script)
		steps = append(steps, st)
	}
	if b.afterSet {
		steps = append(steps, gitlab.Step{
			Name:    gitlab.StepAfterScript,
			Script:  slices.Clone(b.after),
			Timeout: 300,
			When:    gitlab.StepWhenAlways,
		})
	}

	var deps []gitlab.Dependency
	for _, d := range b.deps {
		dj := s.jobs[d]
		dep := gitlab.Dependency{ID: d, Name: dj.rec.Name, Token: token}
		if a := dj.latestArchive(); a != nil {
			dep.ArtifactsFile = &gitlab.DependencyArtifactsFile{Filename: "artifacts.zip", Size: int64(len(a.Data))}
		}
		deps = append(deps, dep)
	}

	reasons := defaultFailureReasons
	if b.reasonsSet {
		reasons = b.reasons
	}
	var image gitlab.Image
	if b.image != "" {
		image.Name = b.image
	}
	p := gitlab.Job{
		ID:            id,
		Token:         token,
		AllowGitFetch: true,
		JobInfo: gitlab.JobInfo{
			Name:        b.name,
			Stage:       b.stage,
			ProjectID:   b.projectID,
			ProjectName: b.projectName,
		},
		GitInfo:    git,
		RunnerInfo: gitlab.RunnerInfo{Timeout: b.timeout},
		Variables:  vars,
		Steps:      steps,
		Image:      image,
		Artifacts:  cloneArtifactSpecs(b.artifacts),
		Credentials: []gitlab.Credentials{{
			Type:     "registry",
			URL:      u.Host,
			Username: "gitlab-ci-token",
			Password: token,
		}},
		Dependencies: deps,
		Features: gitlab.JobFeatures{
			TraceSections:     true,
			TokenMaskPrefixes: []string{},
			FailureReasons:    slices.Clone(reasons),
		},
	}
	return p
}

// refreshDepsLocked brings the artifacts_file of the payload's
// DependsOn dependencies up to date, at assignment time.
func (s *Server) refreshDepsLocked(j *job) {
	for i := range j.rec.Payload.Dependencies {
		d := &j.rec.Payload.Dependencies[i]
		if !slices.Contains(j.deps, d.ID) {
			continue
		}
		d.ArtifactsFile = nil
		if a := s.jobs[d.ID].latestArchive(); a != nil {
			d.ArtifactsFile = &gitlab.DependencyArtifactsFile{Filename: "artifacts.zip", Size: int64(len(a.Data))}
		}
	}
}

// settleLocked skips pending jobs whose dependencies can no longer
// succeed, until nothing changes.
func (s *Server) settleLocked() {
	for changed := true; changed; {
		changed = false
		// Only jobs with dependencies can be skipped: the queue is not
		// walked whole on every request (it was a sixth of the fake's CPU
		// with thousands of jobs queued).
		pending := s.dependents[:0]
		for _, id := range s.dependents {
			j := s.jobs[id]
			if j.rec.State != gitlab.StatePending {
				continue
			}
			for _, d := range j.deps {
				switch s.jobs[d].rec.State {
				case gitlab.StateFailed, gitlab.StateCanceled, gitlab.StateSkipped:
					j.rec.State = gitlab.StateSkipped
					changed = true
				}
				if j.rec.State == gitlab.StateSkipped {
					break
				}
			}
			if j.rec.State == gitlab.StatePending {
				pending = append(pending, id)
			}
		}
		clear(s.dependents[len(pending):])
		s.dependents = pending
	}
}

// advanceSettledLocked moves s.settled past the leading jobs that are no
// longer pending. A job never becomes pending again, so scans of pending
// jobs may start there: the queue is not walked whole on every change.
func (s *Server) advanceSettledLocked() {
	for s.settled < len(s.order) && s.jobs[s.order[s.settled]].rec.State != gitlab.StatePending {
		s.settled++
	}
}

// readyLocked reports whether all of j's dependencies succeeded.
func (s *Server) readyLocked(j *job) bool {
	for _, d := range j.deps {
		if s.jobs[d].rec.State != gitlab.StateSuccess {
			return false
		}
	}
	return true
}

// assignLocked hands out to the runner authenticating with token the
// first pending job for it whose dependencies all succeeded and returns
// it, or nil.
func (s *Server) assignLocked(token string) *job {
	s.settleLocked()
	for _, id := range s.order[s.settled:] {
		j := s.jobs[id]
		if j.rec.State != gitlab.StatePending || (j.runner != "" && j.runner != token) || !s.readyLocked(j) {
			continue
		}
		j.rec.State = gitlab.StateRunning
		if j.raw == nil {
			s.refreshDepsLocked(j)
		}
		s.changedLocked()
		return j
	}
	return nil
}

// Cancel cancels a job at once, as a user's hard cancel does: a pending,
// running or canceling job becomes canceled, so the runner's next call for
// it is answered 403 with Job-Status: canceled (the job token still
// identifies the job, as GitLab's JWT job tokens do, but no longer
// authorizes anything). Finished jobs are left alone. Cancel panics for an
// unknown id.
func (s *Server) Cancel(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.mustJobLocked(id)
	switch j.rec.State {
	case gitlab.StatePending, gitlab.StateRunning, gitlab.StateCanceling:
		j.rec.State = gitlab.StateCanceled
		s.changedLocked()
	}
}

// CancelGracefully asks for a graceful cancel: a running job becomes
// canceling (the runner learns it from the Job-Status header) and
// canceled when the runner sends its final update; a pending job becomes
// canceled at once. Other jobs are left alone. CancelGracefully panics for
// an unknown id.
func (s *Server) CancelGracefully(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.mustJobLocked(id)
	switch j.rec.State {
	case gitlab.StatePending:
		j.rec.State = gitlab.StateCanceled
		s.changedLocked()
	case gitlab.StateRunning:
		j.rec.State = gitlab.StateCanceling
		s.changedLocked()
	}
}

func (s *Server) mustJobLocked(id int64) *job {
	j, ok := s.jobs[id]
	if !ok {
		panic(fmt.Sprintf("gitlabtest: no job %d", id))
	}
	return j
}

// Job returns a snapshot of the job with the given id, or a zero
// JobRecord when there is none.
func (s *Server) Job(id int64) JobRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return JobRecord{}
	}
	return j.rec.clone()
}

// Jobs returns snapshots of all jobs, by increasing id.
func (s *Server) Jobs() []JobRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]JobRecord, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.jobs[id].rec.clone())
	}
	return out
}

// WaitForState waits until the job is in one of states and returns its
// snapshot. It fails for an unknown job, when ctx is done or when the
// server is closed first; the snapshot returned then is the latest.
func (s *Server) WaitForState(ctx context.Context, id int64, states ...gitlab.JobState) (JobRecord, error) {
	for {
		s.mu.Lock()
		j, ok := s.jobs[id]
		if !ok {
			s.mu.Unlock()
			return JobRecord{}, fmt.Errorf("gitlabtest: no job %d", id)
		}
		if slices.Contains(states, j.rec.State) {
			rec := j.rec.clone()
			s.mu.Unlock()
			return rec, nil
		}
		ch, closed := s.changed, s.closed
		if closed {
			rec := j.rec.clone()
			s.mu.Unlock()
			return rec, fmt.Errorf("gitlabtest: server closed while job %d is %s, want one of %v", id, rec.State, states)
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			rec := s.Job(id)
			return rec, fmt.Errorf("gitlabtest: job %d is %s, want one of %v: %w", id, rec.State, states, ctx.Err())
		}
	}
}

// clone deep-copies the record.
func (r JobRecord) clone() JobRecord {
	r.Payload = cloneJob(r.Payload)
	r.Trace = slices.Clone(r.Trace)
	r.Patches = slices.Clone(r.Patches)
	for i := range r.Patches {
		r.Patches[i].Data = slices.Clone(r.Patches[i].Data)
	}
	r.Updates = slices.Clone(r.Updates)
	for i := range r.Updates {
		if o := r.Updates[i].Output; o != nil {
			c := *o
			r.Updates[i].Output = &c
		}
	}
	r.Artifacts = slices.Clone(r.Artifacts)
	for i := range r.Artifacts {
		r.Artifacts[i].Data = slices.Clone(r.Artifacts[i].Data)
	}
	return r
}

func cloneImage(im gitlab.Image) gitlab.Image {
	im.Command = slices.Clone(im.Command)
	im.Entrypoint = slices.Clone(im.Entrypoint)
	return im
}

func cloneArtifactSpecs(as []gitlab.ArtifactSpec) []gitlab.ArtifactSpec {
	as = slices.Clone(as)
	for i := range as {
		as[i].Paths = slices.Clone(as[i].Paths)
		as[i].Exclude = slices.Clone(as[i].Exclude)
	}
	return as
}

// cloneJob deep-copies a payload.
func cloneJob(p gitlab.Job) gitlab.Job {
	p.GitInfo.Refspecs = slices.Clone(p.GitInfo.Refspecs)
	p.Variables = slices.Clone(p.Variables)
	p.Steps = slices.Clone(p.Steps)
	for i := range p.Steps {
		p.Steps[i].Script = slices.Clone(p.Steps[i].Script)
	}
	p.Image = cloneImage(p.Image)
	p.Services = slices.Clone(p.Services)
	for i := range p.Services {
		p.Services[i] = cloneImage(p.Services[i])
	}
	p.Artifacts = cloneArtifactSpecs(p.Artifacts)
	p.Cache = slices.Clone(p.Cache)
	for i := range p.Cache {
		p.Cache[i].Paths = slices.Clone(p.Cache[i].Paths)
		p.Cache[i].FallbackKeys = slices.Clone(p.Cache[i].FallbackKeys)
	}
	p.Credentials = slices.Clone(p.Credentials)
	p.Dependencies = slices.Clone(p.Dependencies)
	for i := range p.Dependencies {
		if af := p.Dependencies[i].ArtifactsFile; af != nil {
			c := *af
			p.Dependencies[i].ArtifactsFile = &c
		}
	}
	p.Features.TokenMaskPrefixes = slices.Clone(p.Features.TokenMaskPrefixes)
	p.Features.FailureReasons = slices.Clone(p.Features.FailureReasons)
	return p
}

// Zip returns a zip archive holding files (name -> contents), in name
// order, for AddFinishedJob and other artifact fixtures. It panics if the
// archive cannot be written, which does not happen with in-memory data.
func Zip(files map[string]string) []byte {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		w, err := zw.Create(name)
		if err == nil {
			_, err = io.WriteString(w, files[name])
		}
		if err != nil {
			panic(fmt.Sprintf("gitlabtest: Zip: %v", err))
		}
	}
	if err := zw.Close(); err != nil {
		panic(fmt.Sprintf("gitlabtest: Zip: %v", err))
	}
	return buf.Bytes()
}
