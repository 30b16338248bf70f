package pipeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/varexpand"
)

// maxExtendsDepth is how many levels of extends: GitLab allows.
const maxExtendsDepth = 11

// maxWork bounds the total size of the resolved jobs.
const maxWork = 4 * maxNodes

// Top-level keywords that are not jobs.
const (
	kwStages       = "stages"
	kwVariables    = "variables"
	kwDefault      = "default"
	kwImage        = "image"
	kwBeforeScript = "before_script"
	kwAfterScript  = "after_script"
)

// unsupportedTopLevel are reserved top-level keywords that are ignored
// with a warning.
var unsupportedTopLevel = map[string]bool{
	"services": true, "cache": true,
}

// Keywords of default: that are supported, and those ignored with a
// warning.
var (
	defaultKeys            = []string{kwImage, kwBeforeScript, kwAfterScript, "timeout", "artifacts", "retry"}
	unsupportedDefaultKeys = map[string]bool{
		"cache": true, "services": true, "tags": true, "interruptible": true,
		"hooks": true, "id_tokens": true, "identity": true,
	}
)

// Job keywords that are supported, and those ignored with a warning.
var (
	supportedJobKeys = map[string]bool{
		"stage": true, kwImage: true, kwVariables: true, kwBeforeScript: true, "script": true,
		kwAfterScript: true, "artifacts": true, "needs": true, "dependencies": true,
		"timeout": true, "allow_failure": true, "when": true, "extends": true, "inherit": true,
		"rules": true, "only": true, "except": true, "start_in": true, "parallel": true, "retry": true,
		"environment": true,
	}
	unsupportedJobKeys = map[string]bool{
		"cache": true, "services": true,
		"tags": true, "interruptible": true,
		"coverage": true, "resource_group": true, "release": true,
		"trigger": true, "pages": true, "id_tokens": true, "secrets": true,
		"hooks": true, "identity": true, "manual_confirmation": true,
		"dast_configuration": true, "run": true,
	}
)

// parser holds the state of one Parse call.
type parser struct {
	opts     Options
	warnings []string
	seen     map[string]bool

	stages   []string
	stageIdx map[string]int

	globalVars []Variable
	def        defaults

	ext      map[string]*value // jobs and templates that extends: may name
	resolved map[string]resolved
	work     int
}

type resolved struct {
	v      *value
	height int
}

// defaults holds default: and the deprecated top-level keywords.
type defaults struct {
	set          map[string]bool
	image        string
	beforeScript []string
	afterScript  []string
	timeout      time.Duration
	artifacts    *Artifacts
	retry        Retry
}

func (p *parser) warn(msg string) {
	if !p.seen[msg] {
		p.seen[msg] = true
		p.warnings = append(p.warnings, msg)
	}
}

type entry struct {
	name string
	v    *value
}

func (p *parser) parse(root *value) (*Pipeline, error) {
	p.ext = map[string]*value{}
	p.resolved = map[string]resolved{}
	p.def.set = map[string]bool{}
	top := scope{p: p}

	var jobs []entry
	var stagesV, varsV, defaultV, workflowV *value
	deprecated := map[string]*value{}
	for i, k := range root.keys {
		v := root.vals[i]
		switch {
		case k == kwStages:
			stagesV = v
		case k == kwVariables:
			varsV = v
		case k == kwDefault:
			defaultV = v
		case k == "workflow":
			workflowV = v
		case k == kwImage || k == kwBeforeScript || k == kwAfterScript:
			deprecated[k] = v
		case unsupportedTopLevel[k]:
			top.unsupported(k)
		case strings.HasPrefix(k, "."):
			if v.kind == kMap {
				p.ext[k] = v
			}
		default:
			if v.kind != kMap {
				return nil, errAt(v, k, "a job must be a map of keywords")
			}
			p.ext[k] = v
			jobs = append(jobs, entry{k, v})
		}
	}
	if len(jobs) == 0 {
		return nil, errAt(root, "", "the configuration has no visible job")
	}
	if err := p.parseStages(stagesV); err != nil {
		return nil, err
	}
	vars, err := top.variables(varsV)
	if err != nil {
		return nil, err
	}
	p.globalVars = vars
	name, err := p.workflow(workflowV)
	if err != nil {
		return nil, err
	}
	if err := p.parseDefaults(defaultV, deprecated); err != nil {
		return nil, err
	}

	var all, excluded []*Job
	for i, e := range jobs {
		m, err := p.resolve(e.name, nil)
		if err != nil {
			return nil, err
		}
		p.work += m.size
		if p.work > maxWork {
			return nil, errAt(e.v, e.name, "the configuration is too large once extends: is applied")
		}
		insts, err := p.instances(e.name, m)
		if err != nil {
			return nil, err
		}
		for _, in := range insts {
			s := &scope{p: p, job: in.name, inst: in}
			j, err := s.buildJob(in.name, m)
			if err != nil {
				return nil, err
			}
			j.fileIdx = i
			j.Line = e.v.line
			if j.excluded != "" {
				excluded = append(excluded, j)
				continue
			}
			if j.skip == "" {
				for _, w := range s.warnings {
					p.warn(w)
				}
			}
			all = append(all, j)
		}
	}
	pl, err := p.link(all, excluded)
	if err != nil {
		return nil, err
	}
	pl.Name, pl.Variables = name, p.globalVars
	return pl, nil
}

// workflow applies workflow: (docs: ci/yaml "workflow"): the first
// matching rule's variables join the global ones, a rule with when: never
// or no matching rule keeps the pipeline from being created. It returns
// the pipeline's name.
func (p *parser) workflow(v *value) (string, error) {
	if v.isNull() {
		return "", nil
	}
	s := &scope{p: p, label: "workflow"}
	if v.kind != kMap {
		return "", s.errf(v, "must be a map")
	}
	name := ""
	var rulesV *value
	for i, k := range v.keys {
		x := v.vals[i]
		switch k {
		case "name":
			n, err := s.str(x, "name")
			if err != nil {
				return "", err
			}
			name = n
		case "rules":
			rulesV = x
		case "auto_cancel":
			s.unsupported("auto_cancel")
		default:
			return "", s.errf(x, "unknown keyword %q", k)
		}
	}
	ev := p.evaluator(s, p.globalVars)
	if !rulesV.isNull() {
		res, err := ev.evalRules(rulesV, "rules", true)
		if err != nil {
			return "", err
		}
		if !res.matched || res.when == "never" {
			why := "no rule matches"
			if res.matched {
				why = "a rule with when: never matches"
			}
			return "", &Error{Line: rulesV.line, Msg: fmt.Sprintf("workflow:rules: %s: the pipeline is not created", why), Err: ErrFiltered}
		}
		p.globalVars = append(p.globalVars, res.variables...)
		ev = p.evaluator(s, p.globalVars)
	}
	for _, w := range s.warnings {
		p.warn(w)
	}
	return ev.vars.Expand(name), nil
}

// evaluator returns an evaluator over the variables a job or the
// workflow sees, in GitLab's order of precedence: predefined, then vars
// (the global variables inherited and the job's own), then the pipeline
// variables.
func (p *parser) evaluator(s *scope, vars []Variable) *evaluator {
	var all []varexpand.Var
	add := func(vs []Variable) {
		for _, v := range vs {
			all = append(all, varexpand.Var{Key: v.Key, Value: v.Value, Raw: v.Raw})
		}
	}
	add(p.opts.Predefined)
	add(vars)
	add(p.opts.PipelineVars)
	return &evaluator{s: s, opts: &p.opts, vars: varexpand.New(all)}
}

// parseStages reads stages:, keeping ".pre" first and ".post" last.
func (p *parser) parseStages(v *value) error {
	stages := DefaultStages
	if !v.isNull() {
		list, err := (&scope{p: p}).strings(v, kwStages)
		if err != nil {
			return err
		}
		stages = []string{".pre"}
		for _, s := range list {
			if s != ".pre" && s != ".post" {
				stages = append(stages, s)
			}
		}
		stages = append(stages, ".post")
	}
	p.stageIdx = map[string]int{}
	for _, s := range stages {
		if _, dup := p.stageIdx[s]; !dup {
			p.stageIdx[s] = len(p.stages)
			p.stages = append(p.stages, s)
		}
	}
	return nil
}

// parseDefaults reads default: and the deprecated top-level image,
// before_script and after_script, which GitLab forbids using together.
func (p *parser) parseDefaults(v *value, deprecated map[string]*value) error {
	s := &scope{p: p, label: kwDefault}
	m := newMap(0)
	if !v.isNull() {
		if v.kind != kMap {
			return s.errf(v, "must be a map of keywords")
		}
		for i, k := range v.keys {
			switch {
			case contains(defaultKeys, k):
				m.set(k, v.vals[i])
			case unsupportedDefaultKeys[k]:
				s.unsupported(k)
			default:
				return s.errf(v.vals[i], "unknown keyword %q", k)
			}
		}
	}
	for _, k := range []string{kwImage, kwBeforeScript, kwAfterScript} {
		dv, ok := deprecated[k]
		if !ok {
			continue
		}
		if _, both := m.get(k); both {
			return errAt(dv, "", "%s is defined in top-level and `default:` entry", k)
		}
		m.set(k, dv)
	}
	for i, k := range m.keys {
		x := m.vals[i]
		var err error
		switch k {
		case kwImage:
			p.def.image, err = s.image(x)
		case kwBeforeScript:
			p.def.beforeScript, err = s.script(x, k)
		case kwAfterScript:
			p.def.afterScript, err = s.script(x, k)
		case "timeout":
			p.def.timeout, err = s.timeout(x)
		case "artifacts":
			p.def.artifacts, err = s.artifacts(x)
		case "retry":
			p.def.retry, err = s.retry(x)
		}
		if err != nil {
			return err
		}
		if k == kwImage || k == "timeout" || k == "artifacts" {
			p.def.set[k] = !x.isNull()
		} else {
			p.def.set[k] = x.kind != kNull
		}
	}
	for _, w := range s.warnings {
		p.warn(w)
	}
	return nil
}

// resolve returns the job or template name with extends: applied.
func (p *parser) resolve(name string, stack []string) (*value, error) {
	r, err := p.resolveDepth(name, stack)
	return r.v, err
}

func (p *parser) resolveDepth(name string, stack []string) (resolved, error) {
	if r, ok := p.resolved[name]; ok {
		return r, nil
	}
	v := p.ext[name]
	ev, ok := v.get("extends")
	if !ok || ev.isNull() {
		r := resolved{v: v.without("extends")}
		p.resolved[name] = r
		return r, nil
	}
	bases, err := (&scope{p: p, job: name}).stringOrList(ev, "extends")
	if err != nil {
		return resolved{}, err
	}
	stack = append(stack, name)
	var base *value
	height := 0
	for _, b := range bases {
		if i := indexOf(stack, b); i >= 0 {
			chain := append(append([]string{}, stack[i:]...), b)
			return resolved{}, errAt(ev, name, "circular extends: %s", strings.Join(chain, " -> "))
		}
		if _, ok := p.ext[b]; !ok {
			return resolved{}, errAt(ev, name, "extends refers to %q, which is not a job or template", b)
		}
		br, err := p.resolveDepth(b, stack)
		if err != nil {
			return resolved{}, err
		}
		base = deepMerge(base, br.v)
		height = max(height, br.height+1)
	}
	if height > maxExtendsDepth {
		return resolved{}, errAt(ev, name, "extends nesting is too deep (more than %d levels)", maxExtendsDepth)
	}
	r := resolved{v: deepMerge(base, v.without("extends")), height: height}
	if r.v.size > maxNodes {
		return resolved{}, errAt(v, name, "the configuration is too large once extends: is applied")
	}
	p.resolved[name] = r
	return r, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func contains(list []string, s string) bool { return indexOf(list, s) >= 0 }
