package gitlabtest_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"

	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// fetch fetches specs of url into a new in-memory repository.
func fetch(url string, auth transport.AuthMethod, depth int, specs ...string) (*git.Repository, error) {
	repo, err := git.Init(memory.NewStorage(), nil)
	if err != nil {
		return nil, err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		return nil, err
	}
	var rs []config.RefSpec
	for _, s := range specs {
		rs = append(rs, config.RefSpec(s))
	}
	err = repo.Fetch(&git.FetchOptions{RemoteURL: url, Auth: auth, Depth: depth, RefSpecs: rs, Tags: git.NoTags})
	return repo, err
}

func commits(t *testing.T, repo *git.Repository, from string) int {
	t.Helper()
	c, err := repo.CommitObject(plumbing.NewHash(from))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	iter := object.NewCommitPreorderIter(c, nil, nil)
	_ = iter.ForEach(func(*object.Commit) error { n++; return nil })
	return n
}

func TestGitRepo(t *testing.T) {
	c := newTC(t)
	repo := c.s.NewRepo(7, "group/app")
	c.s.NewRepo(8, "group/other")
	first := repo.Commit("main", "first", gitlabtest.Text("README", "hello\n"), gitlabtest.Text("dir/a.txt", "a"))
	var tip string
	for i := range 5 {
		tip = repo.Commit("main", "more", gitlabtest.Text("dir/b.txt", strings.Repeat("b", i)))
	}
	repo.Tag("v1", first)
	repo.SetRef("refs/merge-requests/1/head", first)

	id := c.s.Enqueue(gitlabtest.NewJob("build").Sources(repo, "main"))
	job := c.mustJob()
	if job.ID != id || job.GitInfo.Sha != tip || job.GitInfo.Ref != "main" || job.GitInfo.RefType != "branch" ||
		job.JobInfo.ProjectID != 7 || job.GitInfo.Refspecs[0] != "+refs/heads/main:refs/remotes/origin/main" {
		t.Fatalf("git_info %+v, job_info %+v", job.GitInfo, job.JobInfo)
	}
	if want := "gitlab-ci-token:" + job.Token + "@"; !strings.Contains(job.GitInfo.RepoURL, want) {
		t.Fatalf("repo_url %s lacks the job token", job.GitInfo.RepoURL)
	}
	auth := &githttp.BasicAuth{Username: "gitlab-ci-token", Password: job.Token}

	t.Run("full", func(t *testing.T) {
		r, err := fetch(repo.URL(), auth, 0, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*")
		if err != nil {
			t.Fatal(err)
		}
		if n := commits(t, r, tip); n != 6 {
			t.Errorf("%d commits, want 6", n)
		}
		c, _ := r.CommitObject(plumbing.NewHash(tip))
		f, err := c.File("README")
		if err != nil {
			t.Fatal(err)
		}
		if s, _ := f.Contents(); s != "hello\n" {
			t.Errorf("README = %q", s)
		}
		if ref, err := r.Reference("refs/tags/v1", false); err != nil || ref.Hash().String() != first {
			t.Errorf("tag v1: %v %v", ref, err)
		}
	})
	t.Run("shallow then deeper", func(t *testing.T) {
		r, err := fetch(repo.URL(), auth, 2, "+refs/heads/main:refs/remotes/origin/main")
		if err != nil {
			t.Fatal(err)
		}
		if n := commits(t, r, tip); n != 2 {
			t.Errorf("%d commits with depth 2", n)
		}
		newTip := repo.Commit("main", "newer", gitlabtest.Text("c.txt", "c"))
		defer func() { _ = newTip }()
		err = r.Fetch(&git.FetchOptions{RemoteURL: repo.URL(), Auth: auth, Depth: 2, Tags: git.NoTags,
			RefSpecs: []config.RefSpec{"+refs/heads/main:refs/remotes/origin/main"}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := r.CommitObject(plumbing.NewHash(newTip))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.File("c.txt"); err != nil {
			t.Error(err)
		}
		if _, err := c.File("README"); err != nil {
			t.Error(err)
		}
	})
	t.Run("merge request ref", func(t *testing.T) {
		r, err := fetch(repo.URL(), auth, 1, "+refs/merge-requests/1/head:refs/merge-requests/1/head")
		if err != nil {
			t.Fatal(err)
		}
		if ref, err := r.Reference("refs/merge-requests/1/head", false); err != nil || ref.Hash().String() != first {
			t.Errorf("%v %v", ref, err)
		}
	})
	t.Run("auth", func(t *testing.T) {
		for _, a := range []transport.AuthMethod{nil, &githttp.BasicAuth{Username: "gitlab-ci-token", Password: "glcbt-wrong"}} {
			_, err := fetch(repo.URL(), a, 1, "+refs/heads/main:refs/remotes/origin/main")
			if !errors.Is(err, transport.ErrAuthenticationRequired) {
				t.Errorf("auth %v: %v, want authentication required", a, err)
			}
		}
		repo.SetPublic(true)
		defer repo.SetPublic(false)
		if _, err := fetch(repo.URL(), nil, 1, "+refs/heads/main:refs/remotes/origin/main"); err != nil {
			t.Errorf("public, anonymous: %v", err)
		}
		last := repo.Fetches()[len(repo.Fetches())-1]
		if last.User != "" || last.Status != http.StatusOK {
			t.Errorf("last fetch %+v", last)
		}
	})
	t.Run("missing ref", func(t *testing.T) {
		_, err := fetch(repo.URL(), auth, 1, "+refs/heads/nope:refs/remotes/origin/nope")
		if err == nil || !strings.Contains(err.Error(), "couldn't find remote ref") {
			t.Errorf("%v", err)
		}
	})
	t.Run("faults", func(t *testing.T) {
		c.s.FailNext(gitlabtest.EndpointGitInfoRefs, http.StatusInternalServerError, 1)
		if _, err := fetch(repo.URL(), auth, 1, "+refs/heads/main:refs/remotes/origin/main"); err == nil {
			t.Error("no error from an injected 500")
		}
	})
	// The job ends: its token no longer reads the repository.
	c.finish(job.ID, job.Token, "success", "")
	if _, err := fetch(repo.URL(), auth, 1, "+refs/heads/main:refs/remotes/origin/main"); !errors.Is(err, transport.ErrAuthenticationRequired) {
		t.Errorf("finished job's token: %v", err)
	}
}
