package gitsource_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// TestSubmodules: a project with a submodule of its host (relative URL,
// fetched with the job token), which has one of another host (public,
// fetched without credentials), for each strategy.
func TestSubmodules(t *testing.T) {
	e := newEnv(t)
	other := gitlabtest.NewServer()
	t.Cleanup(other.Close)
	ext := other.NewRepo(99, "vendor/ext")
	ext.SetPublic(true)
	extSha := ext.Commit("main", "ext", gitlabtest.Text("ext.txt", "external"))

	lib := e.srv.NewRepo(8, "group/lib")
	lib.Commit("main", "old lib", gitlabtest.Text("lib.txt", "old"))
	libSha := lib.Commit("main", "lib",
		gitlabtest.Text("lib.txt", "lib"),
		gitlabtest.Text(".gitmodules", "[submodule \"ext\"]\n\tpath = vendor/ext\n\turl = "+ext.URL()+"\n"),
		gitlabtest.Submodule("vendor/ext", extSha))
	lib.Commit("main", "later lib", gitlabtest.Text("lib.txt", "later")) // the pinned commit is not the tip

	app := e.srv.NewRepo(7, "group/app")
	app.Commit("main", "app",
		gitlabtest.Text("app.txt", "app"),
		gitlabtest.Text(".gitmodules", "[submodule \"lib\"]\n\tpath = libs/lib\n\turl = ../lib.git\n"),
		gitlabtest.Submodule("libs/lib", libSha))

	cases := []struct {
		strategy, vars string
		want           map[string]string
		absent         []string
		log            []string
	}{
		{strategy: "none", want: map[string]string{"libs/lib": "/"}, absent: []string{"libs/lib/lib.txt"},
			log: []string{"Skipping Git submodules setup"}},
		{strategy: "normal", want: map[string]string{"libs/lib/lib.txt": "lib", "libs/lib/vendor/ext": "/"},
			absent: []string{"libs/lib/vendor/ext/ext.txt"},
			log: []string{"Updating/initializing submodules with git depth set to 20...",
				"Submodule 'lib' (" + lib.URL() + ") registered for path 'libs/lib'",
				"Submodule path 'libs/lib': checked out '" + libSha + "'"}},
		{strategy: "recursive", want: map[string]string{"libs/lib/lib.txt": "lib", "libs/lib/vendor/ext/ext.txt": "external"},
			log: []string{"Updating/initializing submodules recursively with git depth set to 20...",
				"Submodule 'ext' (" + ext.URL() + ") registered for path 'libs/lib/vendor/ext'"}},
		{strategy: "recursive", vars: "clone", want: map[string]string{"libs/lib/vendor/ext/ext.txt": "external"}},
	}
	for _, c := range cases {
		t.Run(c.strategy+c.vars, func(t *testing.T) {
			b := gitlabtest.NewJob("j").Sources(app, "main").Var("GIT_SUBMODULE_STRATEGY", c.strategy)
			if c.vars != "" {
				b.Var("GIT_STRATEGY", c.vars)
			}
			r := e.get(e.take(b), nil).must(t)
			contains(t, r.log, c.log...)
			files := r.files(t)
			for p, want := range c.want {
				if files[p] != want {
					t.Errorf("%s = %q, want %q; files %v", p, files[p], want, keys(files))
				}
			}
			for _, p := range c.absent {
				if _, ok := files[p]; ok {
					t.Errorf("%s exists", p)
				}
			}
		})
	}
	// The project's host got the job token; the other host no credentials.
	for _, f := range lib.Fetches() {
		if f.User != "gitlab-ci-token" || f.Token == "" {
			t.Errorf("lib fetched with %+v", f)
		}
	}
	for _, f := range ext.Fetches() {
		if f.User != "" || f.Token != "" {
			t.Errorf("the other host got credentials: %+v", f)
		}
	}
	// Submodules' repositories live in the project's cache.
	if m, _ := filepath.Glob(filepath.Join(e.cached, "project-7", "modules", "lib-*.git")); len(m) != 1 {
		t.Errorf("modules %v", m)
	}
	if _, err := os.Stat(filepath.Join(e.cached, "project-8")); !os.IsNotExist(err) {
		t.Errorf("the submodule's project got a cache of its own: %v", err)
	}
}

func TestSubmoduleFailures(t *testing.T) {
	e := newEnv(t)
	app := e.srv.NewRepo(7, "group/app")
	missing := strings.Repeat("cd", 20)
	app.Commit("main", "app",
		gitlabtest.Text(".gitmodules", "[submodule \"gone\"]\n\tpath = gone\n\turl = ../gone.git\n[submodule \"ssh\"]\n\tpath = ssh\n\turl = git@example.com:group/x.git\n"),
		gitlabtest.Submodule("gone", missing))
	r := e.get(e.take(gitlabtest.NewJob("a").Sources(app, "main").Var("GIT_SUBMODULE_STRATEGY", "normal")), nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "fatal: clone of '"+e.srv.URL+"/group/gone.git' into submodule path 'gone' failed") {
		t.Errorf("%v\n%s", r.err, r.log)
	}
	app.Commit("main", "ssh", gitlabtest.Remove("gone"), gitlabtest.Submodule("ssh", missing))
	r = e.get(e.take(gitlabtest.NewJob("b").Sources(app, "main").Var("GIT_SUBMODULE_STRATEGY", "normal")), nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "only http(s) submodule URLs are supported") {
		t.Errorf("%v\n%s", r.err, r.log)
	}
	app.Commit("main", "no url", gitlabtest.Remove("ssh"), gitlabtest.Submodule("nourl", missing))
	r = e.get(e.take(gitlabtest.NewJob("c").Sources(app, "main").Var("GIT_SUBMODULE_STRATEGY", "normal")), nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "fatal: No url found for submodule path 'nourl' in .gitmodules") {
		t.Errorf("%v\n%s", r.err, r.log)
	}
}
