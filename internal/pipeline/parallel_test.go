package pipeline

import (
	"strings"
	"testing"
)

// TestParallel follows ci/yaml "parallel" and "parallel:matrix" (job
// names "job 1/3" and "job: [a, b]", the order of combinations, matrix
// variables in rules) and "needs:parallel:matrix".
func TestParallel(t *testing.T) {
	src := `
stages: [build, test, deploy]
build:
  stage: build
  parallel:
    matrix:
      - PROVIDER: aws
        STACK: [monitoring, app1]
      - PROVIDER: [gcp, vultr]
        STACK: data
  variables: {STACK: default, OTHER: x}
  script: [echo $PROVIDER $STACK]
shards:
  stage: test
  parallel: 3
  script: [echo $CI_NODE_INDEX]
only-aws:
  stage: test
  parallel:
    matrix:
      - PROVIDER: [aws, gcp]
  rules:
    - if: $PROVIDER == "aws"
  script: x
all-builds:
  stage: deploy
  needs: [build]
  script: x
aws-app:
  stage: deploy
  needs:
    - job: build
      parallel:
        matrix:
          - PROVIDER: aws
            STACK: app1
  script: x
all-shards:
  stage: deploy
  dependencies: [shards]
  script: x
`
	p := mustParse(t, src)
	assertStrings(t, "Jobs", jobNames(p.Jobs), []string{
		"build: [aws, monitoring]", "build: [aws, app1]", "build: [gcp, data]", "build: [vultr, data]",
		"shards 1/3", "shards 2/3", "shards 3/3", "only-aws: [aws]",
		"all-builds", "aws-app", "all-shards",
	})
	b := getJob(t, p, "build: [gcp, data]")
	assertEqual(t, "NodeIndex", b.NodeIndex, 3)
	assertEqual(t, "NodeTotal", b.NodeTotal, 4)
	assertEqual(t, "Parallel", b.Parallel, "build")
	for k, want := range map[string]string{"PROVIDER": "gcp", "STACK": "data", "OTHER": "x"} {
		if got, _ := varValue(b, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	s := getJob(t, p, "shards 2/3")
	assertEqual(t, "shards 2/3 index", s.NodeIndex, 2)
	assertStrings(t, "all-builds.Needs", getJob(t, p, "all-builds").Needs,
		[]string{"build: [aws, monitoring]", "build: [aws, app1]", "build: [gcp, data]", "build: [vultr, data]"})
	assertStrings(t, "aws-app.Needs", getJob(t, p, "aws-app").Needs, []string{"build: [aws, app1]"})
	assertStrings(t, "all-shards.Dependencies", getJob(t, p, "all-shards").Dependencies, []string{"shards 1/3", "shards 2/3", "shards 3/3"})

	sel, err := p.Select("shards")
	if err != nil {
		t.Fatal(err)
	}
	assertStrings(t, "Select(shards)", jobNames(sel), []string{"shards 1/3", "shards 2/3", "shards 3/3"})
	sel, err = p.Select("aws-app")
	if err != nil {
		t.Fatal(err)
	}
	assertStrings(t, "Select(aws-app)", jobNames(sel), []string{"build: [aws, app1]", "aws-app"})

	errs := []struct{ name, src, want string }{
		{"too many", "a:\n  parallel: 201\n  script: x\n", `.gitlab-ci.yml:2: job "a": parallel must be a number from 1 to 200`},
		{"bad matrix", "a:\n  parallel: {matrix: [x]}\n  script: x\n", `.gitlab-ci.yml:2: job "a": parallel:matrix: each entry must be a map of variables to values`},
		{"matrix too large", "a:\n  parallel:\n    matrix:\n      - A: [" + strings.Repeat("x,", 20) + "x]\n        B: [" + strings.Repeat("y,", 10) + "y]\n  script: x\n",
			`.gitlab-ci.yml:4: job "a": parallel:matrix makes more than 200 jobs`},
		{"no matching instance", "a:\n  stage: build\n  parallel: {matrix: [{V: [1, 2]}]}\n  script: x\nb:\n  needs: [{job: a, parallel: {matrix: [{V: '3'}]}}]\n  script: x\n",
			`.gitlab-ci.yml:6: job "b": needs "a" with parallel:matrix values that none of its jobs has`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			assertEqual(t, "error", parseErr(t, tt.src), tt.want)
		})
	}
}
