package gitlab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Job is the payload GitLab sends when it assigns a job to the runner
// (the 201 reply to POST jobs/request).
//
// Decoding ignores unknown fields and keeps unknown step names as they are:
// by the time the payload arrives the job is assigned to this runner, so it
// must be decodable enough to be reported back, whatever GitLab adds.
type Job struct {
	ID            int64          `json:"id"`
	Token         string         `json:"token"`
	AllowGitFetch bool           `json:"allow_git_fetch"`
	JobInfo       JobInfo        `json:"job_info"`
	GitInfo       GitInfo        `json:"git_info"`
	RunnerInfo    RunnerInfo     `json:"runner_info"`
	Variables     Variables      `json:"variables"`
	Steps         []Step         `json:"steps"`
	Image         Image          `json:"image"`
	Services      []Image        `json:"services"`
	Artifacts     []ArtifactSpec `json:"artifacts"`
	Cache         []Cache        `json:"cache"`
	Credentials   []Credentials  `json:"credentials"`
	Dependencies  []Dependency   `json:"dependencies"`
	Features      JobFeatures    `json:"features"`
}

// JobInfo names the job and its project.
type JobInfo struct {
	Name        string `json:"name"`
	Stage       string `json:"stage"`
	ProjectID   int64  `json:"project_id"`
	ProjectName string `json:"project_name"`
}

// GitInfo describes the commit the job runs for.
type GitInfo struct {
	RepoURL   string   `json:"repo_url"`
	Ref       string   `json:"ref"`
	Sha       string   `json:"sha"`
	BeforeSha string   `json:"before_sha"`
	RefType   string   `json:"ref_type"`
	Refspecs  []string `json:"refspecs"`
	Depth     int      `json:"depth"`
}

// RunnerInfo carries per-job runner settings chosen by GitLab.
type RunnerInfo struct {
	// Timeout is the job timeout in seconds; zero or less means the
	// runner's default (see [Job.Timeout]).
	Timeout int64 `json:"timeout"`
}

// DefaultJobTimeout is the job timeout when GitLab sends none.
const DefaultJobTimeout = 2 * time.Hour

// maxJobTimeout caps absurd timeouts (GitLab's own maximum is a month).
const maxJobTimeout = 366 * 24 * time.Hour

// Timeout returns the job timeout: runner_info.timeout seconds, or
// [DefaultJobTimeout] when that is zero or less.
func (j *Job) Timeout() time.Duration {
	s := j.RunnerInfo.Timeout
	switch {
	case s <= 0:
		return DefaultJobTimeout
	case s > int64(maxJobTimeout/time.Second):
		return maxJobTimeout
	}
	return time.Duration(s) * time.Second
}

// Variable is one CI/CD variable of the job.
type Variable struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Public bool   `json:"public"`
	Masked bool   `json:"masked"`
	File   bool   `json:"file"`
	Raw    bool   `json:"raw"`
}

// Variables is the job's variable list, in GitLab's order (later entries
// override earlier ones with the same key).
type Variables []Variable

// Get returns the last variable named key.
func (vs Variables) Get(key string) (Variable, bool) {
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].Key == key {
			return vs[i], true
		}
	}
	return Variable{}, false
}

// Value returns the value of the last variable named key, or "".
func (vs Variables) Value(key string) string {
	v, _ := vs.Get(key)
	return v.Value
}

// Masked returns the non-empty values of masked variables.
func (vs Variables) Masked() []string {
	var out []string
	for _, v := range vs {
		if v.Masked && v.Value != "" {
			out = append(out, v.Value)
		}
	}
	return out
}

// StepName names a step of the job. GitLab may send names this package
// does not list; they decode unchanged.
type StepName string

// Step names GitLab sends.
const (
	StepScript      StepName = "script"
	StepAfterScript StepName = "after_script"
	StepRelease     StepName = "release"
)

// StepWhen says when a step runs relative to the job's result so far.
type StepWhen string

// Values of [StepWhen].
const (
	StepWhenOnSuccess StepWhen = "on_success"
	StepWhenOnFailure StepWhen = "on_failure"
	StepWhenAlways    StepWhen = "always"
)

// Step is one step of the job: GitLab has already joined before_script and
// script into the script step.
type Step struct {
	Name         StepName `json:"name"`
	Script       []string `json:"script"`
	Timeout      int64    `json:"timeout"`
	When         StepWhen `json:"when"`
	AllowFailure bool     `json:"allow_failure"`
}

// Step returns the job's step with the given name.
func (j *Job) Step(name StepName) (Step, bool) {
	for _, s := range j.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return Step{}, false
}

// Image is the job's image or one of its services.
type Image struct {
	Name       string   `json:"name"`
	Alias      string   `json:"alias,omitempty"`
	Command    []string `json:"command,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
}

// ArtifactWhen says for which job results an artifact is uploaded.
type ArtifactWhen string

// Values of [ArtifactWhen]. An empty value means on_success.
const (
	ArtifactsOnSuccess ArtifactWhen = "on_success"
	ArtifactsOnFailure ArtifactWhen = "on_failure"
	ArtifactsAlways    ArtifactWhen = "always"
)

// ArtifactFormat is the archive format of an artifact upload.
type ArtifactFormat string

// Values of [ArtifactFormat].
const (
	FormatZip  ArtifactFormat = "zip"
	FormatGzip ArtifactFormat = "gzip"
	FormatRaw  ArtifactFormat = "raw"
)

// ArtifactSpec is one entry of the job's artifacts: what to collect after
// the script and how to upload it.
type ArtifactSpec struct {
	Name      string         `json:"name"`
	Untracked bool           `json:"untracked"`
	Paths     []string       `json:"paths"`
	Exclude   []string       `json:"exclude"`
	When      ArtifactWhen   `json:"when"`
	Type      string         `json:"artifact_type"`
	Format    ArtifactFormat `json:"artifact_format"`
	ExpireIn  string         `json:"expire_in"`
}

// Cache is one cache entry of the job.
type Cache struct {
	Key          string   `json:"key"`
	Untracked    bool     `json:"untracked"`
	Policy       string   `json:"policy"`
	Paths        []string `json:"paths"`
	When         string   `json:"when"`
	FallbackKeys []string `json:"fallback_keys"`
}

// Credentials are registry or other credentials GitLab passes to the job.
type Credentials struct {
	Type     string `json:"type"`
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// Dependency is a job whose artifacts this job needs.
type Dependency struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Token string `json:"token"`
	// ArtifactsFile is nil when the dependency has no artifacts.
	ArtifactsFile *DependencyArtifactsFile `json:"artifacts_file,omitempty"`
}

// DependencyArtifactsFile describes a dependency's artifacts archive.
type DependencyArtifactsFile struct {
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
}

// JobFeatures are job-level settings of GitLab.
type JobFeatures struct {
	TraceSections     bool     `json:"trace_sections"`
	TokenMaskPrefixes []string `json:"token_mask_prefixes"`
	FailureReasons    []string `json:"failure_reasons"`
}

// ErrBadPayload reports a job payload that cannot be decoded or lacks what
// every later call needs (an id and a job token).
var ErrBadPayload = errors.New("gitlab: malformed job payload")

// DecodeJob decodes a job payload. Unknown fields are ignored; a payload
// that is not a JSON object, has trailing data, or lacks the job id or token
// is an error wrapping [ErrBadPayload]. The error never quotes the payload,
// which holds secrets.
func DecodeJob(data []byte) (*Job, error) {
	var j Job
	// Unmarshal, not a Decoder: it decodes from data in place, where a
	// Decoder copies it into a buffer of its own first (13 KiB a job).
	if err := json.Unmarshal(data, &j); err != nil {
		var syn *json.SyntaxError
		switch {
		case len(bytes.TrimSpace(data)) == 0:
			return nil, fmt.Errorf("%w: empty body", ErrBadPayload)
		case errors.As(err, &syn) && strings.HasSuffix(syn.Error(), "after top-level value"):
			return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrBadPayload)
		case errors.As(err, &syn) && syn.Error() == "unexpected end of JSON input":
			return nil, fmt.Errorf("%w: truncated JSON (%d bytes)", ErrBadPayload, len(data))
		}
		return nil, fmt.Errorf("%w: %s", ErrBadPayload, describeJSONError(err))
	}
	if j.ID <= 0 {
		return nil, fmt.Errorf("%w: missing or invalid job id", ErrBadPayload)
	}
	if j.Token == "" {
		return nil, fmt.Errorf("%w: job %d has no job token", ErrBadPayload, j.ID)
	}
	return &j, nil
}

// describeJSONError says what went wrong without quoting the input.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q: cannot decode JSON %s into %s", typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "empty body"
	default:
		return "invalid JSON"
	}
}
