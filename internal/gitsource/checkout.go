package gitsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Budget is what a checkout may add to the build dir: the job's disk and
// entry limits. Take reserves bytes and entries or none of them and says
// why (the error names the limit); Give returns them.
type Budget interface {
	Take(bytes, entries int64) error
	Give(bytes, entries int64)
}

// maxLinkTarget is the longest symlink target written (PATH_MAX).
const maxLinkTarget = 4096

// checkout writes trees into a build dir through an os.Root: nothing it
// writes can land outside the dir, whatever the tree holds (symlinks to
// anywhere are written as symlinks, never followed: every file is created
// new, with O_EXCL, in a directory the checkout made). Each file, link and
// directory is charged to the budget before it is created, as archive
// extraction charges them: a file its size, a link its target's length,
// each one entry.
type checkout struct {
	ctx     context.Context
	root    *os.Root
	budget  Budget
	tracked map[string]bool // paths written, directories included
	// bytes and entries charged so far.
	bytes, entries int64
	files          int
}

func newCheckout(ctx context.Context, root *os.Root, budget Budget) *checkout {
	return &checkout{ctx: ctx, root: root, budget: budget, tracked: map[string]bool{}}
}

func (w *checkout) take(bytes, entries int64) error {
	if w.budget == nil {
		return nil
	}
	if err := w.budget.Take(bytes, entries); err != nil {
		return err
	}
	w.bytes += bytes
	w.entries += entries
	return nil
}

// undo removes everything under the root and gives back what was charged:
// the build dir holds nothing but the checkout when it fails.
func (w *checkout) undo() {
	if f, err := w.root.Open("."); err == nil {
		names, _ := f.Readdirnames(-1)
		f.Close()
		for _, n := range names {
			_ = w.root.RemoveAll(n)
		}
	}
	if w.budget != nil {
		w.budget.Give(w.bytes, w.entries)
	}
	w.bytes, w.entries = 0, 0
	w.tracked = map[string]bool{}
	w.files = 0
}

// validName reports whether a tree entry's name may be written: git's own
// rules (no empty name, ".", "..", slash or NUL, and no ".git" in any
// case, which would let a repository plant git metadata).
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00") &&
		!strings.EqualFold(name, ".git")
}

// tree writes the entries of t under dir ("." for the root), and records
// its submodule entries (gitlinks) in links by path.
func (w *checkout) tree(st storer.EncodedObjectStorer, t *object.Tree, dir string, links map[string]plumbing.Hash) error {
	// Entries are created relative to a root on their directory: one
	// openat each, however deep.
	r := w.root
	if dir != "." {
		var err error
		if r, err = w.root.OpenRoot(dir); err != nil {
			return err
		}
		defer r.Close()
	}
	return w.writeEntries(st, r, t, dir, links)
}

func (w *checkout) writeEntries(st storer.EncodedObjectStorer, r *os.Root, t *object.Tree, dir string, links map[string]plumbing.Hash) error {
	for _, e := range t.Entries {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p := path.Join(dir, e.Name)
		if !validName(e.Name) {
			return fmt.Errorf("error: invalid path '%s'", p)
		}
		switch e.Mode {
		case filemode.Dir:
			sub, err := object.GetTree(st, e.Hash)
			if err != nil {
				return fmt.Errorf("reading tree %s: %w", p, err)
			}
			if err := w.mkdir(r, e.Name, p); err != nil {
				return err
			}
			subRoot, err := r.OpenRoot(e.Name)
			if err != nil {
				return err
			}
			err = w.writeEntries(st, subRoot, sub, p, links)
			subRoot.Close()
			if err != nil {
				return err
			}
		case filemode.Submodule:
			// An empty directory, as git leaves a submodule not set up.
			if err := w.mkdir(r, e.Name, p); err != nil {
				return err
			}
			links[p] = e.Hash
		case filemode.Symlink:
			if err := w.symlink(st, r, e.Name, p, e.Hash); err != nil {
				return err
			}
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			perm := fs.FileMode(0o644)
			if e.Mode == filemode.Executable {
				perm = 0o755
			}
			if err := w.file(st, r, e.Name, p, e.Hash, perm); err != nil {
				return err
			}
		default:
			return fmt.Errorf("error: %s: unsupported file mode %s", p, e.Mode)
		}
	}
	return nil
}

// mkdir makes name in r, the directory of p.
func (w *checkout) mkdir(r *os.Root, name, p string) error {
	if err := w.take(0, 1); err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	if err := r.Mkdir(name, 0o755); err != nil {
		return err
	}
	w.tracked[p] = true
	return nil
}

func (w *checkout) symlink(st storer.EncodedObjectStorer, r *os.Root, name, p string, h plumbing.Hash) error {
	b, err := object.GetBlob(st, h)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	if b.Size > maxLinkTarget {
		return fmt.Errorf("error: %s: symlink target longer than %d bytes", p, maxLinkTarget)
	}
	br, err := b.Reader()
	if err != nil {
		return err
	}
	target, err := io.ReadAll(io.LimitReader(br, maxLinkTarget))
	br.Close()
	if err != nil {
		return err
	}
	if len(target) == 0 || strings.ContainsRune(string(target), 0) {
		return fmt.Errorf("error: %s: invalid symlink target", p)
	}
	if err := w.take(int64(len(target)), 1); err != nil {
		return fmt.Errorf("checking out %s: %w", p, err)
	}
	// The link is written as it is: the sandbox resolves it inside the
	// build dir, and host code never follows links there.
	if err := r.Symlink(string(target), name); err != nil {
		return err
	}
	w.tracked[p] = true
	w.files++
	return nil
}

func (w *checkout) file(st storer.EncodedObjectStorer, r *os.Root, name, p string, h plumbing.Hash, perm fs.FileMode) error {
	b, err := object.GetBlob(st, h)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	if err := w.take(b.Size, 1); err != nil {
		return fmt.Errorf("checking out %s: %w", p, err)
	}
	f, err := r.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	br, err := b.Reader()
	if err != nil {
		f.Close()
		return err
	}
	n, err := io.Copy(f, io.LimitReader(br, b.Size))
	br.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != b.Size {
		err = errors.New("short blob")
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	w.tracked[p] = true
	w.files++
	return nil
}
