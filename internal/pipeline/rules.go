package pipeline

import (
	"errors"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/wasmrunner/wasmrunner/internal/ciexpr"
	"github.com/wasmrunner/wasmrunner/internal/varexpand"
)

// ErrFiltered is wrapped by the error Parse returns when workflow:rules
// keep the pipeline from being created.
var ErrFiltered = errors.New("pipeline filtered out by workflow:rules")

// maxStartIn is the longest start_in GitLab accepts.
const maxStartIn = 7 * 24 * time.Hour

// Options describe the pipeline being created: what rules:, workflow:,
// only:/except:, exists: and include: look at. The zero value evaluates
// rules with no variables, no changes base and no project files.
type Options struct {
	// Predefined are the predefined variables (CI_COMMIT_BRANCH,
	// CI_PIPELINE_SOURCE, ...): the configuration's variables override
	// them.
	Predefined []Variable
	// PipelineVars are the variables given for this pipeline (GitLab's
	// pipeline variables, as a trigger or a manual run gives): they
	// override the configuration's.
	PipelineVars []Variable
	// Project holds the project's files, for exists: and include: local.
	// nil: no file exists.
	Project fs.FS
	// Changes returns the files (slash-separated, relative to the
	// project) that differ between compareTo and the pipeline's commit;
	// compareTo "" is the pipeline's default base. ok false means there is
	// no base to compare with: changes: then always matches, as in GitLab
	// for new branches and tags. nil: there is never a base.
	Changes func(compareTo string) (files []string, ok bool, err error)
}

// rule is the outcome of rules: for one job.
type ruleResult struct {
	matched      bool
	when         string
	allowFailure *bool
	exitCodes    []int
	variables    []Variable
	needs        *value
	startIn      *value
}

// evaluator evaluates rule clauses for one job or the workflow.
type evaluator struct {
	s    *scope
	opts *Options
	vars *varexpand.Expander
}

func (e *evaluator) lookup(name string) (string, bool) { return e.vars.Get(name) }

// evalRules returns the first rule of list v that matches.
func (e *evaluator) evalRules(v *value, what string, workflow bool) (ruleResult, error) {
	if v.kind != kList {
		return ruleResult{}, e.s.errf(v, "%s must be a list of rules", what)
	}
	var rules []*value
	var flatten func(x *value)
	flatten = func(x *value) {
		for _, r := range x.list {
			if r.kind == kRef {
				continue
			}
			if r.kind == kList {
				flatten(r)
			} else {
				rules = append(rules, r)
			}
		}
	}
	flatten(v)
	for _, r := range rules {
		if r.kind != kMap {
			return ruleResult{}, e.s.errf(r, "%s: each rule must be a map", what)
		}
		res, err := e.evalRule(r, what, workflow)
		if err != nil || res.matched {
			return res, err
		}
	}
	return ruleResult{}, nil
}

func (e *evaluator) evalRule(r *value, what string, workflow bool) (ruleResult, error) {
	res := ruleResult{matched: true}
	// Check every key first, then the clauses, so that an invalid rule is
	// an error even when an earlier clause does not match.
	for i, k := range r.keys {
		x := r.vals[i]
		switch k {
		case "if", "changes", "exists", "when", "variables":
		case "allow_failure", "needs", "start_in", "interruptible":
			if workflow {
				return res, e.s.errf(x, "%s: unknown keyword %q", what, k)
			}
		case "auto_cancel":
			if !workflow {
				return res, e.s.errf(x, "%s: unknown keyword %q", what, k)
			}
			e.s.unsupported(what + ":auto_cancel")
		default:
			return res, e.s.errf(x, "%s: unknown keyword %q", what, k)
		}
	}
	if x, ok := r.get("if"); ok && !x.isNull() {
		src, err := e.s.str(x, what+":if")
		if err != nil {
			return res, err
		}
		expr, err := ciexpr.Parse(src)
		if err != nil {
			return res, e.s.errf(x, "%s:if %q: %v", what, src, err)
		}
		ok, err := expr.Eval(e.lookup)
		if err != nil {
			return res, e.s.errf(x, "%s:if %q: %v", what, src, err)
		}
		if !ok {
			return ruleResult{}, nil
		}
	}
	if x, ok := r.get("changes"); ok && !x.isNull() {
		ok, err := e.changes(x, what+":changes")
		if err != nil || !ok {
			return ruleResult{}, err
		}
	}
	if x, ok := r.get("exists"); ok && !x.isNull() {
		ok, err := e.exists(x, what+":exists")
		if err != nil || !ok {
			return ruleResult{}, err
		}
	}
	if x, ok := r.get("when"); ok && !x.isNull() {
		w, err := e.s.str(x, what+":when")
		if err != nil {
			return res, err
		}
		allowed := []string{"on_success", "on_failure", "always", "manual", "delayed", "never"}
		if workflow {
			allowed = []string{"always", "never"}
		}
		if !contains(allowed, w) {
			return res, e.s.errf(x, "%s:when must be one of %s", what, strings.Join(allowed, ", "))
		}
		res.when = w
	}
	if x, ok := r.get("allow_failure"); ok && !x.isNull() {
		tmp := &Job{}
		if err := e.s.allowFailure(tmp, x); err != nil {
			return res, err
		}
		res.allowFailure, res.exitCodes = &tmp.AllowFailure, tmp.AllowFailureExitCodes
	}
	if x, ok := r.get("variables"); ok && !x.isNull() {
		vars, err := e.s.variables(x)
		if err != nil {
			return res, err
		}
		res.variables = vars
	}
	if x, ok := r.get("needs"); ok {
		res.needs = x
	}
	if x, ok := r.get("start_in"); ok && !x.isNull() {
		res.startIn = x
	}
	return res, nil
}

// globs decodes the paths of changes: or exists: (a list, or a map with
// paths and, for changes, compare_to), variables expanded.
func (e *evaluator) globs(v *value, what string) (paths []string, compareTo string, err error) {
	if v.kind == kMap {
		for i, k := range v.keys {
			x := v.vals[i]
			switch {
			case k == "paths":
				paths, err = e.s.strings(x, what+":paths")
			case k == "compare_to" && strings.HasSuffix(what, "changes"):
				compareTo, err = e.s.str(x, what+":compare_to")
				compareTo = e.vars.Expand(compareTo)
			case (k == "project" || k == "ref") && strings.HasSuffix(what, "exists"):
				err = e.s.errf(x, "%s:%s (files of another project) is not supported", what, k)
			default:
				err = e.s.errf(x, "%s: unknown keyword %q", what, k)
			}
			if err != nil {
				return nil, "", err
			}
		}
	} else if paths, err = e.s.strings(v, what); err != nil {
		return nil, "", err
	}
	for i, p := range paths {
		paths[i] = strings.TrimPrefix(e.vars.Expand(p), "./")
	}
	return paths, compareTo, nil
}

// changes reports whether a file matching one of the globs changed
// (docs: ci/yaml "rules:changes"; no base to compare with: true).
func (e *evaluator) changes(v *value, what string) (bool, error) {
	globs, compareTo, err := e.globs(v, what)
	if err != nil {
		return false, err
	}
	if e.opts.Changes == nil {
		return true, nil
	}
	files, ok, err := e.opts.Changes(compareTo)
	if err != nil {
		return false, e.s.errf(v, "%s: %v", what, err)
	}
	if !ok {
		return true, nil
	}
	for _, g := range globs {
		for _, f := range files {
			if globMatch(g, f) {
				return true, nil
			}
		}
	}
	return false, nil
}

// globMatch matches GitLab's fnmatch with FNM_PATHNAME|FNM_DOTMATCH|
// FNM_EXTGLOB: * within a directory, ** across, {a,b} alternatives.
func globMatch(pattern, name string) bool {
	ok, err := doublestar.Match(pattern, name)
	return ok && err == nil
}

// exists reports whether a project file matches one of the globs (docs:
// ci/yaml "rules:exists").
func (e *evaluator) exists(v *value, what string) (bool, error) {
	globs, _, err := e.globs(v, what)
	if err != nil {
		return false, err
	}
	if e.opts.Project == nil {
		return false, nil
	}
	for _, g := range globs {
		if !doublestar.ValidatePattern(g) {
			return false, e.s.errf(v, "%s: invalid pattern %q", what, g)
		}
		if !strings.ContainsAny(g, "*?[{\\") {
			if _, err := fs.Stat(e.opts.Project, path.Clean(g)); err == nil {
				return true, nil
			}
			continue
		}
		found := false
		err := doublestar.GlobWalk(e.opts.Project, g, func(string, fs.DirEntry) error {
			found = true
			return fs.SkipAll
		}, doublestar.WithNoFollow())
		if err != nil && !errors.Is(err, fs.SkipAll) {
			return false, e.s.errf(v, "%s: %v", what, err)
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// refKeywords maps the special only/except refs to pipeline sources.
var refKeywords = map[string]string{
	"api": "api", "chat": "chat", "external": "external", "external_pull_requests": "external_pull_request_event",
	"merge_requests": "merge_request_event", "pipelines": "pipeline", "pushes": "push", "schedules": "schedule",
	"triggers": "trigger", "web": "web",
}

// onlyExcept decides whether a job without rules: is added (docs: ci/yaml
// "only / except": only adds the job when all its keys match, except
// removes it when any of its keys matches).
func (e *evaluator) onlyExcept(m *value) (bool, error) {
	only, hasOnly := m.get("only")
	if !hasOnly || only.isNull() {
		// The default, only: [branches, tags], when the pipeline has a ref.
		only = nil
		if _, ok := e.lookup("CI_COMMIT_REF_NAME"); ok {
			only = &value{kind: kList, list: []*value{{kind: kString, text: "branches"}, {kind: kString, text: "tags"}}}
		}
	}
	if _, hasRef := e.lookup("CI_COMMIT_REF_NAME"); only != nil && only.kind == kMap && hasRef {
		if _, ok := only.get("refs"); !ok {
			with := newMap(only.line)
			with.set("refs", &value{kind: kList, list: []*value{{kind: kString, text: "branches"}, {kind: kString, text: "tags"}}})
			for i, k := range only.keys {
				with.set(k, only.vals[i])
			}
			only = with
		}
	}
	if only != nil {
		ok, err := e.policy(only, "only", true)
		if err != nil || !ok {
			return false, err
		}
	}
	if except, has := m.get("except"); has && !except.isNull() {
		hit, err := e.policy(except, "except", false)
		if err != nil || hit {
			return false, err
		}
	}
	return true, nil
}

// policy evaluates an only: (all keys must match) or except: (any key
// matches) value.
func (e *evaluator) policy(v *value, what string, all bool) (bool, error) {
	if v.kind == kList || v.kind == kString {
		refs, err := e.s.stringOrList(v, what)
		if err != nil {
			return false, err
		}
		return e.refs(refs, v, what)
	}
	if v.kind != kMap {
		return false, e.s.errf(v, "%s must be a list of refs or a map with refs, variables or changes", what)
	}
	any, every := false, true
	for i, k := range v.keys {
		x := v.vals[i]
		var ok bool
		var err error
		switch k {
		case "refs":
			var refs []string
			if refs, err = e.s.stringOrList(x, what+":refs"); err == nil {
				ok, err = e.refs(refs, x, what+":refs")
			}
		case "variables":
			var exprs []string
			if exprs, err = e.s.stringOrList(x, what+":variables"); err == nil {
				for _, src := range exprs {
					var r bool
					if r, err = ciexpr.Eval(src, e.lookup); err != nil {
						err = e.s.errf(x, "%s:variables %q: %v", what, src, err)
						break
					}
					ok = ok || r
				}
			}
		case "changes":
			ok, err = e.changes(x, what+":changes")
		case "kubernetes":
			e.s.unsupported(what + ":kubernetes")
			continue
		default:
			err = e.s.errf(x, "%s: unknown keyword %q", what, k)
		}
		if err != nil {
			return false, err
		}
		any = any || ok
		every = every && ok
	}
	if all {
		return every, nil
	}
	return any, nil
}

// refs reports whether the pipeline's ref or source matches one of refs.
func (e *evaluator) refs(refs []string, v *value, what string) (bool, error) {
	branch, isBranch := e.lookup("CI_COMMIT_BRANCH")
	tag, isTag := e.lookup("CI_COMMIT_TAG")
	source, _ := e.lookup("CI_PIPELINE_SOURCE")
	ref, _ := e.lookup("CI_COMMIT_REF_NAME")
	isBranch = isBranch && branch != ""
	isTag = isTag && tag != ""
	for _, r := range refs {
		if name, project, ok := strings.Cut(r, "@"); ok && !strings.HasPrefix(r, "/") {
			e.s.warnf("%s: %q: the project part (@%s) is ignored", what, r, project)
			r = name
		}
		switch {
		case r == "branches":
			if isBranch {
				return true, nil
			}
		case r == "tags":
			if isTag {
				return true, nil
			}
		case refKeywords[r] != "":
			if source == refKeywords[r] {
				return true, nil
			}
		case strings.HasPrefix(r, "/"):
			re, err := ciexpr.ParseRegex(r)
			if err != nil {
				return false, e.s.errf(v, "%s: %v", what, err)
			}
			if ref != "" && re.MatchString(ref) {
				return true, nil
			}
		default:
			if ref != "" && r == ref {
				return true, nil
			}
		}
	}
	return false, nil
}
