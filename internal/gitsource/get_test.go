package gitsource_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/gitsource"
)

// history makes a repository of project 7 with five commits on main, a
// tag v1 at the first, a branch feature and a merge request ref.
func history(e *env) (repo *gitlabtest.Repo, first, tip string) {
	repo = e.srv.NewRepo(7, "group/app")
	first = repo.Commit("main", "first", gitlabtest.Text("README.md", "# app\n"), gitlabtest.Executable("bin/run", "#!/bin/sh\n"))
	for i := range 4 {
		tip = repo.Commit("main", "more", gitlabtest.Text("log.txt", strings.Repeat("x", i+1)))
	}
	repo.Tag("v1", first)
	repo.Commit("feature", "feature", gitlabtest.Text("feature.txt", "f"))
	repo.SetRef("refs/merge-requests/1/head", repo.Commit("mr", "mr", gitlabtest.Text("mr.txt", "mr")))
	return repo, first, tip
}

// depthOf counts the commits of the cached repository of project 7 from
// sha.
func (e *env) depthOf(t *testing.T, sha string) int {
	t.Helper()
	r, err := git.PlainOpen(filepath.Join(e.cached, "project-7", "repo.git"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitObject(plumbing.NewHash(sha))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = object.NewCommitPreorderIter(c, nil, nil).ForEach(func(*object.Commit) error { n++; return nil })
	return n
}

func TestFetchReusesTheProjectCache(t *testing.T) {
	e := newEnv(t)
	repo, _, tip := history(e)
	r := e.get(e.take(gitlabtest.NewJob("a").Sources(repo, "main")), nil).must(t)
	contains(t, r.log,
		"Fetching changes with git depth set to 20...",
		"Initialized empty Git repository", "Created fresh repository.",
		"Checking out "+tip[:8]+" as detached HEAD (ref is main)...",
		"Skipping Git submodules setup")
	files := r.files(t)
	if files["README.md"] != "# app\n" || files["log.txt"] != "xxxx" || files["bin"] != "/" {
		t.Errorf("files %v", files)
	}
	if fi, err := os.Stat(filepath.Join(r.dir, "bin/run")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/run: %v %v", fi, err)
	}
	if bytes, entries := r.b.used(); bytes != int64(len("# app\n")+len("#!/bin/sh\n")+4) || entries != 4 {
		t.Errorf("charged %d bytes, %d entries; want the 3 files' bytes and 4 entries", bytes, entries)
	}
	if _, err := os.Stat(filepath.Join(r.dir, ".git")); !os.IsNotExist(err) {
		t.Errorf(".git in the build dir: %v", err)
	}

	// The next job of the project fetches what is new only.
	tip2 := repo.Commit("main", "next", gitlabtest.Text("new.txt", "new"))
	r2 := e.get(e.take(gitlabtest.NewJob("b").Sources(repo, "main")), nil).must(t)
	contains(t, r2.log, "Reinitialized existing Git repository", "Checking out "+tip2[:8])
	if strings.Contains(r2.log, "Created fresh repository.") {
		t.Error("the second job did not reuse the cache")
	}
	if r2.files(t)["new.txt"] != "new" {
		t.Error("new.txt missing")
	}
	// The cache keeps no credentials.
	cfg, err := os.ReadFile(filepath.Join(e.cached, "project-7", "repo.git", "config"))
	if err != nil || strings.Contains(string(cfg), "gitlab-ci-token") || !strings.Contains(string(cfg), repo.URL()) {
		t.Errorf("cache config %q %v", cfg, err)
	}
}

func TestCloneStrategy(t *testing.T) {
	e := newEnv(t)
	repo, _, tip := history(e)
	r := e.get(e.take(gitlabtest.NewJob("a").Sources(repo, "main").Var("GIT_STRATEGY", "clone")), nil).must(t)
	contains(t, r.log, "Created fresh repository.", "Checking out "+tip[:8])
	if _, err := os.Stat(filepath.Join(e.cached, "project-7")); !os.IsNotExist(err) {
		t.Errorf("a clone used the cache: %v", err)
	}
	// The clone's repository was charged while it existed, then given back.
	if bytes, _ := r.b.used(); bytes != int64(len("# app\n")+len("#!/bin/sh\n")+4) {
		t.Errorf("charged %d bytes after the clone", bytes)
	}
	// A payload that does not allow fetching clones by default.
	p := e.take(gitlabtest.NewJob("b").Sources(repo, "main").Raw(func(j *gitlab.Job) { j.AllowGitFetch = false }))
	e.get(p, nil).must(t)
	if _, err := os.Stat(filepath.Join(e.cached, "project-7")); !os.IsNotExist(err) {
		t.Errorf("allow_git_fetch false used the cache: %v", err)
	}
}

func TestNoneAndEmpty(t *testing.T) {
	e := newEnv(t)
	repo, _, _ := history(e)
	for strategy, line := range map[string]string{
		"none":  "Skipping Git repository setup\n",
		"empty": "Skipping Git repository setup and creating an empty build directory",
	} {
		r := e.get(e.take(gitlabtest.NewJob(strategy).Sources(repo, "main").Var("GIT_STRATEGY", strategy)), nil).must(t)
		contains(t, r.log, line, "Skipping Git checkout", "Skipping Git submodules setup")
		if len(r.files(t)) != 0 || len(repo.Fetches()) != 0 {
			t.Errorf("%s: files %v, fetches %v", strategy, r.files(t), repo.Fetches())
		}
	}
}

func TestDepth(t *testing.T) {
	e := newEnv(t)
	repo, _, tip := history(e)
	r := e.get(e.take(gitlabtest.NewJob("a").Sources(repo, "main").Var("GIT_DEPTH", "2")), nil).must(t)
	contains(t, r.log, "Fetching changes with git depth set to 2...")
	if n := e.depthOf(t, tip); n != 2 {
		t.Errorf("GIT_DEPTH=2: %d commits", n)
	}
	// The payload's depth when GIT_DEPTH is unset; 0 is the whole history,
	// which a shallow cache cannot give: it is made anew.
	r = e.get(e.take(gitlabtest.NewJob("b").Sources(repo, "main").Depth(0)), nil).must(t)
	contains(t, r.log, "Fetching changes...\n", "Created fresh repository.")
	if n := e.depthOf(t, tip); n != 5 {
		t.Errorf("depth 0: %d commits", n)
	}
	r = e.get(e.take(gitlabtest.NewJob("c").Sources(repo, "main").Depth(3)), nil).must(t)
	contains(t, r.log, "Fetching changes with git depth set to 3...", "Reinitialized existing Git repository")
}

func TestRefspecs(t *testing.T) {
	e := newEnv(t)
	repo, first, _ := history(e)
	cases := []struct {
		ref, refType, file string
		sha                string
	}{
		{"v1", "tag", "README.md", first},
		{"feature", "branch", "feature.txt", repo.Branch("feature")},
		{"refs/merge-requests/1/head", "branch", "mr.txt", repo.Branch("mr")},
	}
	for _, c := range cases {
		p := e.take(gitlabtest.NewJob(c.ref).Sources(repo, c.ref))
		if p.GitInfo.RefType != c.refType || p.GitInfo.Sha != c.sha {
			t.Fatalf("%s: git_info %+v", c.ref, p.GitInfo)
		}
		r := e.get(p, nil).must(t)
		contains(t, r.log, "Checking out "+c.sha[:8]+" as detached HEAD (ref is "+c.ref+")...")
		if _, ok := r.files(t)[c.file]; !ok {
			t.Errorf("%s: no %s in %v", c.ref, c.file, keys(r.files(t)))
		}
	}
	// Refspecs as GitLab sends them for a pipeline: several, with a
	// wildcard.
	p := e.take(gitlabtest.NewJob("wild").Sources(repo, "main").Refspecs("+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"))
	e.get(p, nil).must(t)
}

func TestCheckoutFalse(t *testing.T) {
	e := newEnv(t)
	repo, _, tip := history(e)
	r := e.get(e.take(gitlabtest.NewJob("a").Sources(repo, "main").Var("GIT_CHECKOUT", "false")), nil).must(t)
	contains(t, r.log, "Fetching changes", "Skipping Git checkout", "Skipping Git submodules setup")
	if len(r.files(t)) != 0 {
		t.Errorf("files %v", r.files(t))
	}
	if e.depthOf(t, tip) == 0 {
		t.Error("not fetched")
	}
}

func TestFailures(t *testing.T) {
	e := newEnv(t)
	repo, _, _ := history(e)
	cases := []struct {
		name string
		job  *gitlabtest.JobBuilder
		want string
	}{
		{"missing ref", gitlabtest.NewJob("a").Sources(repo, "nope"), "fatal: couldn't find remote ref refs/heads/nope"},
		{"missing sha", gitlabtest.NewJob("b").Sources(repo, "main").Commit(strings.Repeat("ab", 20)),
			"fatal: reference is not a tree: " + strings.Repeat("ab", 20)},
		{"auth", gitlabtest.NewJob("c").Sources(repo, "main").Raw(func(j *gitlab.Job) {
			j.GitInfo.RepoURL = strings.Replace(j.GitInfo.RepoURL, j.Token, j.Token+"x", 1)
		}), "remote: HTTP Basic: Access denied\nfatal: Authentication failed for '" + repo.URL() + "/'"},
		{"no such repository", gitlabtest.NewJob("d").Sources(repo, "main").Raw(func(j *gitlab.Job) {
			j.GitInfo.RepoURL = strings.Replace(j.GitInfo.RepoURL, "group/app", "group/gone", 1)
		}), "fatal: repository"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.get(e.take(c.job), nil)
			if r.err == nil || !strings.Contains(r.err.Error(), c.want) || !strings.Contains(r.log, c.want) {
				t.Errorf("error %v, want %q; log:\n%s", r.err, c.want, r.log)
			}
			if len(r.files(t)) != 0 {
				t.Errorf("files left: %v", r.files(t))
			}
		})
	}
}

func TestRetries(t *testing.T) {
	e := newEnv(t)
	repo, _, _ := history(e)
	e.srv.FailNext(gitlabtest.EndpointGitInfoRefs, http.StatusInternalServerError, 1)
	r := e.get(e.take(gitlabtest.NewJob("one").Sources(repo, "main")), nil)
	if r.err == nil || !strings.Contains(r.log, "fatal: unable to access '"+repo.URL()+"/'") {
		t.Errorf("one attempt: %v\n%s", r.err, r.log)
	}
	e.srv.FailNext(gitlabtest.EndpointGitUploadPack, http.StatusBadGateway, 2)
	r = e.get(e.take(gitlabtest.NewJob("three").Sources(repo, "main").Var("GET_SOURCES_ATTEMPTS", "3")), nil).must(t)
	contains(t, r.log, "fatal: unable to access", "Retrying get_sources (attempt 2 of 3)...",
		"Retrying get_sources (attempt 3 of 3)...", "Checking out")
}

func TestSymlinksStayInside(t *testing.T) {
	e := newEnv(t)
	repo := e.srv.NewRepo(7, "group/app")
	repo.Commit("main", "links",
		gitlabtest.Symlink("x", "/etc/passwd"),
		gitlabtest.Symlink("up", "../../.."),
		gitlabtest.Symlink("inside", "dir/file"),
		gitlabtest.Text("dir/file", "in"))
	r := e.get(e.take(gitlabtest.NewJob("a").Sources(repo, "main")), nil).must(t)
	files := r.files(t)
	if files["x"] != "-> /etc/passwd" || files["up"] != "-> ../../.." || files["inside"] != "-> dir/file" {
		t.Fatalf("files %v", files)
	}
	// Through the build dir's root (as the sandbox and the artifact
	// collection see it), the links lead nowhere outside.
	root, err := os.OpenRoot(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, p := range []string{"x", "up/etc/passwd", "up"} {
		if data, err := root.ReadFile(p); err == nil {
			t.Errorf("%s read through the root: %q", p, data)
		}
	}
	if data, err := root.ReadFile("inside"); err != nil || string(data) != "in" {
		t.Errorf("inside: %q %v", data, err)
	}
}

func TestDiskLimit(t *testing.T) {
	e := newEnv(t)
	repo := e.srv.NewRepo(7, "group/big")
	repo.Commit("main", "big", gitlabtest.Text("small", "s"), gitlabtest.Text("big.bin", strings.Repeat("x", 4096)))
	for _, strategy := range []string{"fetch", "clone"} {
		b := &budget{maxBytes: 1024}
		r := e.get(e.take(gitlabtest.NewJob(strategy).Sources(repo, "main").Var("GIT_STRATEGY", strategy)), b)
		if r.err == nil || !strings.Contains(r.err.Error(), "the disk limit of 1KiB (limits.disk) is used up") {
			t.Errorf("%s: %v\n%s", strategy, r.err, r.log)
		}
		if bytes, entries := b.used(); bytes != 0 || entries != 0 || len(r.files(t)) != 0 {
			t.Errorf("%s: after the failure %d bytes, %d entries charged, files %v", strategy, bytes, entries, r.files(t))
		}
	}
	b := &budget{maxEntries: 3}
	repo.Commit("main", "many", gitlabtest.Remove("big.bin"), gitlabtest.Text("a", "a"), gitlabtest.Text("b", "b"), gitlabtest.Text("c", "c"))
	r := e.get(e.take(gitlabtest.NewJob("entries").Sources(repo, "main")), b)
	if r.err == nil || !strings.Contains(r.err.Error(), "(limits.files) is used up") {
		t.Errorf("entries: %v", r.err)
	}
}

func TestConcurrentJobsOfOneProject(t *testing.T) {
	e := newEnv(t)
	repo, _, tip := history(e)
	var jobs []*gitlab.Job
	for i := range 4 {
		jobs = append(jobs, e.take(gitlabtest.NewJob("j"+string(rune('a'+i))).Sources(repo, "main")))
	}
	// Half the jobs go through another Cache on the same dir, as another
	// process would: the flock on the project's lock file keeps them out
	// of each other's way too.
	other := gitsource.NewCache(e.cached, 0)
	var wg sync.WaitGroup
	results := make([]result, len(jobs))
	for i, p := range jobs {
		wg.Go(func() {
			if i%2 == 1 {
				results[i] = e.getWith(other, p, nil)
				return
			}
			results[i] = e.get(p, nil)
		})
	}
	wg.Wait()
	fresh := 0
	for _, r := range results {
		r.must(t)
		if r.files(t)["log.txt"] != "xxxx" {
			t.Errorf("files %v", r.files(t))
		}
		if strings.Contains(r.log, "Created fresh repository.") {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d jobs made the cache", fresh)
	}
	if e.depthOf(t, tip) != 5 {
		t.Error("cache damaged")
	}
}

func TestCacheIsPerProject(t *testing.T) {
	e := newEnv(t)
	a := e.srv.NewRepo(7, "group/a")
	a.Commit("main", "a", gitlabtest.Text("secret-of-a", "a"))
	b := e.srv.NewRepo(8, "group/b")
	b.Commit("main", "b", gitlabtest.Text("b", "b"))
	e.get(e.take(gitlabtest.NewJob("a").Sources(a, "main")), nil).must(t)
	r := e.get(e.take(gitlabtest.NewJob("b").Sources(b, "main")), nil).must(t)
	contains(t, r.log, "Created fresh repository.")
	// A job of project 8 asking for project 7's commit does not find it in
	// its own cache.
	r = e.get(e.take(gitlabtest.NewJob("b2").Sources(b, "main").Commit(a.Branch("main"))), nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "reference is not a tree") {
		t.Errorf("project 8 found project 7's commit: %v", r.err)
	}
	for _, id := range []string{"project-7", "project-8"} {
		if _, err := os.Stat(filepath.Join(e.cached, id, "repo.git")); err != nil {
			t.Error(err)
		}
	}
}

func TestCacheEviction(t *testing.T) {
	e := newEnv(t)
	e.cache = gitsource.NewCache(e.cached, 1) // smaller than any project
	a := e.srv.NewRepo(7, "group/a")
	a.Commit("main", "a", gitlabtest.Text("a", "a"))
	b := e.srv.NewRepo(8, "group/b")
	b.Commit("main", "b", gitlabtest.Text("b", "b"))
	e.get(e.take(gitlabtest.NewJob("a").Sources(a, "main")), nil).must(t)
	// Emptied after its job (it alone passes the bound), lock kept.
	if _, err := os.Stat(filepath.Join(e.cached, "project-7", "repo.git")); !os.IsNotExist(err) {
		t.Errorf("project 7 kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cached, "project-7", "lock")); err != nil {
		t.Error(err)
	}
	r := e.get(e.take(gitlabtest.NewJob("a2").Sources(a, "main")), nil).must(t)
	contains(t, r.log, "Created fresh repository.")

	// With room for one project, the least recently used goes first.
	e.cache = gitsource.NewCache(e.cached, 1<<40)
	e.get(e.take(gitlabtest.NewJob("a3").Sources(a, "main")), nil).must(t)
	e.get(e.take(gitlabtest.NewJob("b").Sources(b, "main")), nil).must(t)
	sizeA := dirBytes(filepath.Join(e.cached, "project-7"))
	sizeB := dirBytes(filepath.Join(e.cached, "project-8"))
	e.cache = gitsource.NewCache(e.cached, max(sizeA, sizeB)+sizeB/2)
	e.get(e.take(gitlabtest.NewJob("b2").Sources(b, "main")), nil).must(t)
	if _, err := os.Stat(filepath.Join(e.cached, "project-7", "repo.git")); !os.IsNotExist(err) {
		t.Errorf("the least recently used project was kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cached, "project-8", "repo.git")); err != nil {
		t.Errorf("the project just used was evicted: %v", err)
	}
}

func dirBytes(dir string) int64 {
	var n int64
	_ = filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
