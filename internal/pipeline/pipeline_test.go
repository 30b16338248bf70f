package pipeline

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	p := mustParse(t, "job:\n  script: make\n")
	assertStrings(t, "Stages", p.Stages, []string{".pre", "build", "test", "deploy", ".post"})
	if len(p.Warnings) != 0 {
		t.Errorf("Warnings = %q", p.Warnings)
	}
	j := getJob(t, p, "job")
	assertEqual(t, "Stage", j.Stage, "test")
	assertEqual(t, "When", j.When, "on_success")
	assertEqual(t, "Image", j.Image, "")
	assertEqual(t, "Timeout", j.Timeout, 0)
	assertEqual(t, "AllowFailure", j.AllowFailure, false)
	assertEqual(t, "Line", j.Line, 2)
	assertStrings(t, "Script", j.Script, []string{"make"})
	if j.Artifacts != nil || j.Needs != nil || j.NeedsSet || j.Dependencies != nil || j.DependenciesSet ||
		j.AfterScript != nil || j.Variables != nil {
		t.Errorf("unexpected fields: %+v", *j)
	}
}

func TestStages(t *testing.T) {
	tests := []struct {
		name, stages string
		want         []string
	}{
		{"custom", "[lint, build]", []string{".pre", "lint", "build", ".post"}},
		{"pre and post moved to the ends", "[.post, build, .pre, test]", []string{".pre", "build", "test", ".post"}},
		{"duplicates", "[build, test, build]", []string{".pre", "build", "test", ".post"}},
		{"empty", "[]", []string{".pre", ".post"}},
		{"null", "~", DefaultStages},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, "stages: "+tt.stages+"\njob:\n  stage: .pre\n  script: x\n")
			assertStrings(t, "Stages", p.Stages, tt.want)
		})
	}
	t.Run("unknown stage", func(t *testing.T) {
		got := parseErr(t, "stages: [build]\njob:\n  stage: tset\n  script: x\n")
		assertEqual(t, "error", got, `.gitlab-ci.yml:3: job "job": stage "tset" is not defined in stages (.pre, build, .post)`)
	})
	t.Run("default stage missing", func(t *testing.T) {
		got := parseErr(t, "stages: [build]\njob:\n  script: x\n")
		assertEqual(t, "error", got, `.gitlab-ci.yml:3: job "job": stage "test" is not defined in stages (.pre, build, .post)`)
	})
}

func TestDefaultKeyword(t *testing.T) {
	src := `
default:
  image: alpine:3
  before_script: [echo before]
  after_script: echo after
  timeout: 30m
  artifacts:
    paths: [dist/]
plain:
  script: make
own:
  image: {name: golang}
  before_script: [echo mine]
  after_script: []
  timeout: 2h
  artifacts: {paths: [out/], when: always}
  script: [make]
cleared:
  before_script: []
  script: make
`
	p := mustParse(t, src)
	plain := getJob(t, p, "plain")
	assertEqual(t, "plain.Image", plain.Image, "alpine:3")
	assertStrings(t, "plain.Script", plain.Script, []string{"echo before", "make"})
	assertStrings(t, "plain.AfterScript", plain.AfterScript, []string{"echo after"})
	assertEqual(t, "plain.Timeout", plain.Timeout, 30*time.Minute)
	if plain.Artifacts == nil || !slices.Equal(plain.Artifacts.Paths, []string{"dist/"}) || plain.Artifacts.When != "on_success" {
		t.Errorf("plain.Artifacts = %+v", plain.Artifacts)
	}
	own := getJob(t, p, "own")
	assertEqual(t, "own.Image", own.Image, "golang")
	assertStrings(t, "own.Script", own.Script, []string{"echo mine", "make"})
	assertStrings(t, "own.AfterScript", own.AfterScript, []string{})
	assertEqual(t, "own.Timeout", own.Timeout, 2*time.Hour)
	if own.Artifacts == nil || !slices.Equal(own.Artifacts.Paths, []string{"out/"}) || own.Artifacts.When != "always" {
		t.Errorf("own.Artifacts = %+v", own.Artifacts)
	}
	assertStrings(t, "cleared.Script", getJob(t, p, "cleared").Script, []string{"make"})
	if len(p.Warnings) != 0 {
		t.Errorf("Warnings = %q", p.Warnings)
	}

	t.Run("deprecated top-level forms", func(t *testing.T) {
		p := mustParse(t, "image: ruby\nbefore_script: setup\nafter_script: [bye]\njob:\n  script: run\n")
		j := getJob(t, p, "job")
		assertEqual(t, "Image", j.Image, "ruby")
		assertStrings(t, "Script", j.Script, []string{"setup", "run"})
		assertStrings(t, "AfterScript", j.AfterScript, []string{"bye"})
	})
	t.Run("top-level and default together", func(t *testing.T) {
		got := parseErr(t, "default:\n  image: a\nimage: b\njob:\n  script: x\n")
		assertEqual(t, "error", got, ".gitlab-ci.yml:3: image is defined in top-level and `default:` entry")
	})
	t.Run("unsupported default keywords", func(t *testing.T) {
		p := mustParse(t, "default:\n  tags: [a]\n  cache: {}\n  retry: 2\njob:\n  script: x\n")
		for _, k := range []string{"tags", "cache"} {
			want := fmt.Sprintf(`default: keyword %q is not supported; ignored`, k)
			if !slices.Contains(p.Warnings, want) {
				t.Errorf("missing warning %q in %q", want, p.Warnings)
			}
		}
	})
	t.Run("unknown default keyword", func(t *testing.T) {
		got := parseErr(t, "default:\n  variables: {A: b}\njob:\n  script: x\n")
		assertEqual(t, "error", got, `.gitlab-ci.yml:2: default: unknown keyword "variables"`)
	})
}

func TestInherit(t *testing.T) {
	src := `
variables: {A: "1", B: "2"}
default:
  image: alpine
  before_script: [setup]
none:
  inherit: {default: false, variables: false}
  script: x
some:
  inherit:
    default: [before_script]
    variables: [B]
  script: x
all:
  inherit: {default: true}
  script: x
`
	p := mustParse(t, src)
	none := getJob(t, p, "none")
	if none.Image != "" || !slices.Equal(none.Script, []string{"x"}) || len(none.Variables) != 0 {
		t.Errorf("none = %+v", *none)
	}
	some := getJob(t, p, "some")
	if some.Image != "" || !slices.Equal(some.Script, []string{"setup", "x"}) ||
		!slices.Equal(some.Variables, []Variable{{Key: "B", Value: "2"}}) {
		t.Errorf("some = %+v", *some)
	}
	all := getJob(t, p, "all")
	if all.Image != "alpine" || len(all.Variables) != 2 {
		t.Errorf("all = %+v", *all)
	}
}

func TestExtends(t *testing.T) {
	src := `
.base:
  image: base
  variables: {A: base, B: base}
  artifacts:
    paths: [a]
    when: always
  script: [base]
.other:
  variables: {B: other, C: other}
  before_script: [other]
single:
  extends: .base
  variables: {A: mine}
  artifacts: {paths: [b]}
multiple:
  extends: [.base, .other]
  script: [mine]
.mid:
  extends: .base
  image: mid
nested:
  extends: .mid
from_job:
  extends: single
  stage: build
`
	p := mustParse(t, src)
	single := getJob(t, p, "single")
	assertEqual(t, "single.Image", single.Image, "base")
	if !slices.Equal(single.Variables, []Variable{{Key: "A", Value: "mine"}, {Key: "B", Value: "base"}}) {
		t.Errorf("single.Variables = %v", single.Variables)
	}
	// Hashes merge: paths replaced (arrays are not merged), when kept.
	if a := single.Artifacts; a == nil || !slices.Equal(a.Paths, []string{"b"}) || a.When != "always" {
		t.Errorf("single.Artifacts = %+v", a)
	}
	assertStrings(t, "single.Script", single.Script, []string{"base"})

	multiple := getJob(t, p, "multiple")
	if !slices.Equal(multiple.Variables, []Variable{{Key: "A", Value: "base"}, {Key: "B", Value: "other"}, {Key: "C", Value: "other"}}) {
		t.Errorf("multiple.Variables = %v", multiple.Variables)
	}
	assertStrings(t, "multiple.Script", multiple.Script, []string{"other", "mine"})

	nested := getJob(t, p, "nested")
	assertEqual(t, "nested.Image", nested.Image, "mid")
	assertStrings(t, "nested.Script", nested.Script, []string{"base"})

	fromJob := getJob(t, p, "from_job")
	assertEqual(t, "from_job.Stage", fromJob.Stage, "build")
	if !slices.Equal(fromJob.Variables, []Variable{{Key: "A", Value: "mine"}, {Key: "B", Value: "base"}}) {
		t.Errorf("from_job.Variables = %v", fromJob.Variables)
	}
	assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"from_job", "single", "multiple", "nested"})
}

// extendsChain returns a configuration whose job extends a chain of n
// templates.
func extendsChain(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, ".t%d:\n", i)
		if i < n {
			fmt.Fprintf(&b, "  extends: .t%d\n", i+1)
		} else {
			b.WriteString("  script: deep\n")
		}
	}
	b.WriteString("job:\n  extends: .t1\n")
	return b.String()
}

func TestExtendsErrors(t *testing.T) {
	p := mustParse(t, extendsChain(11))
	assertStrings(t, "Script", getJob(t, p, "job").Script, []string{"deep"})
	if got := parseErr(t, extendsChain(12)); !strings.Contains(got, "extends nesting is too deep (more than 11 levels)") {
		t.Errorf("12 levels: %s", got)
	}
	tests := []struct{ name, src, want string }{
		{"cycle", ".a:\n  extends: .b\n.b:\n  extends: [.a]\njob:\n  extends: .a\n",
			`.gitlab-ci.yml:4: job ".b": circular extends: .a -> .b -> .a`},
		{"self", "job:\n  extends: job\n  script: x\n", `.gitlab-ci.yml:2: job "job": circular extends: job -> job`},
		{"unknown", "job:\n  extends: .nope\n  script: x\n",
			`.gitlab-ci.yml:2: job "job": extends refers to ".nope", which is not a job or template`},
		{"not a map", ".list: [a]\njob:\n  extends: .list\n  script: x\n",
			`.gitlab-ci.yml:3: job "job": extends refers to ".list", which is not a job or template`},
		{"wrong type", "job:\n  extends: {a: b}\n  script: x\n",
			`.gitlab-ci.yml:2: job "job": extends must be a string or a list of strings`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, tt.src), tt.want)
		})
	}
}

func TestAnchors(t *testing.T) {
	src := `
.vars: &vars
  A: anchor
  B: anchor
.more: &more
  B: more
  C: more
.script: &script
  - echo shared
.job: &job
  image: img
  script: *script
aliased:
  <<: *job
  variables:
    <<: [*vars, *more]
    A: explicit
listed:
  script:
    - *script
    - echo own
`
	p := mustParse(t, src)
	a := getJob(t, p, "aliased")
	assertEqual(t, "Image", a.Image, "img")
	assertStrings(t, "Script", a.Script, []string{"echo shared"})
	// Explicit keys win; among merged maps the first listed wins.
	if !slices.Equal(a.Variables, []Variable{{Key: "A", Value: "explicit"}, {Key: "B", Value: "anchor"}, {Key: "C", Value: "more"}}) {
		t.Errorf("Variables = %v", a.Variables)
	}
	assertStrings(t, "listed.Script", getJob(t, p, "listed").Script, []string{"echo shared", "echo own"})

	t.Run("duplicate keys", func(t *testing.T) {
		p := mustParse(t, "job:\n  script: one\njob:\n  script: two\n")
		assertStrings(t, "Script", getJob(t, p, "job").Script, []string{"two"})
		assertStrings(t, "Warnings", p.Warnings, []string{
			`.gitlab-ci.yml:3: key "job" is defined more than once (first at line 1); the last definition wins`})
	})
	t.Run("alias cycle", func(t *testing.T) {
		assertEqual(t, "error", parseErr(t, "a: &a [*a]\n"), ".gitlab-ci.yml:1: an alias refers to a value that contains it")
	})
	t.Run("bad merge", func(t *testing.T) {
		assertEqual(t, "error", parseErr(t, "job:\n  <<: [a]\n  script: x\n"),
			".gitlab-ci.yml:2: a merge key (<<) must refer to a map or a list of maps")
	})
	t.Run("alias bomb", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
		for i := 1; i < 10; i++ {
			fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i,
				i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
		}
		b.WriteString("job:\n  script: *a9\n")
		if got := parseErr(t, b.String()); !strings.Contains(got, "too large") {
			t.Errorf("error = %s", got)
		}
	})
}

func TestVariables(t *testing.T) {
	src := `
variables:
  STR: text
  INT: 42
  FLOAT: 1.5
  BOOL: true
  EMPTY:
  QUOTED: "007"
  FULL:
    value: from map
    description: shown in the UI
    options: [from map, other]
  RAW:
    value: $NOT_EXPANDED
    expand: false
job:
  variables:
    STR: job wins
    NUM: 0x1F
    OWN: {value: 3}
  script: x
`
	p := mustParse(t, src)
	want := []Variable{
		{Key: "STR", Value: "text"}, {Key: "INT", Value: "42"}, {Key: "FLOAT", Value: "1.5"}, {Key: "BOOL", Value: "true"}, {Key: "EMPTY", Value: ""}, {Key: "QUOTED", Value: "007"},
		{Key: "FULL", Value: "from map"}, {Key: "RAW", Value: "$NOT_EXPANDED", Raw: true},
		{Key: "STR", Value: "job wins"}, {Key: "NUM", Value: "0x1F"}, {Key: "OWN", Value: "3"},
	}
	if got := getJob(t, p, "job").Variables; !slices.Equal(got, want) {
		t.Errorf("Variables =\n%v\nwant\n%v", got, want)
	}
	assertStrings(t, "Warnings", p.Warnings, nil)

	errs := []struct{ name, src, want string }{
		{"list value", "variables:\n  A: [1]\njob:\n  script: x\n",
			`.gitlab-ci.yml:2: variable "A" must be a string, a number, a boolean or a map with a value`},
		{"not a map", "job:\n  variables: [A]\n  script: x\n",
			`.gitlab-ci.yml:2: job "job": variables must be a map of names to values`},
		{"unknown key", "job:\n  variables:\n    A: {value: x, secret: y}\n  script: x\n",
			`.gitlab-ci.yml:3: job "job": variable "A": unknown keyword "secret"`},
		{"map value", "job:\n  variables:\n    A: {value: {x: y}}\n  script: x\n",
			`.gitlab-ci.yml:3: job "job": variable "A": value must be a string, a number or a boolean`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, tt.src), tt.want)
		})
	}
}

func TestScript(t *testing.T) {
	tests := []struct {
		name, script string
		want         []string
	}{
		{"string", "make all", []string{"make all"}},
		{"list", "[a, b]", []string{"a", "b"}},
		{"nested", "[a, [b, c], [[d], e]]", []string{"a", "b", "c", "d", "e"}},
		{"multi-line", "\n    - |\n      one\n      two", []string{"one\ntwo\n"}},
		{"quoted number", `["1"]`, []string{"1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustParse(t, "job:\n  script: "+tt.script+"\n")
			assertStrings(t, "Script", getJob(t, p, "job").Script, tt.want)
		})
	}
	errs := []struct{ name, src, want string }{
		{"map item", "job:\n  script:\n    - echo: hi\n", `.gitlab-ci.yml:3: job "job": script must be a string or a list of strings`},
		{"number", "job:\n  script: [a, 1]\n", `.gitlab-ci.yml:2: job "job": script must be a string or a list of strings`},
		{"map", "job:\n  script: {a: b}\n", `.gitlab-ci.yml:2: job "job": script must be a string or a list of strings`},
		{"before_script", "job:\n  before_script: [[true]]\n  script: x\n", `.gitlab-ci.yml:2: job "job": before_script must be a string or a list of strings`},
		{"after_script in default", "default:\n  after_script: 3\njob:\n  script: x\n", `.gitlab-ci.yml:2: default: after_script must be a string or a list of strings`},
		{"missing", "job:\n  stage: build\n", `.gitlab-ci.yml:2: job "job": script is required`},
		{"null", "job:\n  script:\n", `.gitlab-ci.yml:2: job "job": script is required`},
		{"empty", "job:\n  script: []\n", `.gitlab-ci.yml:2: job "job": script is required`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, tt.src), tt.want)
		})
	}
}

func TestTimeoutKeyword(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"1h 30m", 90 * time.Minute},
		{"90 minutes", 90 * time.Minute},
		{"2h", 2 * time.Hour},
		{"45m", 45 * time.Minute},
		{"30s", 30 * time.Second},
		{"1 hour", time.Hour},
		{"3600", time.Hour},
		{`"3600"`, time.Hour},
		{"3 hours 30 minutes", 210 * time.Minute},
		{"1 week", 7 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p := mustParse(t, "job:\n  timeout: "+tt.in+"\n  script: x\n")
			assertEqual(t, "Timeout", getJob(t, p, "job").Timeout, tt.want)
		})
	}
	errs := []struct{ in, want string }{
		{"soon", `.gitlab-ci.yml:2: job "job": timeout: invalid duration: "soon": expected a number at "soon"`},
		{"10 parsecs", `.gitlab-ci.yml:2: job "job": timeout: invalid duration: "10 parsecs": unknown unit "parsecs"`},
		{"0", `.gitlab-ci.yml:2: job "job": timeout must be positive`},
		{"2 months", `.gitlab-ci.yml:2: job "job": timeout must not exceed 1 month`},
		{"[1h]", `.gitlab-ci.yml:2: job "job": timeout must be a duration such as "1h 30m"`},
	}
	for _, tt := range errs {
		t.Run(tt.in, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, "job:\n  timeout: "+tt.in+"\n  script: x\n"), tt.want)
		})
	}
}

func TestArtifacts(t *testing.T) {
	src := `
full:
  script: x
  artifacts:
    name: $CI_JOB_NAME
    paths: [bin/, "*.log"]
    exclude: [bin/tmp]
    when: on_failure
    expire_in: 1 week
    untracked: false
untracked:
  script: x
  artifacts: {untracked: true, expire_in: never}
reports_only:
  script: x
  artifacts:
    reports: {junit: report.xml}
`
	p := mustParse(t, src)
	want := Artifacts{Name: "$CI_JOB_NAME", Paths: []string{"bin/", "*.log"}, Exclude: []string{"bin/tmp"},
		When: "on_failure", ExpireIn: "1 week"}
	got := getJob(t, p, "full").Artifacts
	if got == nil || got.Name != want.Name || !slices.Equal(got.Paths, want.Paths) || !slices.Equal(got.Exclude, want.Exclude) ||
		got.When != want.When || got.ExpireIn != want.ExpireIn || got.Untracked {
		t.Errorf("full.Artifacts = %+v", got)
	}
	if u := getJob(t, p, "untracked").Artifacts; u == nil || !u.Untracked || u.ExpireIn != "never" || u.When != "on_success" {
		t.Errorf("untracked.Artifacts = %+v", u)
	}
	if r := getJob(t, p, "reports_only").Artifacts; r != nil {
		t.Errorf("reports_only.Artifacts = %+v, want nil", r)
	}
	assertStrings(t, "Warnings", p.Warnings, []string{`job "reports_only": keyword "artifacts:reports:junit" is not supported; ignored`})

	errs := []struct{ name, artifacts, want string }{
		{"when", "{paths: [a], when: sometimes}", "artifacts:when must be on_success, on_failure or always"},
		{"paths string", "{paths: a}", "artifacts:paths must be a list of strings"},
		{"expire_in", "{paths: [a], expire_in: forever}", `artifacts:expire_in: invalid duration: "forever"`},
		{"unknown", "{paths: [a], path: [b]}", `artifacts: unknown keyword "path"`},
		{"untracked", "{untracked: yes}", "artifacts:untracked must be true or false"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			got := parseErr(t, "job:\n  script: x\n  artifacts: "+tt.artifacts+"\n")
			if !strings.HasPrefix(got, `.gitlab-ci.yml:3: job "job": `+tt.want) {
				t.Errorf("error = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestEnvironment follows docs: ci/yaml "environment".
func TestEnvironment(t *testing.T) {
	tests := []struct {
		in   string
		want Environment
	}{
		{"production", Environment{Name: "production", Action: "start"}},
		{"review/$CI_COMMIT_REF_SLUG", Environment{Name: "review/$CI_COMMIT_REF_SLUG", Action: "start"}},
		{"{name: staging, url: 'https://$HOST', action: prepare, deployment_tier: testing, auto_stop_in: 1 day, on_stop: stop}",
			Environment{Name: "staging", URL: "https://$HOST", Action: "prepare", Tier: "testing"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p := mustParse(t, "job:\n  script: x\n  environment: "+tt.in+"\n")
			j := getJob(t, p, "job")
			if j.Environment == nil || *j.Environment != tt.want {
				t.Errorf("Environment = %+v, want %+v", j.Environment, tt.want)
			}
			if len(p.Warnings) != 0 {
				t.Errorf("Warnings = %q", p.Warnings)
			}
		})
	}
	if j := getJob(t, mustParse(t, "job:\n  script: x\n"), "job"); j.Environment != nil {
		t.Errorf("no environment: %+v", j.Environment)
	}
	for bad, msg := range map[string]string{
		`""`:                             "environment name can't be blank",
		"{url: x}":                       "environment name can't be blank",
		"[a]":                            "environment must be a string or a map",
		"{name: a, action: deploy}":      "environment:action must be",
		"{name: a, deployment_tier: qa}": "environment:deployment_tier must be",
		"{name: a, colour: blue}":        `environment: unknown keyword "colour"`,
	} {
		if got := parseErr(t, "job:\n  script: x\n  environment: "+bad+"\n"); !strings.Contains(got, msg) {
			t.Errorf("%s: error = %s, want %q", bad, got, msg)
		}
	}
}

func TestAllowFailure(t *testing.T) {
	tests := []struct {
		in    string
		want  bool
		codes []int
	}{
		{"true", true, nil},
		{"false", false, nil},
		{"{exit_codes: 137}", true, []int{137}},
		{"{exit_codes: [1, 2]}", true, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			j := getJob(t, mustParse(t, "job:\n  script: x\n  allow_failure: "+tt.in+"\n"), "job")
			if j.AllowFailure != tt.want || !slices.Equal(j.AllowFailureExitCodes, tt.codes) {
				t.Errorf("AllowFailure = %v %v", j.AllowFailure, j.AllowFailureExitCodes)
			}
		})
	}
	for _, bad := range []string{"yes please", "{exit_codes: [a]}", "{codes: 1}"} {
		if got := parseErr(t, "job:\n  script: x\n  allow_failure: "+bad+"\n"); !strings.Contains(got, "allow_failure") {
			t.Errorf("%s: error = %s", bad, got)
		}
	}
}

func TestNeeds(t *testing.T) {
	src := `
stages: [build, test]
compile:
  stage: build
  script: x
lint:
  stage: build
  script: x
unit:
  needs:
    - compile
    - job: lint
      artifacts: false
    - {job: absent, optional: true}
    - {pipeline: $PARENT_PIPELINE_ID, job: gen}
  script: x
alone:
  needs: []
  script: x
`
	p := mustParse(t, src)
	unit := getJob(t, p, "unit")
	assertStrings(t, "Needs", unit.Needs, []string{"compile", "lint"})
	if !unit.NeedsSet || len(unit.NeedsArtifacts) != 2 || !unit.NeedsArtifacts["compile"] || unit.NeedsArtifacts["lint"] {
		t.Errorf("NeedsSet %v, NeedsArtifacts %v", unit.NeedsSet, unit.NeedsArtifacts)
	}
	alone := getJob(t, p, "alone")
	if !alone.NeedsSet || alone.Needs == nil || len(alone.Needs) != 0 {
		t.Errorf("alone: NeedsSet %v Needs %#v", alone.NeedsSet, alone.Needs)
	}
	if n := countWarnings(p, `job "unit": needs from another pipeline or project`); n != 1 {
		t.Errorf("Warnings = %q", p.Warnings)
	}

	errs := []struct{ name, src, want string }{
		{"unknown", "a:\n  script: x\nb:\n  needs: [c]\n  script: x\n",
			`.gitlab-ci.yml:4: job "b": needs "c", which is not a job of the pipeline`},
		{"hidden", ".a:\n  script: x\nb:\n  needs: [.a]\n  script: x\n",
			`.gitlab-ci.yml:4: job "b": needs ".a", which is not a job of the pipeline`},
		{"later stage", "a:\n  stage: deploy\n  script: x\nb:\n  stage: build\n  needs: [a]\n  script: x\n",
			`.gitlab-ci.yml:6: job "b": needs "a", which is in a later stage (deploy)`},
		{"never", "a:\n  rules: [{when: never}]\n  script: x\nb:\n  needs: [{job: a}]\n  script: x\n",
			`.gitlab-ci.yml:5: job "b": needs "a", which is not in the pipeline (a rule with when: never matches)`},
		{"no rule", "a:\n  rules: [{if: $NOPE}]\n  script: x\nb:\n  needs: [{job: a}]\n  script: x\n",
			`.gitlab-ci.yml:5: job "b": needs "a", which is not in the pipeline (no rule matches)`},
		{"wrong type", "a:\n  needs: a\n  script: x\n",
			`.gitlab-ci.yml:2: job "a": needs must be a list of job names or maps with a job`},
		{"map without job", "a:\n  needs: [{artifacts: true}]\n  script: x\n",
			`.gitlab-ci.yml:2: job "a": needs:job is required`},
		{"cycle", "a:\n  needs: [b]\n  script: x\nb:\n  needs: [c]\n  script: x\nc:\n  needs: [a]\n  script: x\n",
			`.gitlab-ci.yml:2: job "a": needs cycle: a -> b -> c -> a`},
		{"self", "a:\n  needs: [a]\n  script: x\n", `.gitlab-ci.yml:2: job "a": needs cycle: a -> a`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, tt.src), tt.want)
		})
	}

	// docs: ci/yaml "needs:optional": an optional need on a job rules
	// leave out is dropped.
	t.Run("optional need on an excluded job", func(t *testing.T) {
		p := mustParse(t, "a:\n  rules: [{when: never}]\n  script: x\nb:\n  needs: [{job: a, optional: true}]\n  script: x\n")
		b := getJob(t, p, "b")
		if !b.NeedsSet || len(b.Needs) != 0 || len(b.NeedsArtifacts) != 0 {
			t.Errorf("b = %+v", *b)
		}
	})
	t.Run("need on a manual job", func(t *testing.T) {
		p := mustParse(t, "a:\n  when: manual\n  script: x\nb:\n  needs: [a]\n  script: x\n")
		assertStrings(t, "b.Needs", getJob(t, p, "b").Needs, []string{"a"})
	})
}

func TestDependencies(t *testing.T) {
	src := `
build:
  stage: build
  script: x
docs:
  stage: build
  trigger: x
test:
  dependencies: [build, docs]
  script: x
none:
  dependencies: []
  script: x
same_stage:
  stage: build
  needs: [build]
  dependencies: [build]
  script: x
`
	p := mustParse(t, src)
	test := getJob(t, p, "test")
	if !test.DependenciesSet || !slices.Equal(test.Dependencies, []string{"build"}) {
		t.Errorf("test: %v %q", test.DependenciesSet, test.Dependencies)
	}
	if n := countWarnings(p, `job "test": dependency "docs" does not run (keyword "trigger")`); n != 1 {
		t.Errorf("Warnings = %q", p.Warnings)
	}
	none := getJob(t, p, "none")
	if !none.DependenciesSet || none.Dependencies == nil || len(none.Dependencies) != 0 {
		t.Errorf("none: %v %#v", none.DependenciesSet, none.Dependencies)
	}
	assertStrings(t, "same_stage.Dependencies", getJob(t, p, "same_stage").Dependencies, []string{"build"})

	errs := []struct{ name, src, want string }{
		{"unknown", "a:\n  dependencies: [b]\n  script: x\n",
			`.gitlab-ci.yml:2: job "a": dependencies: "b" is not a job of the pipeline`},
		{"same stage", "a:\n  script: x\nb:\n  dependencies: [a]\n  script: x\n",
			`.gitlab-ci.yml:4: job "b": dependencies: "a" is not in an earlier stage`},
		{"later stage", "a:\n  stage: deploy\n  script: x\nb:\n  dependencies: [a]\n  script: x\n",
			`.gitlab-ci.yml:5: job "b": dependencies: "a" is not in an earlier stage`},
		{"not in needs", "a:\n  stage: build\n  script: x\nc:\n  stage: build\n  script: x\nb:\n  needs: [a]\n  dependencies: [c]\n  script: x\n",
			`.gitlab-ci.yml:9: job "b": dependencies: "c" must also be listed in needs`},
		{"wrong type", "a:\n  dependencies: b\n  script: x\n",
			`.gitlab-ci.yml:2: job "a": dependencies must be a list of strings`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, tt.src), tt.want)
		})
	}
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"stages then file order", `
deploy: {stage: deploy, script: x}
test2: {script: x}
build: {stage: build, script: x}
test1: {script: x}
post: {stage: .post, script: x}
pre: {stage: .pre, script: x}
`, []string{"pre", "build", "test2", "test1", "deploy", "post"}},
		{"needs within a stage", `
c: {needs: [b], script: x}
b: {needs: [a], script: x}
a: {script: x}
d: {script: x}
`, []string{"a", "b", "c", "d"}},
		{"needs keep file order otherwise", `
z: {needs: [y], script: x}
w: {script: x}
y: {script: x}
`, []string{"w", "y", "z"}},
		{"needs on an earlier stage", `
t: {needs: [b], script: x}
b: {stage: build, script: x}
`, []string{"b", "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertStrings(t, "Jobs", jobNames(mustParse(t, tt.src).Jobs), tt.want)
		})
	}
}

// TestSkippedJobs follows docs.gitlab.com/ee/ci/yaml/#when: manual and
// delayed jobs are in the pipeline, when: never only in rules.
func TestSkippedJobs(t *testing.T) {
	src := `
.hidden:
  script: x
.snippet: [a, b]
manual:
  when: manual
  script: x
never:
  when: never
  rules: [{if: $X}]
  script: x
delayed:
  when: delayed
  start_in: 5 minutes
  script: x
always:
  when: always
  script: x
failure:
  when: on_failure
  script: x
bridge:
  trigger: other/project
  needs: [manual]
`
	p := mustParse(t, src)
	assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"manual", "delayed", "always", "failure"})
	assertEqual(t, "manual.When", getJob(t, p, "manual").When, "manual")
	assertEqual(t, "manual.AllowFailure", getJob(t, p, "manual").AllowFailure, true)
	assertEqual(t, "delayed.When", getJob(t, p, "delayed").When, "delayed")
	assertEqual(t, "delayed.StartIn", getJob(t, p, "delayed").StartIn, 5*time.Minute)
	assertEqual(t, "always.When", getJob(t, p, "always").When, "always")
	assertEqual(t, "failure.When", getJob(t, p, "failure").When, "on_failure")
	assertStrings(t, "Warnings", p.Warnings, []string{`job "bridge": keyword "trigger" is not supported; job skipped`})

	for _, tt := range []struct{ name, src, want string }{
		{"bad when", "a:\n  when: later\n  script: x\n",
			`.gitlab-ci.yml:2: job "a": when must be one of on_success, on_failure, always, manual, delayed or never`},
		{"when never without rules", "a:\n  when: never\n  script: x\n",
			`.gitlab-ci.yml:2: job "a": when: never is only allowed in rules (when must be one of on_success, on_failure, always, manual or delayed)`},
		{"delayed without start_in", "a:\n  when: delayed\n  script: x\n", `.gitlab-ci.yml:2: job "a": start_in is required with when: delayed`},
		{"start_in without delayed", "a:\n  start_in: 1 hour\n  script: x\n", `.gitlab-ci.yml:2: job "a": start_in can only be used with when: delayed`},
		{"start_in too long", "a:\n  when: delayed\n  start_in: 8 days\n  script: x\n", `.gitlab-ci.yml:3: job "a": start_in must not exceed 1 week`},
		{"needs on a trigger job", "a:\n  trigger: x\nb:\n  needs: [a]\n  script: x\n",
			`.gitlab-ci.yml:4: job "b": needs "a", which does not run (keyword "trigger")`},
		{"no visible job", ".a:\n  script: x\nvariables: {}\n", ".gitlab-ci.yml:1: the configuration has no visible job"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, tt.src), tt.want)
		})
	}
}

func TestUnsupportedKeywords(t *testing.T) {
	keys := []string{
		"cache", "services", "tags", "interruptible",
		"coverage", "resource_group", "release", "pages", "id_tokens", "secrets",
		"hooks", "identity", "manual_confirmation", "dast_configuration", "run",
	}
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			// The keyword appears in a template and in the job; both jobs
			// that extend the template are warned once each.
			src := fmt.Sprintf(".t:\n  %[1]s: 1\na:\n  extends: .t\n  %[1]s: 2\n  script: x\nb:\n  extends: .t\n  script: x\n", k)
			p := mustParse(t, src)
			for _, job := range []string{"a", "b"} {
				want := fmt.Sprintf(`job %q: keyword %q is not supported; ignored`, job, k)
				if n := countWarnings(p, want); n != 1 {
					t.Errorf("%d warnings %q in %q", n, want, p.Warnings)
				}
			}
			if len(p.Warnings) != 2 {
				t.Errorf("Warnings = %q", p.Warnings)
			}
		})
	}
	t.Run("top level", func(t *testing.T) {
		p := mustParse(t, "services: [x]\ncache: {}\njob:\n  script: x\n")
		assertStrings(t, "Warnings", p.Warnings, []string{
			`keyword "services" is not supported; ignored`,
			`keyword "cache" is not supported; ignored`,
		})
	})
	t.Run("sub-keywords", func(t *testing.T) {
		src := `
job:
  image: {name: a, entrypoint: [""], pull_policy: always}
  artifacts: {paths: [a], reports: {dotenv: x, junit: y}, expose_as: A}
  needs: [other]
  script: x
other:
  stage: build
  script: x
`
		p := mustParse(t, src)
		for _, k := range []string{"image:entrypoint", "image:pull_policy", "artifacts:reports:junit", "artifacts:expose_as"} {
			if n := countWarnings(p, fmt.Sprintf(`job "job": keyword %q is not supported; ignored`, k)); n != 1 {
				t.Errorf("%s: Warnings = %q", k, p.Warnings)
			}
		}
	})
	t.Run("excluded jobs are not warned about their keywords", func(t *testing.T) {
		p := mustParse(t, "a:\n  rules: [{when: never}]\n  tags: [x]\n  script: x\nb:\n  script: x\n")
		assertStrings(t, "Warnings", p.Warnings, nil)
	})
	t.Run("unknown keyword", func(t *testing.T) {
		assertEqual(t, "error", parseErr(t, "job:\n  scirpt: x\n  script: x\n"), `.gitlab-ci.yml:2: job "job": unknown keyword "scirpt"`)
	})
}

// TestReference follows ci/yaml "!reference tags": scripts, variables
// and rules reused from other jobs, nested references, and a reference to
// a key that does not exist.
func TestReference(t *testing.T) {
	src := `
.setup:
  script: [echo setup, echo more]
.vars:
  variables:
    A: from vars
    B: b
.nested:
  script:
    - !reference [.setup, script]
    - echo nested
.rules:
  rules:
    - if: $NOPE
      when: never
job:
  before_script: !reference [.setup, script]
  script:
    - !reference [.nested, script]
    - echo own
  variables:
    A: !reference [.vars, variables, A]
  rules:
    - !reference [.rules, rules]
    - when: always
whole:
  variables: !reference [.vars, variables]
  script: !reference [.setup, script]
.needs: {needs: [job]}
needing:
  stage: deploy
  needs: [!reference [.needs, needs], whole]
  script: x
`
	p := mustParse(t, src)
	j := getJob(t, p, "job")
	assertStrings(t, "Script", j.Script, []string{"echo setup", "echo more", "echo setup", "echo more", "echo nested", "echo own"})
	assertEqual(t, "When", j.When, "always")
	if !slices.Equal(j.Variables, []Variable{{Key: "A", Value: "from vars"}}) {
		t.Errorf("Variables = %v", j.Variables)
	}
	w := getJob(t, p, "whole")
	assertStrings(t, "whole.Script", w.Script, []string{"echo setup", "echo more"})
	if len(w.Variables) != 2 {
		t.Errorf("whole.Variables = %v", w.Variables)
	}
	assertStrings(t, "Warnings", p.Warnings, nil)
	assertStrings(t, "needing.Needs", getJob(t, p, "needing").Needs, []string{"job", "whole"})

	for _, tt := range []struct{ name, src, want string }{
		{"missing", "job:\n  script: !reference [.nope, script]\n", `.gitlab-ci.yml:2: !reference [.nope, script] could not be found`},
		{"scalar", "job:\n  script: !reference x\n", `.gitlab-ci.yml:2: !reference x: a reference must be a sequence such as [.job, script]`},
		{"cycle", ".a:\n  script: !reference [.b, script]\n.b:\n  script: !reference [.a, script]\njob:\n  script: !reference [.a, script]\n",
			`.gitlab-ci.yml:2: !reference [.b, script]: references nested deeper than 10 levels`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, tt.src), tt.want)
		})
	}
}

func TestReferenceInUnsupportedKeyword(t *testing.T) {
	p := mustParse(t, ".r:\n  cache: {paths: [a]}\njob:\n  cache: [!reference [.r, cache]]\n  script: x\n")
	assertStrings(t, "Warnings", p.Warnings, []string{`job "job": keyword "cache" is not supported; ignored`})
}

func TestWarningsOncePerKey(t *testing.T) {
	src := `
default:
  cache: {paths: [a]}
  tags: [x]
a:
  tags: [y]
  script: x
b:
  script: x
`
	p := mustParse(t, src)
	assertStrings(t, "Warnings", p.Warnings, []string{
		`default: keyword "cache" is not supported; ignored`,
		`default: keyword "tags" is not supported; ignored`,
		`job "a": keyword "tags" is not supported; ignored`,
	})
}

func TestSpecHeader(t *testing.T) {
	p := mustParse(t, "spec:\n  inputs:\n    x: {}\n---\njob:\n  script: x\n")
	assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"job"})
	assertStrings(t, "Warnings", p.Warnings, []string{`keyword "spec" (header) is not supported; ignored`})
}

func TestSelect(t *testing.T) {
	src := `
a: {stage: build, script: x}
b: {stage: build, script: x}
c: {needs: [a], script: x}
d: {dependencies: [b], script: x}
e: {stage: deploy, needs: [c], script: x}
f: {stage: deploy, script: x}
m: {when: manual, script: x}
r: {rules: [{if: $NOPE}], script: x}
`
	p := mustParse(t, src)
	tests := []struct {
		names []string
		want  []string
	}{
		{nil, []string{"a", "b", "c", "d", "m", "e", "f"}},
		{[]string{"m"}, []string{"m"}},
		{[]string{"e"}, []string{"a", "c", "e"}},
		{[]string{"d"}, []string{"b", "d"}},
		{[]string{"f", "a"}, []string{"a", "f"}},
		{[]string{"e", "d", "e"}, []string{"a", "b", "c", "d", "e"}},
	}
	for _, tt := range tests {
		got, err := p.Select(tt.names...)
		if err != nil {
			t.Fatalf("Select(%q): %v", tt.names, err)
		}
		assertStrings(t, fmt.Sprintf("Select(%q)", tt.names), jobNames(got), tt.want)
	}
	_, err := p.Select("a", "zz")
	assertEqual(t, "error", fmt.Sprint(err), `unknown job "zz"; available jobs: a, b, c, d, m, e, f`)
	_, err = p.Select("r")
	assertEqual(t, "error", fmt.Sprint(err), `unknown job: job "r" does not run (no rule matches); available jobs: a, b, c, d, m, e, f`)
}
