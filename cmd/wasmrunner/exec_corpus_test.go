package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"go.yaml.in/yaml/v3"
)

// corpusCase is a testdata/pipelines/corpus/*/expect.yml.
type corpusCase struct {
	Git *struct {
		Branch       string            `yaml:"branch"`
		Tag          string            `yaml:"tag"`
		SecondCommit map[string]string `yaml:"second_commit"`
		Untracked    map[string]string `yaml:"untracked"`
		Branches     []string          `yaml:"branches"`
	} `yaml:"git"`
	Args      []string `yaml:"args"`
	Names     []string `yaml:"names"`
	Exit      int      `yaml:"exit"`
	Jobs      []any    `yaml:"jobs"`
	Output    []string `yaml:"output"`
	NotOutput []string `yaml:"not_output"`
	Error     string   `yaml:"error"`
}

// TestExecCorpus runs every pipeline of testdata/pipelines/corpus with the
// shell handler and compares the jobs, their order and results, and the
// output (variables the scripts print) with what GitLab gives.
func TestExecCorpus(t *testing.T) {
	root := filepath.Join("..", "..", "testdata", "pipelines", "corpus")
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	modules, err := filepath.Abs(filepath.Join("..", "..", "examples", "modules"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		n++
		t.Run(d.Name(), func(t *testing.T) {
			src := filepath.Join(root, d.Name())
			data, err := os.ReadFile(filepath.Join(src, "expect.yml"))
			if err != nil {
				t.Fatal(err)
			}
			var c corpusCase
			if err := yaml.Unmarshal(data, &c); err != nil {
				t.Fatalf("expect.yml: %v", err)
			}
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			if c.Git != nil {
				makeRepo(t, dir, c.Git.Branch, c.Git.Tag, c.Git.SecondCommit, c.Git.Untracked, c.Git.Branches...)
			}
			args := []string{"exec", "--modules", modules, "--file", filepath.Join(dir, ".gitlab-ci.yml"),
				"--artifacts-dir", t.TempDir(), "--concurrency", "2"}
			args = append(append(args, c.Args...), c.Names...)
			// Relative paths in args (--variables-file) are the project's.
			for i, a := range args {
				if _, err := os.Stat(filepath.Join(dir, a)); err == nil && !strings.HasPrefix(a, "-") && a != "exec" && !slices.Contains(c.Names, a) {
					args[i] = filepath.Join(dir, a)
				}
			}
			code, out, errOut := runCLI(t, context.Background(), args...)
			if code != c.Exit {
				t.Errorf("exit %d, want %d\n%s\n%s", code, c.Exit, out, errOut)
			}
			if c.Error != "" && !strings.Contains(errOut, c.Error) {
				t.Errorf("stderr lacks %q:\n%s", c.Error, errOut)
			}
			for _, want := range c.Output {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			for _, bad := range c.NotOutput {
				if strings.Contains(out, bad) {
					t.Errorf("output has %q:\n%s", bad, out)
				}
			}
			if c.Jobs != nil {
				got := summaryOf(out)
				var want []string
				for _, j := range c.Jobs {
					switch j := j.(type) {
					case string:
						want = append(want, j)
					case map[string]any:
						for k, v := range j {
							want = append(want, k+": "+v.(string))
						}
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("jobs\n%q\nwant\n%q\n%s", got, want, out)
				}
			}
		})
	}
	if n < 25 {
		t.Errorf("%d pipelines in the corpus, want at least 25", n)
	}
}

// summaryOf reads exec's summary table: "NAME: RESULT" per job, in order.
func summaryOf(out string) []string {
	lines := strings.Split(out, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "JOB ") && strings.Contains(l, "RESULT") {
			start = i
		}
	}
	if start < 0 {
		return nil
	}
	cols := regexp.MustCompile(`\s{2,}`)
	var got []string
	for _, l := range lines[start+1:] {
		if strings.TrimSpace(l) == "" {
			break
		}
		f := cols.Split(strings.TrimRight(l, " "), -1)
		if len(f) >= 3 {
			got = append(got, f[0]+": "+f[2])
		}
	}
	return got
}

// makeRepo makes dir a git repository: its files committed on branch
// (and branches made at that commit), then second (another commit), then
// a tag with HEAD detached at it, then untracked files written.
func makeRepo(t *testing.T, dir, branch, tag string, second, untracked map[string]string, branches ...string) {
	t.Helper()
	if branch == "" {
		branch = "main"
	}
	r, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Storer.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(branch))); err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	commit := func(msg string) plumbing.Hash {
		if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "Corpus Author", Email: "author@example.com", When: when}})
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	write := func(files map[string]string) {
		for name, content := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	head := commit("Initial commit")
	for _, b := range branches {
		if err := r.Storer.SetReference(plumbing.NewHashReference(plumbing.NewBranchReferenceName(b), head)); err != nil {
			t.Fatal(err)
		}
	}
	if len(second) > 0 {
		write(second)
		head = commit("Second commit")
	}
	if tag != "" {
		if _, err := r.CreateTag(tag, head, nil); err != nil {
			t.Fatal(err)
		}
		if err := wt.Checkout(&git.CheckoutOptions{Hash: head}); err != nil {
			t.Fatal(err)
		}
	}
	write(untracked)
}
