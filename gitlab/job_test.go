package gitlab

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// samplePayload is a job payload as GitLab sends it, with fields and a step
// name this package does not know.
const samplePayload = `{
  "id": 42, "token": "glcbt-64_abcdefghijklmnop", "allow_git_fetch": true,
  "job_info": {"id": 42, "name": "build", "stage": "test", "project_id": 7, "project_name": "demo", "time_in_queue_seconds": 1.5},
  "git_info": {"repo_url": "https://gitlab-ci-token:x@example.com/g/demo.git", "ref": "main", "sha": "abc", "before_sha": "000", "ref_type": "branch", "refspecs": ["+refs/heads/main:refs/remotes/origin/main"], "depth": 20},
  "runner_info": {"timeout": 600, "runner_session_url": null},
  "variables": [
    {"key": "CI_JOB_ID", "value": "42", "public": true, "masked": false},
    {"key": "SECRET", "value": "hunter22", "public": false, "masked": true},
    {"key": "CFG", "value": "a=b", "public": false, "file": true, "raw": true},
    {"key": "SECRET", "value": "override", "public": false, "masked": true}
  ],
  "steps": [
    {"name": "script", "script": ["echo hi", "make"], "timeout": 600, "when": "on_success", "allow_failure": false},
    {"name": "after_script", "script": ["echo bye"], "timeout": 300, "when": "always", "allow_failure": true},
    {"name": "brand_new_step", "script": ["x"], "timeout": 1, "when": "always", "extra": {"nested": [1,2]}}
  ],
  "image": {"name": "shell", "entrypoint": [""], "pull_policy": ["always"]},
  "services": [{"name": "postgres", "alias": "db"}],
  "artifacts": [{"name": "out", "untracked": false, "paths": ["dist/"], "exclude": ["dist/*.tmp"], "when": "on_success", "artifact_type": "archive", "artifact_format": "zip", "expire_in": "1 day"}],
  "cache": [],
  "credentials": [{"type": "registry", "url": "registry.example.com", "username": "gitlab-ci-token", "password": "x"}],
  "dependencies": [{"id": 41, "name": "prep", "token": "glcbt-64_abcdefghijklmnop", "artifacts_file": {"filename": "artifacts.zip", "size": 123}}],
  "features": {"trace_sections": true, "token_mask_prefixes": ["glpat-", "custom-"], "failure_reasons": ["script_failure", "job_canceled"]},
  "something_new": {"x": 1}
}`

func TestDecodeJob(t *testing.T) {
	j, err := DecodeJob([]byte(samplePayload))
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != 42 || j.JobInfo.Name != "build" || j.JobInfo.ProjectID != 7 {
		t.Errorf("job info = %+v", j.JobInfo)
	}
	if got := j.Variables.Value("SECRET"); got != "override" {
		t.Errorf("SECRET = %q, want the later value", got)
	}
	if v, _ := j.Variables.Get("CFG"); !v.File || !v.Raw {
		t.Errorf("CFG = %+v", v)
	}
	if got := j.Variables.Masked(); strings.Join(got, ",") != "hunter22,override" {
		t.Errorf("Masked() = %q", got)
	}
	if len(j.Steps) != 3 || j.Steps[2].Name != "brand_new_step" {
		t.Errorf("steps = %+v", j.Steps)
	}
	if s, ok := j.Step(StepAfterScript); !ok || s.Script[0] != "echo bye" || s.When != StepWhenAlways {
		t.Errorf("after_script = %+v %v", s, ok)
	}
	if j.Image.Name != "shell" || j.Services[0].Alias != "db" {
		t.Errorf("image = %+v services = %+v", j.Image, j.Services)
	}
	a := j.Artifacts[0]
	if a.Format != FormatZip || a.Type != "archive" || a.Exclude[0] != "dist/*.tmp" || a.ExpireIn != "1 day" {
		t.Errorf("artifacts = %+v", a)
	}
	d := j.Dependencies[0]
	if d.ID != 41 || d.ArtifactsFile == nil || d.ArtifactsFile.Size != 123 {
		t.Errorf("dependency = %+v", d)
	}
	if !j.Features.TraceSections || j.Features.TokenMaskPrefixes[1] != "custom-" {
		t.Errorf("features = %+v", j.Features)
	}
	if j.Timeout() != 10*time.Minute {
		t.Errorf("Timeout() = %v", j.Timeout())
	}
}

func TestDecodeJobErrors(t *testing.T) {
	tests := []struct {
		name, payload, want string
	}{
		{"empty", ``, "empty body"},
		{"not json", `<html>`, "invalid JSON"},
		{"truncated", `{"id": 1, "token": "glcbt-x`, "truncated JSON (27 bytes)"},
		{"blank", " \n", "empty body"},
		{"array", `[1,2]`, "cannot decode"},
		{"wrong type", `{"id": "one", "token": "t"}`, `field "id"`},
		{"no id", `{"token": "t"}`, "missing or invalid job id"},
		{"negative id", `{"id": -3, "token": "t"}`, "missing or invalid job id"},
		{"no token", `{"id": 3}`, "has no job token"},
		{"trailing", `{"id": 3, "token": "t"} {}`, "trailing data"},
		{"step script not list", `{"id": 3, "token": "t", "steps": [{"name": "script", "script": "echo"}]}`, `field "steps.script"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeJob([]byte(tt.payload))
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("err = %v, want ErrBadPayload", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestDecodeJobNeverQuotesSecrets(t *testing.T) {
	_, err := DecodeJob([]byte(`{"id": 1, "token": "glcbt-supersecret", "variables": [{"key": "K", "value": 5}]}`))
	if err == nil || strings.Contains(err.Error(), "supersecret") {
		t.Fatalf("err = %v", err)
	}
}

func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(samplePayload))
	f.Add([]byte(`{"id": 1, "token": "t"}`))
	f.Add([]byte(`{"id": 1, "token": "t", "steps": [{"name": "x"}], "variables": null}`))
	f.Add([]byte(`{"id": 1e400}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error %v does not wrap ErrBadPayload", err)
			}
			if j != nil {
				t.Fatal("job returned with an error")
			}
			return
		}
		if j.ID <= 0 || j.Token == "" {
			t.Fatalf("accepted a job without id or token: %+v", j)
		}
		if j.Timeout() <= 0 {
			t.Fatalf("Timeout() = %v", j.Timeout())
		}
		// A decoded job re-encodes and decodes to the same job.
		again, err := json.Marshal(j)
		if err != nil {
			t.Fatal(err)
		}
		j2, err := DecodeJob(again)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if j2.ID != j.ID || j2.Token != j.Token || len(j2.Steps) != len(j.Steps) || len(j2.Variables) != len(j.Variables) {
			t.Fatal("round trip changed the job")
		}
	})
}

func TestJobTimeout(t *testing.T) {
	for _, tt := range []struct {
		secs int64
		want time.Duration
	}{
		{0, 2 * time.Hour}, {-5, 2 * time.Hour}, {1, time.Second}, {3600, time.Hour},
		{1 << 62, maxJobTimeout},
	} {
		j := &Job{RunnerInfo: RunnerInfo{Timeout: tt.secs}}
		if got := j.Timeout(); got != tt.want {
			t.Errorf("Timeout(%d) = %v, want %v", tt.secs, got, tt.want)
		}
	}
}

func TestFailureReason(t *testing.T) {
	j := &Job{Features: JobFeatures{FailureReasons: []string{"job_canceled"}}}
	for in, want := range map[FailureReason]FailureReason{
		ScriptFailure:       ScriptFailure,
		RunnerSystemFailure: RunnerSystemFailure,
		JobExecutionTimeout: JobExecutionTimeout,
		JobCanceled:         JobCanceled,
		RunnerInterrupted:   UnknownFailure,
		"":                  "",
	} {
		if got := j.FailureReason(in); got != want {
			t.Errorf("FailureReason(%q) = %q, want %q", in, got, want)
		}
	}
}
