package engine

import (
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/varexpand"
)

// expandVariables expands the job's variables as GitLab Runner does before
// a job runs, and is the one place where variable values are expanded:
// each value that is not raw has its $NAME, ${NAME} and $$ replaced using
// the other variables (internal/varexpand). Handlers and `wasmrunner
// exec` see the expanded values.
func expandVariables(vs gitlab.Variables) gitlab.Variables {
	in := make([]varexpand.Var, len(vs))
	for i, v := range vs {
		in[i] = varexpand.Var{Key: v.Key, Value: v.Value, Raw: v.Raw}
	}
	out := make(gitlab.Variables, len(vs))
	for i, v := range varexpand.All(in) {
		out[i] = vs[i]
		out[i].Value = v.Value
	}
	return out
}
