package wasmrunner

import (
	"strconv"
	"time"
)

// Phase is the part of the job a step runs.
type Phase int32

// Phases, in the order a job runs them.
const (
	// PhaseScript runs the job's script (before_script and script).
	PhaseScript Phase = 0
	// PhaseAfterScript runs after_script, after success, failure or a
	// graceful cancel; CI_JOB_STATUS tells which.
	PhaseAfterScript Phase = 1
)

// String returns the phase's name in .gitlab-ci.yml.
func (p Phase) String() string {
	switch p {
	case PhaseScript:
		return "script"
	case PhaseAfterScript:
		return "after_script"
	}
	return "phase " + strconv.Itoa(int(p))
}

// Job describes the running job.
type Job struct {
	// ID and ProjectID are the GitLab ids of the job and its project.
	ID, ProjectID int64
	// Timeout is the job's timeout (whole seconds).
	Timeout time.Duration
	// Name and Stage are the job's name and stage in .gitlab-ci.yml.
	Name, Stage string
	// ProjectName is the name of the job's project.
	ProjectName string
	// Image is the job's image name, which chose this handler ("" if none).
	Image string
}

// JobInfo returns the running job's description.
func JobInfo() Job {
	return Job{
		ID:          host.JobID(),
		ProjectID:   host.JobProjectID(),
		Timeout:     time.Duration(host.JobTimeout()) * time.Second,
		Name:        jobString(fieldName),
		Stage:       jobString(fieldStage),
		ProjectName: jobString(fieldProjectName),
		Image:       jobString(fieldImage),
	}
}

func jobString(field int32) string {
	s, _ := readString(func(buf []byte) int32 { return host.JobString(field, buf) })
	return s
}

// CurrentPhase returns the phase of the running step.
func CurrentPhase() Phase { return Phase(host.Phase()) }

// Script returns the script lines of the running step: the lines Step
// receives.
func Script() ([]string, error) {
	n := host.ScriptCount()
	if n < 0 {
		return nil, Errno(n)
	}
	lines := make([]string, n)
	for i := range lines {
		s, err := readString(func(buf []byte) int32 { return host.ScriptLine(int32(i), buf) })
		if err != nil {
			return nil, err
		}
		lines[i] = s
	}
	return lines, nil
}
