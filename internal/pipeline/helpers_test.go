package pipeline

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func mustParse(t *testing.T, src string) *Pipeline {
	t.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return p
}

// parseErr parses src, which must fail with an *Error, and returns the
// message.
func parseErr(t *testing.T, src string) string {
	t.Helper()
	p, err := Parse([]byte(src))
	if err == nil {
		t.Fatalf("Parse succeeded, want an error; jobs %v\n%s", jobNames(p.Jobs), src)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return err.Error()
}

func jobNames(jobs []*Job) []string {
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.Name
	}
	return names
}

func getJob(t *testing.T, p *Pipeline, name string) *Job {
	t.Helper()
	for _, j := range p.Jobs {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("no job %q in %v", name, jobNames(p.Jobs))
	return nil
}

func assertEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func assertStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// countWarnings returns how many warnings contain every one of parts.
func countWarnings(p *Pipeline, parts ...string) int {
	n := 0
	for _, w := range p.Warnings {
		all := true
		for _, s := range parts {
			all = all && strings.Contains(w, s)
		}
		if all {
			n++
		}
	}
	return n
}
