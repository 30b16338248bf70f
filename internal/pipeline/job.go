package pipeline

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxTimeout is the longest job timeout GitLab accepts (one month).
const maxTimeout = month

// scope decodes values for the top level, default: or one job, and
// collects the warnings that concern it.
type scope struct {
	p        *parser
	inst     instance // the parallel: job being built
	job      string   // job name, for jobs
	label    string   // "default" for default:; "" at the top level
	warnings []string
}

func (s *scope) prefix() string {
	switch {
	case s.job != "":
		return fmt.Sprintf("job %q: ", s.job)
	case s.label != "":
		return s.label + ": "
	}
	return ""
}

func (s *scope) warnf(format string, args ...any) {
	msg := s.prefix() + fmt.Sprintf(format, args...)
	if s.p != nil && s.job == "" && s.label == "" {
		s.p.warn(msg)
		return
	}
	s.warnings = append(s.warnings, msg)
}

func (s *scope) unsupported(key string) {
	s.warnf("keyword %q is not supported; ignored", key)
}

func (s *scope) errf(v *value, format string, args ...any) *Error {
	e := errAt(v, s.job, format, args...)
	if s.job == "" && s.label != "" {
		e.Msg = s.label + ": " + e.Msg
	}
	return e
}

// str decodes a string; a null or !reference value gives "".
func (s *scope) str(v *value, what string) (string, error) {
	if v.isNull() {
		return "", nil
	}
	if v.kind != kString {
		return "", s.errf(v, "%s must be a string", what)
	}
	return v.text, nil
}

// strings decodes a list of strings.
func (s *scope) strings(v *value, what string) ([]string, error) {
	if v.isNull() {
		return nil, nil
	}
	if v.kind != kList {
		return nil, s.errf(v, "%s must be a list of strings", what)
	}
	out := make([]string, 0, len(v.list))
	for _, x := range v.list {
		switch x.kind {
		case kString:
			out = append(out, x.text)
		case kRef:
		default:
			return nil, s.errf(x, "%s must be a list of strings", what)
		}
	}
	return out, nil
}

// stringOrList decodes a string or a list of strings.
func (s *scope) stringOrList(v *value, what string) ([]string, error) {
	if v.kind == kString {
		return []string{v.text}, nil
	}
	if v.kind != kList {
		return nil, s.errf(v, "%s must be a string or a list of strings", what)
	}
	return s.strings(v, what)
}

// script decodes a script: a string or a list of strings and nested lists,
// flattened.
func (s *scope) script(v *value, what string) ([]string, error) {
	out := []string{}
	var flatten func(x *value) error
	flatten = func(x *value) error {
		switch x.kind {
		case kString:
			out = append(out, x.text)
		case kRef:
		case kList:
			for _, y := range x.list {
				if err := flatten(y); err != nil {
					return err
				}
			}
		default:
			return s.errf(x, "%s must be a string or a list of strings", what)
		}
		return nil
	}
	if v.kind == kNull {
		return nil, nil
	}
	if err := flatten(v); err != nil {
		return nil, err
	}
	return out, nil
}

// image decodes `image: name` or `image: {name: ...}`.
func (s *scope) image(v *value) (string, error) {
	switch {
	case v.isNull():
		return "", nil
	case v.kind == kString:
		return v.text, nil
	case v.kind != kMap:
		return "", s.errf(v, "image must be a string or a map with a name")
	}
	name := ""
	for i, k := range v.keys {
		x := v.vals[i]
		switch k {
		case "name":
			n, err := s.str(x, "image:name")
			if err != nil {
				return "", err
			}
			name = n
		case "entrypoint", "docker", "pull_policy", "kubernetes":
			s.unsupported("image:" + k)
		default:
			return "", s.errf(x, "image: unknown keyword %q", k)
		}
	}
	if name == "" {
		return "", s.errf(v, "image:name is required")
	}
	return name, nil
}

// timeout decodes a timeout in GitLab's human format.
func (s *scope) timeout(v *value) (time.Duration, error) {
	if v.isNull() {
		return 0, nil
	}
	if v.kind != kString && v.kind != kInt {
		return 0, s.errf(v, "timeout must be a duration such as \"1h 30m\"")
	}
	d, err := parseHumanDuration(v.text)
	if err != nil {
		return 0, &Error{Line: v.line, Job: s.job, Msg: s.labelled(fmt.Sprintf("timeout: %v", err)), Err: err}
	}
	if d <= 0 {
		return 0, s.errf(v, "timeout must be positive")
	}
	if d > maxTimeout {
		return 0, s.errf(v, "timeout must not exceed 1 month")
	}
	return d, nil
}

func (s *scope) labelled(msg string) string {
	if s.job == "" && s.label != "" {
		return s.label + ": " + msg
	}
	return msg
}

// scalarText returns the text of a string, number or boolean.
func scalarText(v *value) (string, bool) {
	switch v.kind {
	case kString, kInt, kFloat:
		return v.text, true
	case kBool:
		return strings.ToLower(v.text), true
	case kNull:
		return "", true
	}
	return "", false
}

// variables decodes a variables: map. Values may be strings, numbers,
// booleans or maps with a value.
func (s *scope) variables(v *value) ([]Variable, error) {
	if v.isNull() {
		return nil, nil
	}
	if v.kind != kMap {
		return nil, s.errf(v, "variables must be a map of names to values")
	}
	out := make([]Variable, 0, len(v.keys))
	for i, k := range v.keys {
		x := v.vals[i]
		if x.kind == kRef {
			continue
		}
		if text, ok := scalarText(x); ok {
			out = append(out, Variable{Key: k, Value: text})
			continue
		}
		if x.kind != kMap {
			return nil, s.errf(x, "variable %q must be a string, a number, a boolean or a map with a value", k)
		}
		val, raw := "", false
		for j, mk := range x.keys {
			y := x.vals[j]
			switch mk {
			case "value":
				text, ok := scalarText(y)
				if !ok && y.kind != kRef {
					return nil, s.errf(y, "variable %q: value must be a string, a number or a boolean", k)
				}
				val = text
			case "description":
				if _, err := s.str(y, fmt.Sprintf("variable %q: description", k)); err != nil {
					return nil, err
				}
			case "options":
				if _, err := s.strings(y, fmt.Sprintf("variable %q: options", k)); err != nil {
					return nil, err
				}
			case "expand":
				if y.kind != kBool {
					return nil, s.errf(y, "variable %q: expand must be true or false", k)
				}
				raw = !isTrue(y)
			default:
				return nil, s.errf(y, "variable %q: unknown keyword %q", k, mk)
			}
		}
		out = append(out, Variable{Key: k, Value: val, Raw: raw})
	}
	return out, nil
}

// artifacts decodes artifacts:. It returns nil when nothing is uploaded.
func (s *scope) artifacts(v *value) (*Artifacts, error) {
	if v.isNull() {
		return nil, nil
	}
	if v.kind != kMap {
		return nil, s.errf(v, "artifacts must be a map")
	}
	a := &Artifacts{When: "on_success"}
	for i, k := range v.keys {
		x := v.vals[i]
		var err error
		switch k {
		case "name":
			if x.kind == kInt || x.kind == kFloat {
				a.Name = x.text
			} else {
				a.Name, err = s.str(x, "artifacts:name")
			}
		case "paths":
			a.Paths, err = s.strings(x, "artifacts:paths")
		case "exclude":
			a.Exclude, err = s.strings(x, "artifacts:exclude")
		case "when":
			var w string
			w, err = s.str(x, "artifacts:when")
			switch w {
			case "":
			case "on_success", "on_failure", "always":
				a.When = w
			default:
				err = s.errf(x, "artifacts:when must be on_success, on_failure or always")
			}
		case "expire_in":
			a.ExpireIn, err = s.expireIn(x)
		case "untracked":
			if x.kind != kBool {
				err = s.errf(x, "artifacts:untracked must be true or false")
			}
			a.Untracked = isTrue(x)
		case "reports":
			if x.kind != kMap {
				err = s.errf(x, "artifacts:reports must be a map")
				break
			}
			for ri, rk := range x.keys {
				if rk == "dotenv" {
					if a.Dotenv, err = s.stringOrList(x.vals[ri], "artifacts:reports:dotenv"); err != nil {
						break
					}
					continue
				}
				s.unsupported("artifacts:reports:" + rk)
			}
		case "expose_as", "public", "access":
			s.unsupported("artifacts:" + k)
		default:
			err = s.errf(x, "artifacts: unknown keyword %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(a.Paths) == 0 && !a.Untracked && len(a.Dotenv) == 0 {
		return nil, nil
	}
	return a, nil
}

func (s *scope) expireIn(v *value) (string, error) {
	if v.isNull() {
		return "", nil
	}
	if v.kind != kString && v.kind != kInt {
		return "", s.errf(v, "artifacts:expire_in must be a duration or \"never\"")
	}
	if strings.EqualFold(strings.TrimSpace(v.text), "never") {
		return v.text, nil
	}
	if _, err := parseHumanDuration(v.text); err != nil {
		return "", &Error{Line: v.line, Job: s.job, Msg: s.labelled(fmt.Sprintf("artifacts:expire_in: %v", err)), Err: err}
	}
	return v.text, nil
}

func isTrue(v *value) bool {
	return v.kind == kBool && strings.EqualFold(v.text, "true")
}

// inherit is the decoded form of one inherit: entry.
type inherit struct {
	all  bool
	only map[string]bool
}

func (in inherit) has(key string) bool { return in.all || in.only[key] }

func (s *scope) inheritEntry(v *value, what string) (inherit, error) {
	switch {
	case v.isNull():
		return inherit{all: true}, nil
	case v.kind == kBool:
		return inherit{all: isTrue(v)}, nil
	case v.kind == kList:
		list, err := s.strings(v, what)
		if err != nil {
			return inherit{}, err
		}
		in := inherit{only: map[string]bool{}}
		for _, k := range list {
			in.only[k] = true
		}
		return in, nil
	}
	return inherit{}, s.errf(v, "%s must be true, false or a list", what)
}

// needs decodes needs: into j.
func (s *scope) needs(j *Job, v *value) error {
	if v.kind == kNull {
		return nil
	}
	j.NeedsSet = true
	j.Needs = []string{}
	j.NeedsArtifacts = map[string]bool{}
	j.optional = map[string]bool{}
	j.needsLine = v.line
	if v.kind == kRef {
		return nil
	}
	if v.kind != kList {
		return s.errf(v, "needs must be a list of job names or maps with a job")
	}
	// Lists nested by !reference are flattened.
	var items []*value
	var flatten func(l *value)
	flatten = func(l *value) {
		for _, x := range l.list {
			if x.kind == kList {
				flatten(x)
			} else {
				items = append(items, x)
			}
		}
	}
	flatten(v)
	for _, x := range items {
		name, artifacts, optional := "", true, false
		var matrix [][]Variable
		switch x.kind {
		case kRef:
			continue
		case kString:
			name = x.text
		case kMap:
			skip := false
			for i, k := range x.keys {
				y := x.vals[i]
				var err error
				switch k {
				case "job":
					name, err = s.str(y, "needs:job")
				case "artifacts":
					if y.kind != kBool {
						err = s.errf(y, "needs:artifacts must be true or false")
					}
					artifacts = isTrue(y)
				case "optional":
					if y.kind != kBool {
						err = s.errf(y, "needs:optional must be true or false")
					}
					optional = isTrue(y)
				case "pipeline", "project", "ref":
					skip = true
				case "parallel":
					if y.kind != kMap || len(y.keys) != 1 || y.keys[0] != "matrix" {
						err = s.errf(y, "needs:parallel must be a map with matrix")
						break
					}
					matrix, err = s.matrix(y.vals[0], "needs:parallel:matrix")
				default:
					err = s.errf(y, "needs: unknown keyword %q", k)
				}
				if err != nil {
					return err
				}
			}
			if skip {
				s.warnf("needs from another pipeline or project (%s) are not supported; ignored", describeNeed(x))
				continue
			}
			if name == "" {
				return s.errf(x, "needs:job is required")
			}
		default:
			return s.errf(x, "needs must be a list of job names or maps with a job")
		}
		if matrix != nil {
			if j.needsMatrix == nil {
				j.needsMatrix = map[string][][]Variable{}
			}
			j.needsMatrix[name] = append(j.needsMatrix[name], matrix...)
		}
		if _, dup := j.NeedsArtifacts[name]; dup {
			continue
		}
		j.Needs = append(j.Needs, name)
		j.NeedsArtifacts[name] = artifacts
		if optional {
			j.optional[name] = true
		}
	}
	return nil
}

func describeNeed(m *value) string {
	var parts []string
	for i, k := range m.keys {
		if t, ok := scalarText(m.vals[i]); ok {
			parts = append(parts, k+": "+t)
		}
	}
	return strings.Join(parts, ", ")
}

// allowFailure decodes allow_failure: into j.
func (s *scope) allowFailure(j *Job, v *value) error {
	switch {
	case v.isNull():
		return nil
	case v.kind == kBool:
		j.AllowFailure = isTrue(v)
		return nil
	case v.kind != kMap:
		return s.errf(v, "allow_failure must be true, false or a map with exit_codes")
	}
	for i, k := range v.keys {
		x := v.vals[i]
		if k != "exit_codes" {
			return s.errf(x, "allow_failure: unknown keyword %q", k)
		}
		items := []*value{x}
		if x.kind == kList {
			items = x.list
		}
		for _, it := range items {
			n, err := strconv.Atoi(it.text)
			if it.kind != kInt || err != nil {
				return s.errf(it, "allow_failure:exit_codes must be an integer or a list of integers")
			}
			j.AllowFailureExitCodes = append(j.AllowFailureExitCodes, n)
		}
	}
	j.AllowFailure = true
	return nil
}

// buildJob builds a job from its definition m, with extends: applied.
func (s *scope) buildJob(name string, m *value) (*Job, error) {
	j := &Job{Name: name, When: "on_success"}
	var skip []string
	for i, k := range m.keys {
		switch {
		case supportedJobKeys[k]:
		case k == "trigger":
			skip = append(skip, k)
		case unsupportedJobKeys[k]:
			s.unsupported(k)
		default:
			return nil, s.errf(m.vals[i], "unknown keyword %q", k)
		}
	}

	stage := "test"
	if v, ok := m.get("stage"); ok && !v.isNull() {
		st, err := s.str(v, "stage")
		if err != nil {
			return nil, err
		}
		stage = st
	}
	idx, ok := s.p.stageIdx[stage]
	if !ok {
		v, _ := m.get("stage")
		if v == nil {
			v = m
		}
		return nil, s.errf(v, "stage %q is not defined in stages (%s)", stage, strings.Join(s.p.stages, ", "))
	}
	j.Stage, j.stageIdx = stage, idx

	script, hasScript := m.get("script")
	_, hasRun := m.get("run")
	switch {
	case len(skip) > 0:
		j.skip = `keyword "trigger"`
		s.p.warn(s.prefix() + `keyword "trigger" is not supported; job skipped`)
		return j, nil
	case (!hasScript || script.kind == kNull) && hasRun:
		j.skip = `keyword "run"`
		s.p.warn(s.prefix() + `keyword "run" is not supported; job skipped`)
		return j, nil
	case !hasScript || script.kind == kNull || script.kind == kList && len(script.list) == 0:
		return nil, s.errf(m, "script is required")
	}

	in := struct{ def, vars inherit }{inherit{all: true}, inherit{all: true}}
	if v, ok := m.get("inherit"); ok && !v.isNull() {
		if v.kind != kMap {
			return nil, s.errf(v, "inherit must be a map")
		}
		for i, k := range v.keys {
			var err error
			switch k {
			case "default":
				in.def, err = s.inheritEntry(v.vals[i], "inherit:default")
			case "variables":
				in.vars, err = s.inheritEntry(v.vals[i], "inherit:variables")
			default:
				err = s.errf(v.vals[i], "inherit: unknown keyword %q", k)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	def := s.p.def
	useDefault := func(key string) bool {
		return def.set[key] && in.def.has(key)
	}
	// own reports whether the job sets key itself; for lists, a
	// !reference counts as set.
	own := func(key string, list bool) (*value, bool) {
		v, ok := m.get(key)
		if !ok || v.kind == kNull || !list && v.kind == kRef {
			return nil, false
		}
		return v, true
	}

	var err error
	if v, ok := own(kwImage, false); ok {
		if j.Image, err = s.image(v); err != nil {
			return nil, err
		}
	} else if useDefault(kwImage) {
		j.Image = def.image
	}

	for _, gv := range s.p.globalVars {
		if in.vars.has(gv.Key) {
			j.Variables = append(j.Variables, gv)
		}
	}
	if v, ok := own(kwVariables, false); ok {
		vars, err := s.variables(v)
		if err != nil {
			return nil, err
		}
		j.Variables = append(j.Variables, vars...)
	}
	j.Variables = append(j.Variables, s.inst.vars...)
	j.Parallel, j.Matrix, j.NodeIndex, j.NodeTotal = s.inst.base, s.inst.matrix, s.inst.index, s.inst.tot

	if v, ok := own(kwBeforeScript, true); ok {
		if j.Script, err = s.script(v, kwBeforeScript); err != nil {
			return nil, err
		}
	} else if useDefault(kwBeforeScript) {
		j.Script = append(j.Script, def.beforeScript...)
	}
	main, err := s.script(script, "script")
	if err != nil {
		return nil, err
	}
	j.Script = append(j.Script, main...)

	if v, ok := own(kwAfterScript, true); ok {
		if j.AfterScript, err = s.script(v, kwAfterScript); err != nil {
			return nil, err
		}
	} else if useDefault(kwAfterScript) {
		j.AfterScript = append([]string(nil), def.afterScript...)
	}

	if v, ok := own("artifacts", false); ok {
		if j.Artifacts, err = s.artifacts(v); err != nil {
			return nil, err
		}
	} else if useDefault("artifacts") && def.artifacts != nil {
		a := *def.artifacts
		a.Paths, a.Exclude = slices.Clone(a.Paths), slices.Clone(a.Exclude)
		j.Artifacts = &a
	}

	if v, ok := own("retry", false); ok {
		if j.Retry, err = s.retry(v); err != nil {
			return nil, err
		}
	} else if useDefault("retry") {
		j.Retry = def.retry
	}

	if v, ok := own("timeout", false); ok {
		if j.Timeout, err = s.timeout(v); err != nil {
			return nil, err
		}
	} else if useDefault("timeout") {
		j.Timeout = def.timeout
	}

	if v, ok := m.get("needs"); ok {
		if err := s.needs(j, v); err != nil {
			return nil, err
		}
	}
	if v, ok := m.get("dependencies"); ok && v.kind != kNull {
		deps, err := s.strings(v, "dependencies")
		if err != nil {
			return nil, err
		}
		j.Dependencies, j.DependenciesSet, j.depsLine = deps, true, v.line
		if j.Dependencies == nil {
			j.Dependencies = []string{}
		}
	}
	if v, ok := m.get("allow_failure"); ok {
		if err := s.allowFailure(j, v); err != nil {
			return nil, err
		}
	}
	if v, ok := m.get("environment"); ok && !v.isNull() {
		if j.Environment, err = s.environment(v); err != nil {
			return nil, err
		}
	}
	if err := s.applyRules(j, m); err != nil {
		return nil, err
	}
	return j, nil
}

// environment decodes environment: (docs: ci/yaml "environment"): a name,
// or a map with name: and the keywords below. Only what sets the job's
// CI_ENVIRONMENT_* variables matters to a local run; the rest (on_stop,
// auto_stop_in, kubernetes) is GitLab's deployment bookkeeping.
func (s *scope) environment(v *value) (*Environment, error) {
	if v.kind == kString {
		if v.text == "" {
			return nil, s.errf(v, "environment name can't be blank")
		}
		return &Environment{Name: v.text, Action: "start"}, nil
	}
	if v.kind != kMap {
		return nil, s.errf(v, "environment must be a string or a map")
	}
	e := &Environment{Action: "start"}
	for i, k := range v.keys {
		x := v.vals[i]
		var err error
		switch k {
		case "name":
			e.Name, err = s.str(x, "environment:name")
		case "url":
			e.URL, err = s.str(x, "environment:url")
		case "action":
			var a string
			if a, err = s.str(x, "environment:action"); err == nil && a != "" {
				if !slices.Contains([]string{"start", "prepare", "stop", "verify", "access"}, a) {
					err = s.errf(x, "environment:action must be start, prepare, stop, verify or access")
				}
				e.Action = a
			}
		case "deployment_tier":
			var t string
			if t, err = s.str(x, "environment:deployment_tier"); err == nil && t != "" {
				if !slices.Contains([]string{"production", "staging", "testing", "development", "other"}, t) {
					err = s.errf(x, "environment:deployment_tier must be production, staging, testing, development or other")
				}
				e.Tier = t
			}
		case "on_stop", "auto_stop_in", "kubernetes":
		default:
			err = s.errf(x, "environment: unknown keyword %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if e.Name == "" {
		return nil, s.errf(v, "environment name can't be blank")
	}
	return e, nil
}

// applyRules decides whether the job is in the pipeline and how it runs:
// its when:, then rules: (docs: ci/jobs/job_rules) or only/except (docs:
// ci/yaml "only / except").
func (s *scope) applyRules(j *Job, m *value) error {
	when := "on_success"
	if v, ok := m.get("when"); ok && !v.isNull() {
		w, err := s.str(v, "when")
		if err != nil {
			return err
		}
		switch w {
		case "on_success", "on_failure", "always", "manual", "delayed", "never":
			when = w
		default:
			return s.errf(v, "when must be one of on_success, on_failure, always, manual, delayed or never")
		}
	}
	rulesV, hasRules := m.get("rules")
	hasRules = hasRules && !rulesV.isNull()
	for _, k := range []string{"only", "except"} {
		if v, ok := m.get(k); ok && hasRules {
			return s.errf(v, "%s cannot be used with rules (GitLab: config key may not be used with `rules`: %s)", k, k)
		}
	}
	if v, ok := m.get("when"); ok && when == "never" && !hasRules {
		// GitLab: "when should be one of: on_success, on_failure, always, manual, delayed".
		return s.errf(v, "when: never is only allowed in rules (when must be one of on_success, on_failure, always, manual or delayed)")
	}
	afV, afSet := m.get("allow_failure")
	afSet = afSet && !afV.isNull()
	startIn, _ := m.get("start_in")
	ev := s.p.evaluator(s, j.Variables)
	if hasRules {
		res, err := ev.evalRules(rulesV, "rules", false)
		if err != nil {
			return err
		}
		if !res.matched {
			j.excluded = "no rule matches"
			return nil
		}
		if res.when != "" {
			when = res.when
		}
		if when == "never" {
			j.excluded = "a rule with when: never matches"
			return nil
		}
		if res.allowFailure != nil {
			j.AllowFailure, j.AllowFailureExitCodes = *res.allowFailure, res.exitCodes
		}
		j.Variables = append(j.Variables, res.variables...)
		if res.needs != nil {
			j.Needs, j.NeedsSet, j.NeedsArtifacts, j.optional = nil, false, nil, nil
			if err := s.needs(j, res.needs); err != nil {
				return err
			}
		}
		if res.startIn != nil {
			startIn = res.startIn
		}
	} else {
		ok, err := ev.onlyExcept(m)
		if err != nil {
			return err
		}
		if !ok {
			j.excluded = "only/except"
			return nil
		}
		// A manual job is allowed to fail unless it says otherwise (docs:
		// ci/yaml "when: manual").
		if when == "manual" && !afSet {
			j.AllowFailure = true
		}
	}
	j.When = when
	switch {
	case when == "delayed" && startIn.isNull():
		return s.errf(m, "start_in is required with when: delayed")
	case when == "delayed":
		if startIn.kind != kString && startIn.kind != kInt {
			return s.errf(startIn, "start_in must be a duration such as \"30 minutes\"")
		}
		d, err := parseHumanDuration(startIn.text)
		if err != nil {
			return &Error{Line: startIn.line, Job: s.job, Msg: fmt.Sprintf("start_in: %v", err), Err: err}
		}
		if d > maxStartIn {
			return s.errf(startIn, "start_in must not exceed 1 week")
		}
		j.StartIn = d
	case !startIn.isNull():
		return s.errf(startIn, "start_in can only be used with when: delayed")
	}
	return nil
}

// retryWhen are the failure kinds retry:when accepts.
var retryWhen = []string{
	"always", "unknown_failure", "script_failure", "api_failure", "stuck_or_timeout_failure",
	"runner_system_failure", "runner_unsupported", "stale_schedule", "job_execution_timeout",
	"archived_failure", "unmet_prerequisites", "scheduler_failure", "data_integrity_failure",
}

// retry decodes retry: a number from 0 to 2, or a map with max, when and
// exit_codes.
func (s *scope) retry(v *value) (Retry, error) {
	var r Retry
	maxOf := func(x *value) (int, error) {
		n, err := strconv.Atoi(x.text)
		if x.kind != kInt || err != nil || n < 0 || n > 2 {
			return 0, s.errf(x, "retry must be 0, 1 or 2")
		}
		return n, nil
	}
	switch {
	case v.isNull():
		return r, nil
	case v.kind == kInt:
		n, err := maxOf(v)
		r.Max = n
		return r, err
	case v.kind != kMap:
		return r, s.errf(v, "retry must be a number or a map with max, when and exit_codes")
	}
	for i, k := range v.keys {
		x := v.vals[i]
		var err error
		switch k {
		case "max":
			r.Max, err = maxOf(x)
		case "when":
			if r.When, err = s.stringOrList(x, "retry:when"); err == nil {
				for _, w := range r.When {
					if !contains(retryWhen, w) {
						err = s.errf(x, "retry:when: unknown failure kind %q", w)
					}
				}
			}
		case "exit_codes":
			items := []*value{x}
			if x.kind == kList {
				items = x.list
			}
			for _, it := range items {
				n, e := strconv.Atoi(it.text)
				if it.kind != kInt || e != nil {
					err = s.errf(it, "retry:exit_codes must be an integer or a list of integers")
					break
				}
				r.ExitCodes = append(r.ExitCodes, n)
			}
		default:
			err = s.errf(x, "retry: unknown keyword %q", k)
		}
		if err != nil {
			return r, err
		}
	}
	return r, nil
}
