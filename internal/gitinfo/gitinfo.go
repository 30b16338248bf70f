// Package gitinfo reads what `wasmrunner exec` needs from the local git
// repository, with go-git (no git binary): the commit and ref a pipeline
// runs for (GitLab's CI_COMMIT_* predefined variables), the files changed
// since a base (rules:changes), and the files a fresh checkout of the
// working tree holds.
package gitinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrNotRepository is returned by [Open] for a directory outside any git
// repository.
var ErrNotRepository = errors.New("not a git repository")

// Repo is an opened repository.
type Repo struct {
	repo *git.Repository
	wt   *git.Worktree
	root string
}

// Open opens the repository holding dir (dir or one of its parents).
func Open(dir string) (*Repo, error) {
	r, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the git repository of %s: %w", dir, err)
	}
	wt, err := r.Worktree()
	if err != nil {
		return nil, fmt.Errorf("the git repository of %s: %w", dir, err)
	}
	return &Repo{repo: r, wt: wt, root: wt.Filesystem.Root()}, nil
}

// Root returns the top directory of the working tree.
func (r *Repo) Root() string { return r.root }

// Commit describes the commit a pipeline runs for.
type Commit struct {
	SHA         string
	BeforeSHA   string // the first parent; 40 zeros for a root commit
	Branch      string // "" when HEAD is detached
	Tag         string // a tag pointing at HEAD, when HEAD is detached
	Message     string
	Title       string // the first line of Message
	Description string // Message without its first line, when Title is shorter than 100 characters
	Author      string // "Name <email>"
	Timestamp   time.Time
	// DefaultBranch is origin's HEAD branch, else main or master if one
	// exists, else Branch.
	DefaultBranch string
}

// ZeroSHA is GitLab's SHA for "no commit".
const ZeroSHA = "0000000000000000000000000000000000000000"

// Head describes HEAD.
func (r *Repo) Head() (Commit, error) {
	head, err := r.repo.Head()
	if err != nil {
		return Commit{}, fmt.Errorf("reading HEAD: %w", err)
	}
	c, err := r.repo.CommitObject(head.Hash())
	if err != nil {
		return Commit{}, fmt.Errorf("reading HEAD's commit: %w", err)
	}
	out := Commit{
		SHA: c.Hash.String(), BeforeSHA: ZeroSHA, Message: c.Message,
		Author: fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email), Timestamp: c.Committer.When,
	}
	if len(c.ParentHashes) > 0 {
		out.BeforeSHA = c.ParentHashes[0].String()
	}
	title, rest, _ := strings.Cut(strings.TrimRight(c.Message, "\n"), "\n")
	out.Title = title
	if len(title) < 100 {
		out.Description = strings.TrimLeft(rest, "\n")
	} else {
		out.Description = c.Message
	}
	if head.Name().IsBranch() {
		out.Branch = head.Name().Short()
	} else if tags, err := r.repo.Tags(); err == nil {
		_ = tags.ForEach(func(ref *plumbing.Reference) error {
			h := ref.Hash()
			if t, err := r.repo.TagObject(h); err == nil {
				h = t.Target
			}
			if h == c.Hash && out.Tag == "" {
				out.Tag = ref.Name().Short()
			}
			return nil
		})
	}
	out.DefaultBranch = r.defaultBranch(out.Branch)
	return out, nil
}

func (r *Repo) defaultBranch(current string) string {
	if ref, err := r.repo.Reference(plumbing.NewRemoteHEADReferenceName("origin"), false); err == nil && ref.Type() == plumbing.SymbolicReference {
		return strings.TrimPrefix(ref.Target().Short(), "origin/")
	}
	for _, b := range []string{"main", "master"} {
		if _, err := r.repo.Reference(plumbing.NewBranchReferenceName(b), false); err == nil {
			return b
		}
	}
	if current == "" {
		return "main"
	}
	return current
}

// Changes returns the files that differ between base and the working tree
// (committed since base, or changed and not committed yet),
// slash-separated and relative to the root. base "" is HEAD's first
// parent; ok is false when HEAD has none (a root commit): there is
// nothing to compare with.
func (r *Repo) Changes(base string) (files []string, ok bool, err error) {
	head, err := r.repo.Head()
	if err != nil {
		return nil, false, fmt.Errorf("reading HEAD: %w", err)
	}
	headCommit, err := r.repo.CommitObject(head.Hash())
	if err != nil {
		return nil, false, fmt.Errorf("reading HEAD's commit: %w", err)
	}
	var baseCommit *object.Commit
	if base == "" {
		if len(headCommit.ParentHashes) == 0 {
			return nil, false, nil
		}
		if baseCommit, err = headCommit.Parent(0); err != nil {
			return nil, false, fmt.Errorf("reading HEAD's parent: %w", err)
		}
	} else {
		h, err := r.repo.ResolveRevision(plumbing.Revision(base))
		if err != nil {
			return nil, false, fmt.Errorf("compare base %q: %w", base, err)
		}
		if baseCommit, err = r.repo.CommitObject(*h); err != nil {
			return nil, false, fmt.Errorf("compare base %q: %w", base, err)
		}
	}
	seen := map[string]bool{}
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			files = append(files, name)
		}
	}
	if baseCommit.Hash != headCommit.Hash {
		bt, err := baseCommit.Tree()
		if err != nil {
			return nil, false, fmt.Errorf("compare base tree: %w", err)
		}
		ht, err := headCommit.Tree()
		if err != nil {
			return nil, false, fmt.Errorf("HEAD's tree: %w", err)
		}
		changes, err := object.DiffTree(bt, ht)
		if err != nil {
			return nil, false, fmt.Errorf("comparing with %s: %w", baseCommit.Hash, err)
		}
		for _, c := range changes {
			add(c.From.Name)
			add(c.To.Name)
		}
	}
	st, err := r.wt.Status()
	if err != nil {
		return nil, false, fmt.Errorf("working tree status: %w", err)
	}
	for name, fs := range st {
		if fs.Worktree != git.Unmodified || fs.Staging != git.Unmodified {
			add(name)
		}
	}
	slices.Sort(files)
	return files, true, nil
}

// Files lists what a fresh checkout of the working tree holds: the
// tracked files that are there, and the untracked ones .gitignore does
// not ignore, slash-separated and relative to the root, sorted. Paths
// under skip (relative to the root) are left out.
func (r *Repo) Files(skip ...string) ([]string, error) {
	idx, err := r.repo.Storer.Index()
	if err != nil {
		return nil, fmt.Errorf("reading the index: %w", err)
	}
	patterns, err := gitignore.ReadPatterns(r.wt.Filesystem, nil)
	if err != nil {
		return nil, fmt.Errorf("reading .gitignore files: %w", err)
	}
	matcher := gitignore.NewMatcher(patterns)
	skipped := func(rel string) bool {
		for _, s := range skip {
			if s != "" && (rel == s || strings.HasPrefix(rel, s+"/")) {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	var files []string
	for _, e := range idx.Entries {
		if skipped(e.Name) {
			continue
		}
		if fi, err := os.Lstat(filepath.Join(r.root, filepath.FromSlash(e.Name))); err == nil && (fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0) {
			seen[e.Name] = true
			files = append(files, e.Name)
		}
	}
	err = filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		parts := strings.Split(rel, "/")
		if d.IsDir() {
			if d.Name() == ".git" || skipped(rel) || matcher.Match(parts, true) {
				return filepath.SkipDir
			}
			return nil
		}
		if seen[rel] || skipped(rel) || matcher.Match(parts, false) {
			return nil
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the working tree: %w", err)
	}
	slices.Sort(files)
	return files, nil
}
