package engine

import (
	"slices"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// AllVariables yields what Variables returns, as of when it was called:
// a variable the runner adds later (CI_JOB_STATUS) or a file variable's
// path written later does not change what an earlier caller ranges over.
func TestAllVariablesSnapshot(t *testing.T) {
	j := &Job{vars: make(gitlab.Variables, 0, 8)}
	j.vars = append(j.vars, gitlab.Variable{Key: "A", Value: "1"}, gitlab.Variable{Key: "F", Value: "content", File: true})
	seq := j.AllVariables()
	j.setVariable(gitlab.Variable{Key: "CI_JOB_STATUS", Value: "failed"})
	j.tmpDir = t.TempDir()
	j.tmpMade = true
	if err := j.writeFileVariables(); err != nil {
		t.Fatal(err)
	}
	got := slices.Collect(seq)
	want := []gitlab.Variable{{Key: "A", Value: "1"}, {Key: "F", Value: "content", File: true}}
	if !slices.Equal(got, want) {
		t.Errorf("AllVariables yielded %+v, want %+v", got, want)
	}
	if now := slices.Collect(j.AllVariables()); !slices.Equal(now, j.Variables()) || len(now) != 3 || now[1].Value == "content" {
		t.Errorf("AllVariables now yields %+v, Variables returns %+v", now, j.Variables())
	}
}
