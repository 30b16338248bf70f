package modules

import (
	"slices"

	"github.com/wasmrunner/wasmrunner/engine/resource"
)

// hiddenReason says why the job's variable name is hidden from the
// handler, naming the key that hides it, or "" when the job has no such
// variable or the handler sees it (hostfuncs.Env.Hidden).
func (h *handler) hiddenReason(name string) string {
	found := false
	for v := range h.job.AllVariables() {
		if v.Key == name {
			found = true
			break
		}
	}
	if !found || h.visible(name) {
		return ""
	}
	return hiddenBy(&h.mod.manifest, h.reg.policy.Hide, h.reg.policy.Expose, name)
}

// hiddenBy says which setting hides a variable: the operator's policy
// (hide, expose) first, then the manifest.
func hiddenBy(man *Manifest, hide, expose []string, name string) string {
	switch {
	case matchAny(hide, name):
		return "the operator's policy hides it from every handler (hide_variables)"
	case slices.Contains(resource.HiddenVariables, name) && !matchAny(expose, name):
		return "it is a credential the operator's policy hides from every handler unless its expose_variables lists it"
	case matchAny(man.Variables.Deny, name):
		return "the handler's manifest denies it ([variables] deny)"
	case !matchAny(man.Variables.Allow, name):
		return "the handler's manifest does not list it in [variables] allow; add it there to see it"
	}
	return "the handler's manifest or the operator's policy hides it"
}
