package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"
)

// Collect returns the regular files and symlinks under root matched by
// GitLab artifact paths minus exclude, as sorted, de-duplicated,
// slash-separated paths relative to root.
//
// Patterns are relative to root and use doublestar syntax: "*" does not
// cross "/", "**" matches zero or more directories. A pattern that matches
// a directory matches everything under it; "." matches everything. A
// leading "./" is allowed. A pattern that is empty, absolute or escapes
// root once cleaned ("../x", "a/../../x") matches nothing, as does a path
// that does not exist. exclude follows the same rules and removes what it
// matches; an excluded directory removes everything under it. A pattern
// with invalid syntax is an error matching [doublestar.ErrBadPattern].
//
// A matched directory that holds nothing at all is listed itself, so
// that archives keep it.
//
// Collect never follows symlinks: a symlink, even to a directory, is
// listed as a symlink if it matches and is not walked into. root itself must
// be a directory, not a symlink to one. Other kinds of files (devices,
// sockets, pipes) are never listed. A path under root longer than 4096
// bytes (PATH_MAX) is an error matching [ErrTooLarge].
func Collect(root string, paths, exclude []string) ([]string, error) {
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, fmt.Errorf("archive: collect: %w", err)
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("archive: collect: root %s is a symlink: %w", root, ErrUnsafe)
	case !fi.IsDir():
		return nil, fmt.Errorf("archive: collect: %w", &fs.PathError{Op: "collect", Path: root, Err: syscall.ENOTDIR})
	}
	inc, err := compilePatterns(paths)
	if err != nil {
		return nil, err
	}
	exc, err := compilePatterns(exclude)
	if err != nil {
		return nil, err
	}
	if inc.empty() || exc.all {
		return nil, nil
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("archive: collect: %w", err)
	}
	defer r.Close()
	// root may have been swapped for a symlink since the Lstat.
	if rfi, err := r.Stat("."); err != nil || !os.SameFile(fi, rfi) {
		return nil, fmt.Errorf("archive: collect: root %s changed while opening it: %w", root, ErrUnsafe)
	}

	c := &collector{inc: inc, exc: exc}
	if err := c.walk(r, ".", inc.all); err != nil {
		return nil, fmt.Errorf("archive: collect %s: %w", root, err)
	}
	files := c.files
	slices.Sort(files)
	return slices.Compact(files), nil
}

// maxPath bounds the paths Collect and Extract handle (Linux's PATH_MAX):
// deeper trees cannot come from ordinary tools, and would make every
// operation on them slow.
const maxPath = 4096

// collector walks a tree for Collect.
type collector struct {
	inc, exc *patterns
	files    []string
	empty    bool // the directory walk last read holds nothing
}

// walk lists what is matched in the directory dir, which r is opened on,
// and below; included means that dir was matched. Each subdirectory is
// opened from its parent, so that the cost of a deep tree stays linear.
func (c *collector) walk(r *os.Root, dir string, included bool) error {
	f, err := r.Open(".")
	if err != nil {
		return err
	}
	// Names only: an entry no pattern can concern is never stat'ed (most
	// of a build dir, for artifacts:paths naming a few files).
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	c.empty = len(names) == 0
	slices.Sort(names)
	for _, name := range names {
		p := name
		if dir != "." {
			p = dir + "/" + p
		}
		if len(p) > maxPath {
			return fmt.Errorf("%s: path longer than %d bytes: %w", quote(p), maxPath, ErrTooLarge)
		}
		inc := included || c.inc.match(p)
		if !inc && !c.inc.mayMatchUnder(p) {
			continue // neither listed nor, if a directory, walked
		}
		fi, err := r.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while walking
		}
		if err != nil {
			return err
		}
		if fi.IsDir() {
			if c.exc.match(p) {
				continue
			}
			sub, err := r.OpenRoot(name)
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed while walking
			}
			if err != nil {
				return err
			}
			c.empty = false
			err = c.walk(sub, p, inc)
			sub.Close()
			if err != nil {
				return err
			}
			if inc && c.empty {
				// An empty directory is listed itself, so that the
				// archive keeps it (as GitLab Runner's does).
				c.files = append(c.files, p)
			}
			continue
		}
		if t := fi.Mode().Type(); inc && (t.IsRegular() || t&fs.ModeSymlink != 0) && !c.exc.match(p) {
			c.files = append(c.files, p)
		}
	}
	return nil
}

// isLocal reports whether name is a relative slash-separated path without
// empty, "." or ".." elements or NUL bytes. Other bytes are allowed, as on
// Linux: names need not be UTF-8.
func isLocal(name string) bool {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return false
	}
	for el := range strings.SplitSeq(name, "/") {
		if el == "" || el == "." || el == ".." {
			return false
		}
	}
	return true
}

// patterns is a compiled list of artifact patterns.
type patterns struct {
	all   bool     // a pattern matches root itself, so everything
	pats  []string // cleaned patterns
	bases []string // for each pattern, the directory everything it matches is in
}

func compilePatterns(raw []string) (*patterns, error) {
	ps := new(patterns)
	for _, p := range raw {
		c, ok := cleanPattern(p)
		if !ok {
			continue
		}
		if !doublestar.ValidatePattern(c) {
			return nil, fmt.Errorf("archive: artifact pattern %q: %w", p, doublestar.ErrBadPattern)
		}
		if c == "." {
			ps.all = true
			continue
		}
		base := c
		if hasMeta(c) {
			base, _ = doublestar.SplitPattern(c)
		}
		ps.pats = append(ps.pats, c)
		ps.bases = append(ps.bases, base)
	}
	return ps, nil
}

// cleanPattern returns the cleaned form of an artifact pattern, or false if
// the pattern can match nothing under root: it is empty, contains a NUL, is
// absolute, or escapes root once cleaned.
func cleanPattern(p string) (string, bool) {
	if p == "" || strings.IndexByte(p, 0) >= 0 || path.IsAbs(p) {
		return "", false
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// hasMeta reports whether p contains doublestar syntax.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[{\`) }

func (ps *patterns) empty() bool { return !ps.all && len(ps.pats) == 0 }

// match reports whether a pattern matches the slash-separated path p.
func (ps *patterns) match(p string) bool {
	if ps.all {
		return true
	}
	for _, pat := range ps.pats {
		if doublestar.MatchUnvalidated(pat, p) {
			return true
		}
	}
	return false
}

// mayMatchUnder reports whether a pattern may match something in the
// directory dir.
func (ps *patterns) mayMatchUnder(dir string) bool {
	for _, b := range ps.bases {
		if b == "." || b == dir || strings.HasPrefix(b, dir+"/") || strings.HasPrefix(dir, b+"/") {
			return true
		}
	}
	return false
}
