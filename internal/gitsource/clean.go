package gitsource

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// DefaultCleanFlags is GitLab Runner's GIT_CLEAN_FLAGS.
const DefaultCleanFlags = "-ffdx"

// CleanFlags are the git clean flags of GIT_CLEAN_FLAGS that are honoured:
// -f (given at least once: required, as git requires it without
// clean.requireForce=false), -d (untracked directories too), -x (ignored
// files too: .gitignore rules do not protect them), -X (only ignored
// files), -q, -e PATTERN / --exclude=PATTERN (more ignore rules, which
// protect files even with -x), and --force, --quiet. -n (dry run), -i and
// paths are refused.
type CleanFlags struct {
	Dirs, AllIgnored, OnlyIgnored bool
	Exclude                       []string
}

// ParseCleanFlags parses GIT_CLEAN_FLAGS (not "none").
func ParseCleanFlags(s string) (*CleanFlags, error) {
	c := &CleanFlags{}
	force := false
	args := strings.Fields(s)
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--force":
			force = true
		case a == "--quiet":
		case a == "--exclude" || a == "-e":
			if i+1 == len(args) {
				return nil, fmt.Errorf("%s needs a pattern", a)
			}
			i++
			c.Exclude = append(c.Exclude, args[i])
		case strings.HasPrefix(a, "--exclude="):
			c.Exclude = append(c.Exclude, strings.TrimPrefix(a, "--exclude="))
		case strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(a) > 1:
			for j, r := range a[1:] {
				switch r {
				case 'f':
					force = true
				case 'd':
					c.Dirs = true
				case 'x':
					c.AllIgnored = true
				case 'X':
					c.OnlyIgnored = true
				case 'q':
				case 'e':
					rest := a[2+j:]
					if rest == "" {
						if i+1 == len(args) {
							return nil, errors.New("-e needs a pattern")
						}
						i++
						rest = args[i]
					}
					c.Exclude = append(c.Exclude, rest)
				default:
					return nil, fmt.Errorf("git clean flag -%c is not supported", r)
				}
				if r == 'e' {
					break
				}
			}
		default:
			return nil, fmt.Errorf("%q is not supported", a)
		}
	}
	if !force {
		return nil, errors.New("git clean refuses to clean without -f")
	}
	if c.AllIgnored && c.OnlyIgnored {
		return nil, errors.New("-x and -X cannot be used together")
	}
	return c, nil
}

// clean removes from root what the checkout did not write (tracked holds
// the paths it wrote, directories included), as git clean does with c,
// and reports each removal to removed. It never follows a symlink: a link
// is removed as a link. The build dir starts empty, so after a checkout
// there is normally nothing to remove; clean is what makes that a
// guarantee.
func clean(root *os.Root, tracked map[string]bool, c *CleanFlags, removed func(string)) error {
	var patterns []gitignore.Pattern
	if !c.AllIgnored {
		for p := range tracked {
			if path.Base(p) == ".gitignore" {
				patterns = append(patterns, readIgnore(root, p)...)
			}
		}
	}
	var extra []gitignore.Pattern
	for _, e := range c.Exclude {
		extra = append(extra, gitignore.ParsePattern(e, nil))
	}
	m := matchers{std: gitignore.NewMatcher(patterns), extra: gitignore.NewMatcher(extra)}
	return cleanDir(root, ".", nil, tracked, c, m, removed)
}

func readIgnore(root *os.Root, p string) []gitignore.Pattern {
	f, err := root.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	var domain []string
	if d := path.Dir(p); d != "." {
		domain = strings.Split(d, "/")
	}
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	return ps
}

// matchers are the ignore rules of .gitignore files (std), which -x
// disregards, and those of -e (extra), which always apply.
type matchers struct{ std, extra gitignore.Matcher }

func cleanDir(root *os.Root, dir string, parts []string, tracked map[string]bool, c *CleanFlags, m matchers, removed func(string)) error {
	f, err := root.Open(dir)
	if err != nil {
		return err
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range entries {
		p := path.Join(dir, e.Name())
		ps := append(slices.Clone(parts), e.Name())
		isDir := e.Type().IsDir()
		ignored := m.extra.Match(ps, isDir) || (!c.AllIgnored && m.std.Match(ps, isDir))
		if tracked[p] {
			if isDir {
				if err := cleanDir(root, p, ps, tracked, c, m, removed); err != nil {
					return err
				}
			}
			continue
		}
		switch {
		case c.OnlyIgnored && !ignored, !c.OnlyIgnored && ignored:
			continue
		case isDir && !c.Dirs:
			// git clean without -d leaves untracked directories, but
			// cleans the untracked files of tracked ones only.
			continue
		}
		if err := root.RemoveAll(p); err != nil {
			return err
		}
		if isDir {
			removed(p + "/")
		} else {
			removed(p)
		}
	}
	return nil
}
