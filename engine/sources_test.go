package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// sourcesHandler wants sources when want is set, within the limits given,
// and lists its build dir's files in the log, reading README.
func sourcesHandler(want bool, disk, files int64) engine.HandlerFactory {
	return func(_ context.Context, job *engine.Job) (engine.Handler, error) {
		if want {
			job.WantSources()
		}
		if disk > 0 || files > 0 {
			job.LimitBuildDir(resource.NewPool("the disk limit of 1KiB (limits.disk)", disk, nil),
				resource.NewPool("the limit of 100 files and directories (limits.files)", files, nil))
		}
		return &funcHandler{job: job, step: func(_ context.Context, job *engine.Job, _ []string, _ engine.Phase) error {
			entries, _ := os.ReadDir(job.BuildDir())
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			job.Printf("files: %s", strings.Join(names, " "))
			if data, err := os.ReadFile(filepath.Join(job.BuildDir(), "README")); err == nil {
				job.Printf("README: %s", data)
			}
			return nil
		}}, nil
	}
}

func TestSources(t *testing.T) {
	h := newHarness(t, sourcesHandler(true, 1024, 100), nil)
	h.start()
	repo := h.srv.NewRepo(7, "group/app")
	sha := repo.Commit("main", "first", gitlabtest.Text("README", "hello from git"), gitlabtest.Symlink("up", "../../.."))

	rec := h.wait(h.srv.Enqueue(gitlabtest.NewJob("build").Sources(repo, "main").
		Artifacts(gitlab.ArtifactSpec{Paths: []string{"README", "up"}})))
	trace := string(rec.Trace)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("%s %s\n%s", rec.State, rec.FailureReason, trace)
	}
	for _, want := range []string{
		"section_start:", ":get_sources\r\x1b[0K\x1b[36;1mGetting source from Git repository",
		"Fetching changes with git depth set to 20...",
		"Checking out " + sha[:8] + " as detached HEAD (ref is main)...",
		"Skipping Git submodules setup", "section_end:", ":get_sources\r",
		"files: README up", "README: hello from git",
	} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
	if strings.Contains(trace, rec.Token) {
		t.Error("the job token is in the trace")
	}
	// The link is uploaded as a link, never followed.
	files, err := rec.Artifacts[0].ZipFiles()
	if err != nil || string(files["README"]) != "hello from git" || string(files["up"]) != "../../.." {
		t.Errorf("artifacts %v %v", files, err)
	}
	// The cache lives in the builds dir and outlives the job.
	if _, err := os.Stat(filepath.Join(h.cfg.BuildsDir, ".sources", "project-7", "repo.git")); err != nil {
		t.Error(err)
	}
}

func TestSourcesFailures(t *testing.T) {
	h := newHarness(t, sourcesHandler(true, 1024, 100), nil)
	h.start()
	repo := h.srv.NewRepo(7, "group/app")
	repo.Commit("main", "big", gitlabtest.Text("big", strings.Repeat("x", 2048)))
	for _, c := range []struct {
		job  *gitlabtest.JobBuilder
		want string
	}{
		{gitlabtest.NewJob("missing").Sources(repo, "nope"), "fatal: couldn't find remote ref refs/heads/nope"},
		{gitlabtest.NewJob("big").Sources(repo, "main"), "the disk limit of 1KiB (limits.disk) is used up"},
		{gitlabtest.NewJob("auth").Sources(repo, "main").Raw(func(j *gitlab.Job) {
			j.GitInfo.RepoURL = strings.Replace(j.GitInfo.RepoURL, j.Token, "glcbt-notthetoken", 1)
		}), "fatal: Authentication failed for '" + repo.URL() + "/'"},
	} {
		rec := h.wait(h.srv.Enqueue(c.job))
		trace := string(rec.Trace)
		if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.ScriptFailure || rec.ExitCode != 1 ||
			!strings.Contains(trace, c.want) || !strings.Contains(trace, "ERROR: Job failed: exit code 1") {
			t.Errorf("%s: %s %s %d, want script_failure exit 1 with %q:\n%s", rec.Name, rec.State, rec.FailureReason, rec.ExitCode, c.want, trace)
		}
		if strings.Contains(trace, "files:") {
			t.Errorf("%s: the script ran", rec.Name)
		}
		if strings.Contains(trace, rec.Token) || strings.Contains(trace, "glcbt-notthetoken") {
			t.Errorf("%s: a token is in the trace:\n%s", rec.Name, trace)
		}
	}
}

// TestNoSourcesByDefault: a handler that does not ask for sources gets an
// empty build dir and no git request is made.
func TestNoSourcesByDefault(t *testing.T) {
	h := newHarness(t, sourcesHandler(false, 0, 0), nil)
	h.start()
	repo := h.srv.NewRepo(7, "group/app")
	repo.Commit("main", "first", gitlabtest.Text("README", "hello"))
	rec := h.wait(h.srv.Enqueue(gitlabtest.NewJob("build").Sources(repo, "main")))
	if rec.State != gitlab.StateSuccess || strings.Contains(string(rec.Trace), "get_sources") || !strings.Contains(string(rec.Trace), "files: \n") {
		t.Errorf("%s\n%s", rec.State, rec.Trace)
	}
	if len(repo.Fetches()) != 0 {
		t.Errorf("fetches %v", repo.Fetches())
	}
}
