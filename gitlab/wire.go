package gitlab

import (
	"fmt"
	"time"
)

// Request and reply bodies of the runner API, as they travel on the wire.
// They are exported so that a fake GitLab (package gitlabtest) decodes
// exactly what the client encodes.

// JobRequest is the body of POST jobs/request.
type JobRequest struct {
	Token      string     `json:"token"`
	SystemID   string     `json:"system_id,omitempty"`
	Info       RunnerMeta `json:"info"`
	LastUpdate string     `json:"last_update,omitempty"`
}

// RunnerMeta describes the runner to GitLab (the "info" object).
type RunnerMeta struct {
	Name         string   `json:"name,omitempty"`
	Version      string   `json:"version,omitempty"`
	Revision     string   `json:"revision,omitempty"`
	Platform     string   `json:"platform,omitempty"`
	Architecture string   `json:"architecture,omitempty"`
	Executor     string   `json:"executor,omitempty"`
	Shell        string   `json:"shell,omitempty"`
	Features     Features `json:"features"`
}

// Features are the capabilities the runner claims. GitLab decides what to
// send (and whether to send a job at all) from them, so a runner claims
// only what it implements.
type Features struct {
	Variables               bool `json:"variables"`
	Image                   bool `json:"image"`
	Services                bool `json:"services"`
	Artifacts               bool `json:"artifacts"`
	Cache                   bool `json:"cache"`
	Shared                  bool `json:"shared"`
	UploadMultipleArtifacts bool `json:"upload_multiple_artifacts"`
	UploadRawArtifacts      bool `json:"upload_raw_artifacts"`
	Session                 bool `json:"session"`
	Terminal                bool `json:"terminal"`
	Refspecs                bool `json:"refspecs"`
	Masking                 bool `json:"masking"`
	Proxy                   bool `json:"proxy"`
	RawVariables            bool `json:"raw_variables"`
	ArtifactsExclude        bool `json:"artifacts_exclude"`
	MultiBuildSteps         bool `json:"multi_build_steps"`
	TraceReset              bool `json:"trace_reset"`
	TraceChecksum           bool `json:"trace_checksum"`
	TraceSize               bool `json:"trace_size"`
	VaultSecrets            bool `json:"vault_secrets"`
	Cancelable              bool `json:"cancelable"`
	ReturnExitCode          bool `json:"return_exit_code"`
	ServiceVariables        bool `json:"service_variables"`
	CancelGracefully        bool `json:"cancel_gracefully"`
}

// DefaultFeatures returns the features wasmrunner implements. It does not
// claim multi_build_steps: steps other than script and after_script (such
// as release) are not run, so GitLab should not send jobs that need them.
func DefaultFeatures() Features {
	return Features{
		Variables:               true,
		Image:                   true,
		Artifacts:               true,
		UploadMultipleArtifacts: true,
		UploadRawArtifacts:      true,
		Refspecs:                true,
		Masking:                 true,
		RawVariables:            true,
		ArtifactsExclude:        true,
		TraceReset:              true,
		TraceChecksum:           true,
		TraceSize:               true,
		Cancelable:              true,
		ReturnExitCode:          true,
		CancelGracefully:        true,
	}
}

// JobState is a job's state as GitLab reports it (Job-Status header) or as
// the runner sets it (PUT jobs/:id).
type JobState string

// Job states.
const (
	StatePending   JobState = "pending"
	StateRunning   JobState = "running"
	StateSuccess   JobState = "success"
	StateFailed    JobState = "failed"
	StateCanceling JobState = "canceling"
	StateCanceled  JobState = "canceled"
	StateSkipped   JobState = "skipped"
)

// FailureReason is why a job failed, as GitLab knows it.
type FailureReason string

// Failure reasons a runner reports. Only ScriptFailure,
// RunnerSystemFailure and JobExecutionTimeout are always accepted; the
// others only when listed in the job's features.failure_reasons (see
// [Job.FailureReason]).
const (
	ScriptFailure       FailureReason = "script_failure"
	RunnerSystemFailure FailureReason = "runner_system_failure"
	JobExecutionTimeout FailureReason = "job_execution_timeout"
	UnknownFailure      FailureReason = "unknown_failure"
	RunnerUnsupported   FailureReason = "runner_unsupported"
	StaleSchedule       FailureReason = "stale_schedule"
	ArchivedFailure     FailureReason = "archived_failure"
	UnmetPrerequisites  FailureReason = "unmet_prerequisites"
	ScheduledFailure    FailureReason = "scheduler_failure"
	DataIntegrity       FailureReason = "data_integrity_failure"
	JobCanceled         FailureReason = "job_canceled"
	RunnerInterrupted   FailureReason = "runner_interrupted"
	ImagePullFailure    FailureReason = "image_pull_failure"
)

// FailureReason maps r to what GitLab accepts for this job: r itself when
// it is always accepted or listed in features.failure_reasons, else
// [UnknownFailure].
func (j *Job) FailureReason(r FailureReason) FailureReason {
	switch r {
	case "", ScriptFailure, RunnerSystemFailure, JobExecutionTimeout:
		return r
	}
	for _, s := range j.Features.FailureReasons {
		if FailureReason(s) == r {
			return r
		}
	}
	return UnknownFailure
}

// UpdateJobRequest is the body of PUT jobs/:id.
type UpdateJobRequest struct {
	Token         string        `json:"token"`
	State         JobState      `json:"state"`
	FailureReason FailureReason `json:"failure_reason,omitempty"`
	ExitCode      int           `json:"exit_code,omitempty"`
	Checksum      string        `json:"checksum,omitempty"`
	Output        *JobOutput    `json:"output,omitempty"`
}

// JobOutput describes the trace the runner sent, so GitLab can check it.
type JobOutput struct {
	Checksum string `json:"checksum"`
	Bytesize int64  `json:"bytesize"`
}

// VerifyRunnerRequest is the body of POST runners/verify.
type VerifyRunnerRequest struct {
	Token    string `json:"token"`
	SystemID string `json:"system_id,omitempty"`
}

// RegisterRunnerRequest is the body of the legacy POST runners, which
// trades a registration token for a runner token.
type RegisterRunnerRequest struct {
	Token          string     `json:"token"`
	Description    string     `json:"description,omitempty"`
	Info           RunnerMeta `json:"info"`
	TagList        string     `json:"tag_list,omitempty"`
	RunUntagged    bool       `json:"run_untagged"`
	Locked         bool       `json:"locked"`
	Paused         bool       `json:"paused"`
	MaximumTimeout int64      `json:"maximum_timeout,omitempty"`
	AccessLevel    string     `json:"access_level,omitempty"`
}

// CreateRunnerRequest is the body of POST user/runners, which creates a
// runner with a personal access token (GitLab 16 and later).
type CreateRunnerRequest struct {
	RunnerType     string `json:"runner_type"`
	GroupID        int64  `json:"group_id,omitempty"`
	ProjectID      int64  `json:"project_id,omitempty"`
	Description    string `json:"description,omitempty"`
	TagList        string `json:"tag_list,omitempty"`
	RunUntagged    bool   `json:"run_untagged"`
	Locked         bool   `json:"locked"`
	Paused         bool   `json:"paused"`
	MaximumTimeout int64  `json:"maximum_timeout,omitempty"`
	AccessLevel    string `json:"access_level,omitempty"`
}

// Runner types for [CreateRunnerRequest].
const (
	InstanceRunner = "instance_type"
	GroupRunner    = "group_type"
	ProjectRunner  = "project_type"
)

// RunnerCredentials is GitLab's reply to registration, creation,
// verification or a token reset (which has no ID).
type RunnerCredentials struct {
	ID    int64  `json:"id"`
	Token string `json:"token"`
	// TokenExpiresAt is when the token expires, as GitLab writes times
	// ("2025-01-02T15:04:05.000Z"); "" or a zero time: never (see
	// [RunnerCredentials.Expires]).
	TokenExpiresAt string `json:"token_expires_at,omitempty"`
}

// Expires returns when the token expires; the zero time when it does not
// (GitLab leaves the field empty or null, or writes year 1).
func (rc RunnerCredentials) Expires() (time.Time, error) {
	if rc.TokenExpiresAt == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, rc.TokenExpiresAt)
	if err != nil {
		return time.Time{}, fmt.Errorf("gitlab: token_expires_at %q: %w", rc.TokenExpiresAt, err)
	}
	if t.Year() <= 1 {
		return time.Time{}, nil
	}
	return t, nil
}
