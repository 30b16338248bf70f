package handlertest_test

import (
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/handlertest"
)

// TestShellWithSources runs the shell handler with a manifest asking for
// sources, as `wasmrunner serve` runs it: the job's commit is in its build
// dir before the script, within limits.disk; links in the repository lead
// the guest nowhere outside; the job token never reaches the trace.
func TestShellWithSources(t *testing.T) {
	r := shell(t, handlertest.Manifest("[sources]\ncheckout = true\n[limits]\ndisk = \"64KiB\"\n"))
	repo := r.Server().NewRepo(7, "group/app")
	repo.Commit("main", "first",
		gitlabtest.Text("README.md", "# app\n"),
		gitlabtest.Text("src/main.txt", "line one\nline two\n"),
		gitlabtest.Symlink("passwd", "/etc/passwd"),
		gitlabtest.Symlink("up", "../../.."))
	sha := repo.Commit("main", "second", gitlabtest.Text("VERSION", "1.2.3\n"))
	lib := r.Server().NewRepo(8, "group/lib")
	libSha := lib.Commit("main", "lib", gitlabtest.Text("lib.txt", "from the submodule\n"))
	repo.Commit("sub", "with a submodule",
		gitlabtest.Text(".gitmodules", "[submodule \"lib\"]\n\tpath = lib\n\turl = ../lib.git\n"),
		gitlabtest.Submodule("lib", libSha))
	big := r.Server().NewRepo(9, "group/big")
	big.Commit("main", "big", gitlabtest.Text("big.bin", strings.Repeat("x", 100<<10)))

	t.Run("checkout", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, handlertest.Job{
			Script: []string{"ls", "cat VERSION src/main.txt", "wc -l src/main.txt", "cat passwd || echo no-passwd", "ls up || echo no-up"},
			Edit:   func(b *gitlabtest.JobBuilder) { b.Sources(repo, "main") },
		})
		if res.State != "success" {
			t.Fatalf("%s\n%s", res.State, res.Log)
		}
		for _, want := range []string{
			"Getting source from Git repository", "Fetching changes with git depth set to 20...",
			"Checking out " + sha[:8] + " as detached HEAD (ref is main)...",
			"README.md\nVERSION\npasswd\nsrc\nup\n", "1.2.3\nline one\nline two\n", "2 src/main.txt", "no-passwd",
		} {
			if !strings.Contains(res.Log, want) {
				t.Errorf("log lacks %q:\n%s", want, res.Log)
			}
		}
		if strings.Contains(res.Log, "root:") {
			t.Errorf("the guest read the host's /etc/passwd:\n%s", res.Log)
		}
	})
	t.Run("submodules", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, handlertest.Job{
			Script:    []string{"cat lib/lib.txt"},
			Variables: []handlertest.Variable{handlertest.Var("GIT_SUBMODULE_STRATEGY", "recursive")},
			Edit:      func(b *gitlabtest.JobBuilder) { b.Sources(repo, "sub") },
		})
		if res.State != "success" || !strings.Contains(res.Log, "from the submodule") {
			t.Errorf("%s\n%s", res.State, res.Log)
		}
	})
	t.Run("none", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, handlertest.Job{
			Script:    []string{"ls", "echo listed"},
			Variables: []handlertest.Variable{handlertest.Var("GIT_STRATEGY", "none")},
			Edit:      func(b *gitlabtest.JobBuilder) { b.Sources(repo, "main") },
		})
		if res.State != "success" || !strings.Contains(res.Log, "Skipping Git repository setup") || strings.Contains(res.Log, "README.md") {
			t.Errorf("%s\n%s", res.State, res.Log)
		}
	})
	t.Run("disk limit", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, handlertest.Job{
			Script: []string{"echo never"},
			Edit:   func(b *gitlabtest.JobBuilder) { b.Sources(big, "main") },
		})
		if res.State != "failed" || res.FailureReason != "script_failure" ||
			!strings.Contains(res.Log, "the disk limit of 64KiB (limits.disk) is used up") || strings.Contains(res.Log, "\nnever") {
			t.Errorf("%s %s\n%s", res.State, res.FailureReason, res.Log)
		}
	})
	t.Run("token never in the trace", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, handlertest.Job{
			Edit: func(b *gitlabtest.JobBuilder) {
				b.Sources(repo, "main").Var("GIT_STRATEGY", "clone")
			},
		})
		for _, rec := range r.Server().Jobs() {
			if rec.Token != "" && strings.Contains(string(rec.Trace), rec.Token) {
				t.Errorf("job %d's token is in its trace", rec.ID)
			}
		}
		if res.State != "success" {
			t.Errorf("%s\n%s", res.State, res.Log)
		}
	})
}
