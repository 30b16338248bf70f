package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// TestVariablesExpanded: the engine expands variables once, as GitLab
// Runner does (docs: ci/variables "Use CI/CD variables in other
// variables", "expand: false"), CI_JOB_STATUS is "running" during the
// script, and a masked value is masked as expanded.
func TestVariablesExpanded(t *testing.T) {
	factory := func(_ context.Context, job *engine.Job) (engine.Handler, error) {
		return &funcHandler{job: job, step: func(ctx context.Context, job *engine.Job, script []string, phase engine.Phase) error {
			if phase != engine.Script {
				return nil
			}
			for _, k := range []string{"DERIVED", "IN_DIR", "RAW", "ESCAPED", "STATUS", "SECRET_PATH"} {
				v, _ := job.Variable(k)
				job.Printf("%s=%s", k, v.Value)
			}
			return nil
		}}, nil
	}
	h := newHarness(t, factory, nil)
	id := h.srv.Enqueue(gitlabtest.NewJob("vars").Script("x").
		Var("BASE", "/opt").Var("DERIVED", "${BASE}/bin").Var("IN_DIR", "$CI_PROJECT_DIR/dist").
		Variable(gitlab.Variable{Key: "RAW", Value: "$BASE", Raw: true, Public: true}).
		Var("ESCAPED", "$$BASE").Var("STATUS", "$CI_JOB_STATUS").
		MaskedVar("SECRET", "s3cr3t-value-long").Var("SECRET_PATH", "/x/$SECRET"))
	h.start()
	rec := h.wait(id)
	tr := string(rec.Trace)
	for _, want := range []string{"DERIVED=/opt/bin\n", "/dist\n", "RAW=$BASE\n", "ESCAPED=$BASE\n", "STATUS=running\n", "SECRET_PATH=/x/[MASKED]\n"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
	if strings.Contains(tr, "IN_DIR=$CI_PROJECT_DIR") {
		t.Errorf("CI_PROJECT_DIR not expanded:\n%s", tr)
	}
}
