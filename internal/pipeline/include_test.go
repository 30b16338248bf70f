package pipeline

import (
	"strings"
	"testing"
	"testing/fstest"
)

// TestInclude follows ci/yaml "include", "include:local" (wildcards,
// nested includes, "Override included configuration values": the
// including file wins, maps are merged, other values replaced) and
// "include:rules"; extends: and !reference work across files. Jobs keep
// the order of the merged configuration: included files first.
func TestInclude(t *testing.T) {
	project := fstest.MapFS{
		"ci/base.yml": {Data: []byte(`
include: ci/nested/more.yml
variables:
  FROM_BASE: base
  OVERRIDDEN: base
.template:
  stage: build
  script: [echo template]
  variables: {T: t}
base-job:
  script: [echo base]
  variables: {A: base, B: base}
`)},
		"ci/nested/more.yml": {Data: []byte(`
.more:
  script: [echo more]
nested-job:
  script: !reference [.more, script]
`)},
		"ci/jobs/one.yml": {Data: []byte("one:\n  script: [echo one]\n")},
		"ci/jobs/two.yml": {Data: []byte("two:\n  script: [echo two]\n")},
		"ci/cond.yml":     {Data: []byte("conditional:\n  script: [echo cond]\n")},
		"ci/empty.yml":    {Data: []byte("")},
	}
	src := `
include:
  - ci/base.yml
  - local: /ci/jobs/*.yml
  - local: ci/cond.yml
    rules:
      - if: $CI_COMMIT_BRANCH == "main"
  - local: ci/empty.yml
variables:
  OVERRIDDEN: main
base-job:
  variables: {B: main}
from-template:
  extends: .template
`
	opts := branchPush("feature")
	opts.Project = project
	p := parseOpts(t, src, opts)
	assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"from-template", "nested-job", "base-job", "one", "two"})
	bj := getJob(t, p, "base-job")
	for k, want := range map[string]string{"A": "base", "B": "main", "OVERRIDDEN": "main", "FROM_BASE": "base"} {
		if got, _ := varValue(bj, k); got != want {
			t.Errorf("base-job %s = %q, want %q", k, got, want)
		}
	}
	assertStrings(t, "base-job.Script", bj.Script, []string{"echo base"})
	ft := getJob(t, p, "from-template")
	assertEqual(t, "from-template.Stage", ft.Stage, "build")
	assertStrings(t, "nested-job.Script", getJob(t, p, "nested-job").Script, []string{"echo more"})

	opts = branchPush("main")
	opts.Project = project
	p = parseOpts(t, src, opts)
	if _, err := p.Select("conditional"); err != nil {
		t.Errorf("include:rules on main: %v", err)
	}

	errs := []struct{ name, src, want string }{
		{"missing", "include: ci/nope.yml\njob: {script: x}\n", ".gitlab-ci.yml:1: include: local file `/ci/nope.yml` does not exist"},
		{"remote", "include: https://example.com/ci.yml\njob: {script: x}\n", `.gitlab-ci.yml:1: include: remote file "https://example.com/ci.yml": include:remote is not supported by wasmrunner exec (only local files are read)`},
		{"project", "include: {project: group/p, file: ci.yml}\njob: {script: x}\n", ".gitlab-ci.yml:1: include: include:project (group/p) is not supported by wasmrunner exec: only local files of the project are read"},
		{"template", "include: {template: Auto-DevOps.gitlab-ci.yml}\njob: {script: x}\n", ".gitlab-ci.yml:1: include: include:template (Auto-DevOps.gitlab-ci.yml) is not supported by wasmrunner exec: only local files of the project are read"},
		{"component", "include: [{component: x/y@1}]\njob: {script: x}\n", ".gitlab-ci.yml:1: include: include:component (x/y@1) is not supported by wasmrunner exec: only local files of the project are read"},
		{"extension", "include: ci/base.txt\njob: {script: x}\n", ".gitlab-ci.yml:1: include: local file `ci/base.txt` does not have a valid YAML extension (.yml or .yaml)"},
		{"error in included file", "include: ci/bad.yml\njob: {script: x}\n", "ci/bad.yml:2: job \"bad\": unknown keyword \"scirpt\""},
		{"yaml error in included file", "include: ci/broken.yml\njob: {script: x}\n", "ci/broken.yml:1: invalid YAML"},
	}
	project["ci/bad.yml"] = &fstest.MapFile{Data: []byte("bad:\n  scirpt: x\n  script: x\n")}
	project["ci/broken.yml"] = &fstest.MapFile{Data: []byte("a: [\n")}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			opts := branchPush("main")
			opts.Project = project
			_, err := ParseWith([]byte(tt.src), opts)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v\nwant    %s", err, tt.want)
			}
		})
	}
	t.Run("included twice, and a cycle", func(t *testing.T) {
		fsys := fstest.MapFS{
			"a.yml": {Data: []byte("include: b.yml\na: {script: x}\n")},
			"b.yml": {Data: []byte("include: a.yml\nb: {script: x}\n")},
		}
		opts := branchPush("main")
		opts.Project = fsys
		p := parseOpts(t, "include: [a.yml, b.yml, a.yml]\nmain: {script: x}\n", opts)
		assertStrings(t, "Jobs", jobNames(p.Jobs), []string{"b", "a", "main"})
	})
}

func FuzzInclude(f *testing.F) {
	f.Add("include: [a.yml, {local: 'c/*.yml'}]\nj: {script: !reference [.x, script]}\n", "a.yml\n.x: {script: [y]}\n")
	f.Fuzz(func(t *testing.T, main, included string) {
		name, content, _ := strings.Cut(included, "\n")
		opts := branchPush("main")
		opts.Project = fstest.MapFS{name: {Data: []byte(content)}, "c/d.yml": {Data: []byte("include: a.yml\n")}}
		_, _ = ParseWith([]byte(main), opts)
	})
}
