package gitinfo

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// repo builds a repository in a temporary dir: each commit writes the
// given files.
type testRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
	n    int
}

func newRepo(t *testing.T) *testRepo {
	dir := t.TempDir()
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	// The first commit goes to main.
	if err := r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName("main"))); err != nil {
		t.Fatal(err)
	}
	return &testRepo{t: t, dir: dir, repo: r}
}

func (r *testRepo) write(files map[string]string) {
	for name, content := range files {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *testRepo) commit(msg string, files map[string]string) plumbing.Hash {
	r.t.Helper()
	r.write(files)
	wt, _ := r.repo.Worktree()
	for name := range files {
		if _, err := wt.Add(name); err != nil {
			r.t.Fatal(err)
		}
	}
	r.n++
	when := time.Date(2026, 1, 2, 3, 4, r.n, 0, time.UTC)
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "Ada", Email: "ada@example.com", When: when}})
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

func TestHead(t *testing.T) {
	r := newRepo(t)
	first := r.commit("first\n", map[string]string{"a.txt": "a"})
	second := r.commit("Add b\n\nBecause b is needed.\n", map[string]string{"b.txt": "b"})
	repo, err := Open(filepath.Join(r.dir))
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	want := Commit{
		SHA: second.String(), BeforeSHA: first.String(), Branch: "main", Message: "Add b\n\nBecause b is needed.\n",
		Title: "Add b", Description: "Because b is needed.", Author: "Ada <ada@example.com>",
		Timestamp: time.Date(2026, 1, 2, 3, 4, 2, 0, time.UTC), DefaultBranch: "main",
	}
	if !c.Timestamp.Equal(want.Timestamp) {
		t.Errorf("Timestamp = %v", c.Timestamp)
	}
	c.Timestamp = want.Timestamp
	if c != want {
		t.Errorf("Head =\n%+v\nwant\n%+v", c, want)
	}

	// A detached HEAD with a tag: a tag pipeline.
	if _, err := r.repo.CreateTag("v1.0", second, &git.CreateTagOptions{Message: "v1", Tagger: &object.Signature{Name: "A", Email: "a@b", When: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	wt, _ := r.repo.Worktree()
	if err := wt.Checkout(&git.CheckoutOptions{Hash: second}); err != nil {
		t.Fatal(err)
	}
	c, err = repo.Head()
	if err != nil {
		t.Fatal(err)
	}
	if c.Branch != "" || c.Tag != "v1.0" {
		t.Errorf("detached: branch %q tag %q", c.Branch, c.Tag)
	}
}

func TestChanges(t *testing.T) {
	r := newRepo(t)
	r.commit("one", map[string]string{"a.txt": "a", "docs/x.md": "x"})
	repo, err := Open(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := repo.Changes(""); ok || err != nil {
		t.Errorf("root commit: ok %v err %v", ok, err)
	}
	r.commit("two", map[string]string{"docs/x.md": "changed", "src/main.go": "package main"})
	r.write(map[string]string{"untracked.txt": "u", "a.txt": "modified", ".gitignore": "ignored.log\n", "ignored.log": "i"})
	files, ok, err := repo.Changes("")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	want := []string{".gitignore", "a.txt", "docs/x.md", "src/main.go", "untracked.txt"}
	if !slices.Equal(files, want) {
		t.Errorf("Changes = %q, want %q", files, want)
	}
	files, _, err = repo.Changes("HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{".gitignore", "a.txt", "untracked.txt"}; !slices.Equal(files, want) {
		t.Errorf("Changes(HEAD) = %q, want %q", files, want)
	}
	if _, _, err := repo.Changes("nope"); err == nil {
		t.Error("unknown base: no error")
	}
}

func TestOpenOutsideRepository(t *testing.T) {
	if _, err := Open(t.TempDir()); !errors.Is(err, ErrNotRepository) {
		t.Errorf("Open = %v", err)
	}
}

// TestFiles: tracked files, untracked ones not ignored (.gitignore at the
// root and below), a tracked file that .gitignore matches, skip.
func TestFiles(t *testing.T) {
	r := newRepo(t)
	r.commit("one", map[string]string{"a.txt": "a", "src/b.go": "b", ".gitignore": "*.log\nbuild/\n", "forced.log": "tracked anyway", "gone.txt": "x"})
	r.write(map[string]string{"new.txt": "n", "x.log": "ignored", "build/out": "ignored", "src/.gitignore": "gen/\n", "src/gen/g.go": "ignored", "artifacts/a.zip": "skipped"})
	if err := os.Remove(filepath.Join(r.dir, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	repo, err := Open(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := repo.Files("artifacts")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".gitignore", "a.txt", "forced.log", "new.txt", "src/.gitignore", "src/b.go"}
	if !slices.Equal(files, want) {
		t.Errorf("Files = %q, want %q", files, want)
	}
}
