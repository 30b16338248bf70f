package pipeline

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func branchPush(branch string, extra ...Variable) Options {
	return Options{Predefined: append([]Variable{
		{Key: "CI_COMMIT_BRANCH", Value: branch}, {Key: "CI_COMMIT_REF_NAME", Value: branch},
		{Key: "CI_PIPELINE_SOURCE", Value: "push"}, {Key: "CI_DEFAULT_BRANCH", Value: "main"},
	}, extra...)}
}

func tagPush(tag string) Options {
	return Options{Predefined: []Variable{
		{Key: "CI_COMMIT_TAG", Value: tag}, {Key: "CI_COMMIT_REF_NAME", Value: tag}, {Key: "CI_PIPELINE_SOURCE", Value: "push"},
	}}
}

func parseOpts(t *testing.T, src string, opts Options) *Pipeline {
	t.Helper()
	p, err := ParseWith([]byte(src), opts)
	if err != nil {
		t.Fatalf("ParseWith: %v\n%s", err, src)
	}
	return p
}

func varValue(j *Job, key string) (string, bool) {
	for i := len(j.Variables) - 1; i >= 0; i-- {
		if j.Variables[i].Key == key {
			return j.Variables[i].Value, true
		}
	}
	return "", false
}

// TestRules follows docs.gitlab.com/ee/ci/jobs/job_rules.html ("rules
// examples", "Common if clauses", "rules:when", "rules:allow_failure",
// "rules:variables", "rules:needs") and ci/yaml "rules".
func TestRules(t *testing.T) {
	src := `
variables:
  DEPLOY: "yes"
build:
  stage: build
  script: x
main-only:
  script: x
  rules:
    - if: $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH
feature-only:
  script: x
  rules:
    - if: $CI_COMMIT_BRANCH =~ /^feature\//
never-on-main:
  script: x
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
      when: never
    - when: always
manual-on-main:
  script: x
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
      when: manual
manual-allowed:
  script: x
  rules:
    - if: $CI_COMMIT_BRANCH
      when: manual
      allow_failure: true
delayed:
  script: x
  rules:
    - when: delayed
      start_in: 10 minutes
vars:
  variables:
    LEVEL: job
  script: x
  rules:
    - if: $DEPLOY == "yes" && $LEVEL == "job"
      variables:
        LEVEL: rule
        EXTRA: "$DEPLOY-1"
with-needs:
  stage: deploy
  needs: [main-only]
  script: x
  rules:
    - if: $CI_COMMIT_BRANCH == "main"
      needs: [build]
empty-rules:
  script: x
  rules: []
job-when:
  when: on_failure
  script: x
  rules:
    - if: $CI_COMMIT_BRANCH
exit-codes:
  script: x
  rules:
    - allow_failure: {exit_codes: [3, 4]}
`
	t.Run("main", func(t *testing.T) {
		p := parseOpts(t, src, branchPush("main"))
		assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"build", "main-only", "manual-on-main", "manual-allowed", "delayed", "vars", "job-when", "exit-codes", "with-needs"})
		m := getJob(t, p, "manual-on-main")
		assertEqual(t, "manual-on-main.When", m.When, "manual")
		assertEqual(t, "manual-on-main.AllowFailure", m.AllowFailure, false)
		ma := getJob(t, p, "manual-allowed")
		assertEqual(t, "manual-allowed.AllowFailure", ma.AllowFailure, true)
		assertEqual(t, "delayed.When", getJob(t, p, "delayed").When, "delayed")
		assertEqual(t, "delayed.StartIn", getJob(t, p, "delayed").StartIn.String(), "10m0s")
		v := getJob(t, p, "vars")
		level, _ := varValue(v, "LEVEL")
		extra, _ := varValue(v, "EXTRA")
		assertEqual(t, "LEVEL", level, "rule")
		assertEqual(t, "EXTRA", extra, "$DEPLOY-1") // expanded when the job runs
		assertStrings(t, "with-needs.Needs", getJob(t, p, "with-needs").Needs, []string{"build"})
		assertEqual(t, "job-when.When", getJob(t, p, "job-when").When, "on_failure")
		ec := getJob(t, p, "exit-codes")
		if !ec.AllowFailure || !slices.Equal(ec.AllowFailureExitCodes, []int{3, 4}) {
			t.Errorf("exit-codes: %v %v", ec.AllowFailure, ec.AllowFailureExitCodes)
		}
		if _, err := p.Select("feature-only"); err == nil || !strings.Contains(err.Error(), "no rule matches") {
			t.Errorf("Select(feature-only) = %v", err)
		}
		if _, err := p.Select("never-on-main"); err == nil || !strings.Contains(err.Error(), "when: never") {
			t.Errorf("Select(never-on-main) = %v", err)
		}
	})
	t.Run("feature branch", func(t *testing.T) {
		p := parseOpts(t, strings.Replace(src, "needs: [main-only]", "needs: [build]", 1), branchPush("feature/x"))
		assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"build", "feature-only", "never-on-main", "manual-allowed", "delayed", "vars", "job-when", "exit-codes"})
		assertEqual(t, "never-on-main.When", getJob(t, p, "never-on-main").When, "always")
	})
	t.Run("pipeline variables win over the configuration's", func(t *testing.T) {
		opts := branchPush("x")
		opts.PipelineVars = []Variable{{Key: "DEPLOY", Value: "no"}}
		p := parseOpts(t, "a:\n  script: x\n  rules: [{if: $DEPLOY == \"yes\"}]\nb:\n  script: x\nvariables: {DEPLOY: \"yes\"}\n", opts)
		assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"b"})
	})
	t.Run("variables referencing variables", func(t *testing.T) {
		p := parseOpts(t, "variables: {BASE: /opt, BIN: '${BASE}/bin'}\na:\n  script: x\n  rules: [{if: $BIN == \"/opt/bin\"}]\n", branchPush("x"))
		assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"a"})
	})
	t.Run("nested rules lists", func(t *testing.T) {
		p := parseOpts(t, ".r: &r\n  - if: $CI_COMMIT_BRANCH == \"x\"\na:\n  script: x\n  rules: [*r, {when: never}]\n", branchPush("x"))
		assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"a"})
	})

	errs := []struct{ name, src, want string }{
		{"bad expression", "a:\n  script: x\n  rules: [{if: '$A = 1'}]\n", `.gitlab-ci.yml:3: job "a": rules:if "$A = 1": invalid expression: unexpected '=' at offset 3`},
		{"unknown key", "a:\n  script: x\n  rules: [{iff: $A}]\n", `.gitlab-ci.yml:3: job "a": rules: unknown keyword "iff"`},
		{"not a list", "a:\n  script: x\n  rules: {if: $A}\n", `.gitlab-ci.yml:3: job "a": rules must be a list of rules`},
		{"bad when", "a:\n  script: x\n  rules: [{when: later}]\n", `.gitlab-ci.yml:3: job "a": rules:when must be one of on_success, on_failure, always, manual, delayed, never`},
		{"with only", "a:\n  script: x\n  only: [main]\n  rules: [{when: always}]\n", `.gitlab-ci.yml:3: job "a": only cannot be used with rules (GitLab: config key may not be used with ` + "`rules`" + `: only)`},
		{"delayed without start_in", "a:\n  script: x\n  rules: [{when: delayed}]\n", `.gitlab-ci.yml:2: job "a": start_in is required with when: delayed`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWith([]byte(tt.src), branchPush("main"))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant    %s", err, tt.want)
			}
		})
	}
}

// TestRulesChanges follows ci/yaml "rules:changes" and
// "rules:changes:compare_to": globs, ** and {a,b}; no base: always true.
func TestRulesChanges(t *testing.T) {
	src := `
docs:
  script: x
  rules: [{changes: ["docs/**/*.md"]}]
go:
  script: x
  rules: [{changes: {paths: ["**/*.{go,mod}"]}}]
compared:
  script: x
  rules: [{changes: {paths: [README.md], compare_to: refs/heads/old}}]
root-only:
  script: x
  rules: [{changes: ["*.txt"]}]
`
	var asked []string
	opts := branchPush("main")
	opts.Changes = func(base string) ([]string, bool, error) {
		asked = append(asked, base)
		if base == "refs/heads/old" {
			return []string{"README.md"}, true, nil
		}
		return []string{"docs/guide/intro.md", "cmd/tool/main.go", "sub/notes.txt"}, true, nil
	}
	p := parseOpts(t, src, opts)
	assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"docs", "go", "compared"})
	if !slices.Contains(asked, "refs/heads/old") {
		t.Errorf("compare_to not asked: %q", asked)
	}
	opts.Changes = func(string) ([]string, bool, error) { return nil, false, nil }
	p = parseOpts(t, src, opts)
	assertStrings(t, "Jobs without a base", jobNames(p.Jobs), []string{"docs", "go", "compared", "root-only"})
	opts.Changes = func(string) ([]string, bool, error) { return nil, false, errors.New("no such ref") }
	if _, err := ParseWith([]byte(src), opts); err == nil || !strings.Contains(err.Error(), "no such ref") {
		t.Errorf("error = %v", err)
	}
}

// TestRulesExists follows ci/yaml "rules:exists".
func TestRulesExists(t *testing.T) {
	src := `
variables: {DIR: src}
docker:
  script: x
  rules: [{exists: [Dockerfile]}]
go:
  script: x
  rules: [{exists: {paths: ["$DIR/**/*.go"]}}]
none:
  script: x
  rules: [{exists: ["*.py"]}]
`
	opts := branchPush("main")
	opts.Project = fstest.MapFS{"Dockerfile": {}, "src/a/b/main.go": {}, "README.md": {}}
	p := parseOpts(t, src, opts)
	assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"docker", "go"})
}

// TestWorkflow follows ci/yaml "workflow:rules", "workflow:rules:variables"
// and "workflow:name".
func TestWorkflow(t *testing.T) {
	src := `
workflow:
  name: 'Pipeline for $CI_COMMIT_BRANCH ($LEVEL)'
  rules:
    - if: $CI_COMMIT_TAG
      when: never
    - if: $CI_COMMIT_BRANCH == "main"
      variables:
        LEVEL: production
    - if: $CI_COMMIT_BRANCH
variables:
  LEVEL: test
job:
  script: x
  rules:
    - if: $LEVEL == "production"
other:
  variables: {LEVEL: mine}
  script: x
`
	p := parseOpts(t, src, branchPush("main"))
	assertEqual(t, "Name", p.Name, "Pipeline for main (production)")
	assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"job", "other"})
	v, _ := varValue(getJob(t, p, "job"), "LEVEL")
	assertEqual(t, "job LEVEL", v, "production")
	v, _ = varValue(getJob(t, p, "other"), "LEVEL")
	assertEqual(t, "other LEVEL", v, "mine")

	p = parseOpts(t, src, branchPush("dev"))
	assertEqual(t, "Name", p.Name, "Pipeline for dev (test)")
	assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"other"})

	_, err := ParseWith([]byte(src), tagPush("v1"))
	if !errors.Is(err, ErrFiltered) || !strings.Contains(err.Error(), "when: never") {
		t.Errorf("tag: %v", err)
	}
	_, err = ParseWith([]byte(src), Options{})
	if !errors.Is(err, ErrFiltered) || !strings.Contains(err.Error(), "no rule matches") {
		t.Errorf("no ref: %v", err)
	}
	if _, err := ParseWith([]byte("workflow:\n  rules: [{when: manual}]\na: {script: x}\n"), Options{}); err == nil || !strings.Contains(err.Error(), "rules:when must be one of always, never") {
		t.Errorf("bad workflow when: %v", err)
	}
}

// TestOnlyExcept follows ci/yaml "only / except" (refs, variables,
// changes; only: all keys match, except: any key matches) and the default
// only: [branches, tags], also when only: names no refs (so that no such
// job is in a merge request pipeline).
func TestOnlyExcept(t *testing.T) {
	src := `
default-only:
  script: x
main:
  script: x
  only: [main]
release:
  script: x
  only: ['/^release-.*$/']
tags:
  script: x
  only: [tags]
not-main:
  script: x
  except: [main]
web:
  script: x
  only: [web]
pushes:
  script: x
  only: [pushes]
vars:
  script: x
  only:
    refs: [branches]
    variables: ['$DEPLOY == "yes"', '$OTHER']
changes:
  script: x
  only:
    changes: ["*.md"]
except-vars:
  script: x
  except:
    variables: [$SKIP]
`
	tests := []struct {
		name string
		opts Options
		want []string
	}{
		{"main", branchPush("main"), []string{"default-only", "main", "pushes", "changes", "except-vars"}},
		{"release branch", branchPush("release-1", Variable{Key: "DEPLOY", Value: "yes"}, Variable{Key: "SKIP", Value: "1"}),
			[]string{"default-only", "release", "not-main", "pushes", "vars", "changes"}},
		{"tag", tagPush("v1"), []string{"default-only", "tags", "not-main", "pushes", "changes", "except-vars"}},
		{"merge request", Options{Predefined: []Variable{{Key: "CI_COMMIT_REF_NAME", Value: "feature"}, {Key: "CI_PIPELINE_SOURCE", Value: "merge_request_event"}}},
			nil},
		{"web", Options{Predefined: []Variable{{Key: "CI_COMMIT_BRANCH", Value: "x"}, {Key: "CI_COMMIT_REF_NAME", Value: "x"}, {Key: "CI_PIPELINE_SOURCE", Value: "web"}}},
			[]string{"default-only", "not-main", "web", "changes", "except-vars"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parseOpts(t, src, tt.opts)
			assertStrings(t, "Jobs", jobNames(p.Jobs), tt.want)
		})
	}
	t.Run("changes", func(t *testing.T) {
		opts := branchPush("main")
		opts.Changes = func(string) ([]string, bool, error) { return []string{"src/a.go"}, true, nil }
		p := parseOpts(t, src, opts)
		assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"default-only", "main", "pushes", "except-vars"})
	})
}

func FuzzRules(f *testing.F) {
	f.Add("a:\n  script: x\n  rules: [{if: '$A == \"1\" || $B =~ /x/i', when: manual}]\n")
	f.Add("workflow: {rules: [{if: $A, variables: {B: c}}]}\na: {script: x, only: {refs: [main], variables: [$B]}}\n")
	f.Fuzz(func(t *testing.T, src string) {
		opts := branchPush("main", Variable{Key: "A", Value: "1"})
		p, err := ParseWith([]byte(src), opts)
		if err != nil {
			return
		}
		for _, j := range p.Jobs {
			if j.When == "never" || j.excluded != "" {
				t.Fatalf("job %q excluded but listed", j.Name)
			}
		}
	})
}

// TestRetryAndDotenv follows ci/yaml "retry" (a number or max/when/
// exit_codes, default: inherited) and "artifacts:reports:dotenv".
func TestRetryAndDotenv(t *testing.T) {
	src := `
default:
  retry: 1
a:
  script: x
b:
  retry: {max: 2, when: [script_failure, stuck_or_timeout_failure], exit_codes: [1, 137]}
  script: x
  artifacts:
    reports:
      dotenv: [build.env, more.env]
c:
  retry: 0
  script: x
  artifacts: {reports: {dotenv: deploy.env}, paths: [out/]}
`
	p := mustParse(t, src)
	assertEqual(t, "a.Retry.Max", getJob(t, p, "a").Retry.Max, 1)
	b := getJob(t, p, "b")
	if b.Retry.Max != 2 || !slices.Equal(b.Retry.When, []string{"script_failure", "stuck_or_timeout_failure"}) || !slices.Equal(b.Retry.ExitCodes, []int{1, 137}) {
		t.Errorf("b.Retry = %+v", b.Retry)
	}
	if b.Artifacts == nil || !slices.Equal(b.Artifacts.Dotenv, []string{"build.env", "more.env"}) || len(b.Artifacts.Paths) != 0 {
		t.Errorf("b.Artifacts = %+v", b.Artifacts)
	}
	c := getJob(t, p, "c")
	assertEqual(t, "c.Retry.Max", c.Retry.Max, 0)
	assertStrings(t, "c.Dotenv", c.Artifacts.Dotenv, []string{"deploy.env"})
	for _, tt := range []struct{ src, want string }{
		{"a:\n  retry: 3\n  script: x\n", `.gitlab-ci.yml:2: job "a": retry must be 0, 1 or 2`},
		{"a:\n  retry: {when: [sometimes]}\n  script: x\n", `.gitlab-ci.yml:2: job "a": retry:when: unknown failure kind "sometimes"`},
		{"a:\n  retry: {tries: 1}\n  script: x\n", `.gitlab-ci.yml:2: job "a": retry: unknown keyword "tries"`},
	} {
		assertEqual(t, "error", parseErr(t, tt.src), tt.want)
	}
}
