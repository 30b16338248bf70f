package shell_test

import (
	"context"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/handlertest"
	"github.com/wasmrunner/wasmrunner/internal/pipeline"
)

// projectDir is a small shell tool's repository: its .gitlab-ci.yml
// lints, tests, packages and verifies it with shell utilities only.
const projectDir = "testdata/project"

// projectFiles reads the project's files as commit contents.
func projectFiles(t *testing.T) []gitlabtest.File {
	t.Helper()
	var files []gitlabtest.File
	err := filepath.WalkDir(projectDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(projectDir, path)
		files = append(files, gitlabtest.Text(filepath.ToSlash(rel), string(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// runPipeline runs the jobs of the project's .gitlab-ci.yml stage by
// stage, as GitLab would hand them out, on the commit at ref of repo: each
// job with the repository checked out (the handler's manifest asks for
// sources) and the artifacts of the jobs before it. It returns each job's
// result, stopping after the first stage with a failure.
func runPipeline(t *testing.T, r *handlertest.Runner, repo *gitlabtest.Repo, ref string) map[string]*handlertest.Result {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(projectDir, ".gitlab-ci.yml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	results := map[string]*handlertest.Result{}
	var deps []handlertest.Dependency
	for _, stage := range p.Stages {
		var runs []*handlertest.JobRun
		var jobs []*pipeline.Job
		for _, j := range p.Jobs {
			if j.Stage != stage {
				continue
			}
			var vars []handlertest.Variable
			for _, v := range slices.Concat(p.Variables, j.Variables) {
				vars = append(vars, handlertest.Var(v.Key, v.Value))
			}
			job := handlertest.Job{
				Name: j.Name, Stage: j.Stage, Image: j.Image,
				Script: j.Script, AfterScript: j.AfterScript,
				Variables: vars, Dependencies: deps,
				Edit: func(b *gitlabtest.JobBuilder) { b.Sources(repo, ref) },
			}
			if j.Artifacts != nil {
				job.Artifacts = j.Artifacts.Paths
			}
			runs = append(runs, r.Start(job))
			jobs = append(jobs, j)
		}
		failed := false
		for i, run := range runs {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			res, err := run.Wait(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			results[jobs[i].Name] = res
			if res.State != gitlab.StateSuccess {
				failed = true
				continue
			}
			if len(res.Artifacts) > 0 {
				files := map[string]string{}
				for name, b := range res.Artifacts {
					files[name] = string(b)
				}
				deps = append(deps, handlertest.Dependency{Name: jobs[i].Name, Files: files})
			}
		}
		if failed {
			break
		}
	}
	return results
}

// TestShellProject is issue 12's done condition: a typical project whose
// .gitlab-ci.yml needs only shell utilities passes on wasmrunner, each job
// starting with the repository checked out (fetched over git's smart HTTP
// from the fake GitLab); and the same pipeline fails, as on GitLab, on a
// commit that breaks a test.
func TestShellProject(t *testing.T) {
	r := handlertest.Load(t, shellPath, handlertest.Manifest("[sources]\ncheckout = true\n"))
	repo := r.Server().NewRepo(21, "tools/greet")
	files := projectFiles(t)
	repo.Commit("main", "greet 0.3.1", files...)

	t.Run("passes", func(t *testing.T) {
		results := runPipeline(t, r, repo, "main")
		for _, name := range []string{"lint", "test", "build", "verify"} {
			res := results[name]
			if res == nil {
				t.Fatalf("job %s did not run", name)
			}
			if res.State != gitlab.StateSuccess {
				t.Errorf("job %s: %s %s exit %d\n%s", name, res.State, res.FailureReason, res.ExitCode, res.Log)
			}
		}
		for name, want := range map[string][]string{
			"lint":   {"Checking out ", "checking 5 scripts", "lint ok"},
			"test":   {"--- tests/test_greet.sh\ntest_greet: ok\n", "test_strings: ok\n", "failed: 0\n"},
			"build":  {"  ./greet-0.3.1/bin/greet\n", "  ./greet-0.3.1/lib/strings.sh\n"},
			"verify": {"./greet-0.3.1/bin/greet: OK\n", "./greet-0.3.1/README.md: OK\n", "\ngreet 0.3.1\n"},
		} {
			if res := results[name]; res != nil {
				for _, w := range want {
					if !strings.Contains(res.Log, w) {
						t.Errorf("job %s: log lacks %q:\n%s", name, w, res.Log)
					}
				}
			}
		}
		if build := results["build"]; build != nil {
			if got := string(build.Artifacts["dist/greet-0.3.1/lib/assert.sh"]); !strings.Contains(got, "assert_eq()") {
				t.Errorf("build artifacts: %v", slices.Sorted(maps.Keys(build.Artifacts)))
			}
		}
	})

	t.Run("a broken commit fails its test job", func(t *testing.T) {
		broken := slices.Clone(files)
		for i, f := range broken {
			if f.Path == "lib/strings.sh" {
				broken[i] = gitlabtest.Text(f.Path, strings.Replace(f.Content, "s/^-+//; ", "", 1))
			}
		}
		repo.Commit("broken", "slugify keeps leading dashes", broken...)
		results := runPipeline(t, r, repo, "broken")
		res := results["test"]
		if res == nil {
			t.Fatal("the test job did not run")
		}
		if res.State != gitlab.StateFailed || res.FailureReason != gitlab.ScriptFailure || res.ExitCode != 1 ||
			!strings.Contains(res.Log, "FAIL: assertion: expected [release-1-2], got [-release-1-2]") || !strings.Contains(res.Log, "failed: 1\n") {
			t.Errorf("test job: %s %s exit %d\n%s", res.State, res.FailureReason, res.ExitCode, res.Log)
		}
		if results["build"] != nil {
			t.Error("the build stage ran after a failed test stage")
		}
	})
}
