package main

import (
	"archive/zip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExec(t *testing.T) {
	modules := guestsDir(t, "probe")
	arts := filepath.Join(t.TempDir(), "artifacts")
	file := filepath.Join("..", "..", "testdata", "pipelines", "probe.gitlab-ci.yml")
	code, out, errOut := runCLI(t, context.Background(), "--log-format", "json", "exec", "--modules", modules, "--file", file,
		"--artifacts-dir", arts, "--masked-var", "SECRET=hunter2-long-secret")
	if code != exitFailure {
		t.Errorf("exit %d, want %d (a job fails)\n%s\n%s", code, exitFailure, out, errOut)
	}
	for _, want := range []string{
		`WARNING: job "broken": keyword "cache" is not supported; ignored`,
		"building\nhello from the pipeline\n[MASKED]\n",
		// The test job lists its first dependency's files: the project's
		// (each job starts with them, as from a checkout).
		"testdata/pipelines/probe.gitlab-ci.yml",
		"tested",
		"about to fail",
		"ERROR: Job failed: exit code 7",
		`Skipping job "never": "broken" failed`,
		"notifying about the failure",
		"always runs",
		"[allowed to fail]",
		"2 job(s) did not succeed",
	} {
		if !strings.Contains(out+errOut, want) {
			t.Errorf("output lacks %q:\n%s\n%s", want, out, errOut)
		}
	}
	if strings.Contains(out, "hunter2-long-secret") || strings.Contains(out, "must not run") {
		t.Errorf("output:\n%s", out)
	}
	zr, err := zip.OpenReader(filepath.Join(arts, "build", "out.zip"))
	if err != nil {
		t.Fatalf("build artifacts: %v", err)
	}
	defer zr.Close()
	if len(zr.File) != 1 || zr.File[0].Name != "out/wasm.txt" {
		t.Errorf("artifact entries: %v", zr.File)
	}
}

func TestExecSelectsJobsAndReportsErrors(t *testing.T) {
	modules := guestsDir(t, "probe")
	file := filepath.Join("..", "..", "testdata", "pipelines", "probe.gitlab-ci.yml")
	arts := t.TempDir()
	// Only "test" and what it needs.
	code, out, errOut := runCLI(t, context.Background(), "exec", "--modules", modules, "--file", file, "--artifacts-dir", arts, "test")
	if code != exitOK || !strings.Contains(out, "tested") || strings.Contains(out, "about to fail") {
		t.Errorf("exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, context.Background(), "exec", "--modules", modules, "--file", file, "nope"); code != exitUsage || !strings.Contains(errOut, "nope") {
		t.Errorf("unknown job: exit %d %s", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("job:\n  script: [\n"), 0o644)
	if code, _, errOut := runCLI(t, context.Background(), "exec", "--modules", modules, "--file", bad); code != exitFailure || !strings.Contains(errOut, "bad.yml") {
		t.Errorf("bad yaml: exit %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, context.Background(), "exec", "--modules", modules, "--file", file, "--var", "NOEQUALS"); code != exitUsage || !strings.Contains(errOut, "KEY=VALUE") {
		t.Errorf("bad --var: exit %d %s", code, errOut)
	}
}

// TestExecExamplePipeline runs the README's main-job command: the example
// pipeline with the committed shell handler.
func TestExecExamplePipeline(t *testing.T) {
	arts := t.TempDir()
	code, out, errOut := runCLI(t, context.Background(), "exec", "--modules", filepath.Join("..", "..", "examples", "modules"),
		"--file", filepath.Join("..", "..", "examples", "pipeline", ".gitlab-ci.yml"), "--artifacts-dir", arts)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"hello from wasmrunner", "numbers are here", "5 dist/numbers.txt", "test finished with status success", "pipeline ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	for _, f := range []string{"build/dist.zip", "report/artifacts.zip"} {
		if _, err := os.Stat(filepath.Join(arts, f)); err != nil {
			t.Errorf("artifact %s: %v", f, err)
		}
	}
}

// writePipeline writes a .gitlab-ci.yml into a new directory (outside any
// git repository: the pipeline runs for branch main) and returns its path.
func writePipeline(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, ".gitlab-ci.yml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestExecRulesAndVariables: rules, workflow:rules, manual jobs, variable
// expansion and predefined variables, with the shell handler (docs:
// ci/jobs/job_rules, ci/yaml "workflow", ci/variables/predefined_variables).
func TestExecRulesAndVariables(t *testing.T) {
	file := writePipeline(t, `
workflow:
  name: 'pipeline on $CI_COMMIT_BRANCH'
  rules:
    - if: $CI_PIPELINE_SOURCE == "schedule"
      variables: {KIND: nightly}
    - if: $CI_COMMIT_BRANCH
variables:
  BASE: /opt
  DERIVED: ${BASE}/bin
  KIND: normal
  PRICE: "$$5"
show:
  script:
    - echo "derived=$DERIVED price=$PRICE kind=$KIND branch=$CI_COMMIT_BRANCH status=$CI_JOB_STATUS ci=$GITLAB_CI name=$CI_PIPELINE_NAME"
only-nightly:
  rules:
    - if: $KIND == "nightly"
  script: [echo nightly job ran]
deploy:
  stage: deploy
  when: manual
  script: [echo deployed]
`)
	modules := filepath.Join("..", "..", "examples", "modules")
	arts := t.TempDir()
	code, out, errOut := runCLI(t, context.Background(), "exec", "--modules", modules, "--file", file, "--artifacts-dir", arts)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"derived=/opt/bin price=$5 kind=normal branch=main status=running ci=true name=pipeline on main\n",
		`Skipping job "deploy": it is a manual job`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "nightly job ran") || strings.Contains(out, "deployed") {
		t.Errorf("a job ran that should not:\n%s", out)
	}
	// Not a terminal: no colours, no section markers, the operator log
	// (stderr) only says what goes wrong.
	if strings.Contains(out, "\x1b[") || strings.Contains(out, "section_start") || strings.Contains(errOut, "job started") {
		t.Errorf("colours, section markers or info logs:\n%q\n%s", out, errOut)
	}

	code, out, errOut = runCLI(t, context.Background(), "exec", "--modules", modules, "--file", file, "--artifacts-dir", arts,
		"--pipeline-source", "schedule", "--manual")
	if code != exitOK || !strings.Contains(out, "kind=nightly") || !strings.Contains(out, "nightly job ran") || !strings.Contains(out, "deployed") {
		t.Errorf("schedule: exit %d\n%s\n%s", code, out, errOut)
	}

	code, out, _ = runCLI(t, context.Background(), "exec", "--modules", modules, "--file", file, "--list", "--pipeline-source", "schedule")
	if code != exitOK || !strings.Contains(out, "only-nightly") || !strings.Contains(out, "manual, allow_failure") {
		t.Errorf("--list: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, context.Background(), "exec", "--modules", modules, "--file", file, "--print-variables", "show",
		"--masked-var", "TOKEN=secret-value-123")
	for _, want := range []string{"DERIVED=/opt/bin\n", "PRICE=\"$5\"\n", "CI_JOB_NAME=show\n", "TOKEN=[MASKED]\n", "CI_PIPELINE_SOURCE=push\n"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("--print-variables: exit %d, lacks %q\n%s", code, want, out)
		}
	}

	filtered := writePipeline(t, "workflow:\n  rules: [{if: $CI_COMMIT_TAG}]\njob:\n  script: [echo x]\n")
	code, _, errOut = runCLI(t, context.Background(), "exec", "--modules", modules, "--file", filtered)
	if code != exitFailure || !strings.Contains(errOut, "workflow:rules: no rule matches: the pipeline is not created") {
		t.Errorf("filtered: exit %d %s", code, errOut)
	}
}

// TestExecReceivedFilesAreTheJobsOwn: exec gives jobs the files of their
// dependencies (and the project's) as hard links to one extracted copy;
// a job that changes them changes its own copy, never what the other
// jobs receive nor the project's working tree.
func TestExecReceivedFilesAreTheJobsOwn(t *testing.T) {
	dir := t.TempDir()
	pipeline := `stages: [make, use, check]
default:
  image: shell
make:
  stage: make
  script: [mkdir -p d, echo original > d/f.txt, echo original > g.txt]
  artifacts: {paths: [d/, g.txt]}
modify:
  stage: use
  script:
    - echo changed >> d/f.txt
    - echo changed > g.txt
    - echo changed >> proj.txt
    - echo "modify sees $(cat d/f.txt g.txt proj.txt | tr '\n' ' ')"
read:
  stage: use
  script: [echo "read sees $(cat d/f.txt g.txt proj.txt | tr '\n' ' ')"]
check:
  stage: check
  script: [echo "check sees $(cat d/f.txt g.txt proj.txt | tr '\n' ' ')"]
`
	if err := os.WriteFile(filepath.Join(dir, ".gitlab-ci.yml"), []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "proj.txt"), []byte("project\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, context.Background(), "exec", "--modules", filepath.Join("..", "..", "examples", "modules"),
		"--file", filepath.Join(dir, ".gitlab-ci.yml"), "--artifacts-dir", filepath.Join(t.TempDir(), "a"), "--concurrency", "1")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"modify sees original changed changed project changed ",
		"read sees original original project ",
		"check sees original original project ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "proj.txt")); string(data) != "project\n" {
		t.Errorf("the project's file changed: %q", data)
	}
}
