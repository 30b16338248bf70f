package archive

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/bmatcuk/doublestar/v4"
)

// buildDir is the tree the Collect tests work on, in a sandbox's dir.
var buildDir = map[string]string{
	"a.txt":               "a",
	"b.log":               "b",
	".hidden":             "h",
	"build/app":           "app",
	"build/lib/x.so":      "x",
	"build/lib/deep/y.so": "y",
	"build/tmp/junk":      "junk",
	"build/abs":           "@/etc",
	"docs/readme.md":      "readme",
	"docs/sub/guide.md":   "guide",
	"empty/":              "",
	"linkdir":             "@build",
	"linkout":             "@../outside/canary",
	"linkoutdir":          "@../outside",
}

func TestCollect(t *testing.T) {
	all := []string{
		".hidden", "a.txt", "b.log", "build/abs", "build/app", "build/lib/deep/y.so", "build/lib/x.so",
		"build/tmp/junk", "docs/readme.md", "docs/sub/guide.md", "empty", "linkdir", "linkout", "linkoutdir",
	}
	build := []string{"build/abs", "build/app", "build/lib/deep/y.so", "build/lib/x.so", "build/tmp/junk"}
	tests := []struct {
		name           string
		paths, exclude []string
		want           []string
	}{
		{"nothing", nil, nil, nil},
		{"star at top", []string{"*.txt"}, nil, []string{"a.txt"}},
		{"star does not cross slash", []string{"build/*.so"}, nil, nil},
		{"doublestar crosses slash", []string{"build/**/*.so"}, nil, []string{"build/lib/deep/y.so", "build/lib/x.so"}},
		{"doublestar at any depth", []string{"**/*.md"}, nil, []string{"docs/readme.md", "docs/sub/guide.md"}},
		{"doublestar is zero dirs too", []string{"**/a.txt"}, nil, []string{"a.txt"}},
		{"directory includes subtree", []string{"build"}, nil, build},
		{"trailing slash", []string{"build/"}, nil, build},
		{"dot slash prefix", []string{"./docs"}, nil, []string{"docs/readme.md", "docs/sub/guide.md"}},
		{"star matches directories", []string{"build/*"}, nil, build},
		{"dot is everything", []string{"."}, nil, all},
		{"doublestar is everything", []string{"**"}, nil, all},
		{"star is everything at top and below", []string{"*"}, nil, all},
		{"duplicates", []string{"build", "build/app", "**/*.so", "./build/lib/"}, nil, build},
		{"exclude file", []string{"build"}, []string{"build/app"}, []string{"build/abs", "build/lib/deep/y.so", "build/lib/x.so", "build/tmp/junk"}},
		{"exclude dir", []string{"build"}, []string{"build/lib"}, []string{"build/abs", "build/app", "build/tmp/junk"}},
		{"exclude glob", []string{"**"}, []string{"**/*.so", "**/tmp", "*.*", "link*"}, []string{"build/abs", "build/app", "docs/readme.md", "docs/sub/guide.md", "empty"}},
		{"exclude everything", []string{"**"}, []string{"."}, nil},
		{"exclude escaping pattern ignored", []string{"a.txt"}, []string{"../dir/a.txt", "/a.txt"}, []string{"a.txt"}},
		{"parent escape", []string{"../outside/canary", "../outside", ".."}, nil, nil},
		{"escape back into root", []string{"../dir/a.txt"}, nil, nil},
		{"absolute", []string{"/etc/passwd", "/"}, nil, nil},
		{"escape after cleaning", []string{"a/../../x", "build/../../outside/canary"}, nil, nil},
		{"dot-dot that stays inside", []string{"build/../a.txt"}, nil, []string{"a.txt"}},
		{"symlinked dir listed, not walked", []string{"linkdir"}, nil, []string{"linkdir"}},
		{"nothing under a symlinked dir", []string{"linkdir/app", "linkdir/*", "linkoutdir/canary"}, nil, nil},
		{"symlink to outside listed", []string{"linkout", "linkoutdir"}, nil, []string{"linkout", "linkoutdir"}},
		{"missing paths", []string{"nope", "nope/**", "build/nope.txt", "*.nope"}, nil, nil},
		// GitLab Runner's archives keep empty directories.
		{"empty directory listed itself", []string{"empty"}, nil, []string{"empty"}},
		{"empty pattern", []string{""}, nil, nil},
		{"hidden files match star", []string{"*hidden"}, nil, []string{".hidden"}},
		{"alternatives", []string{"{a.txt,b.log}"}, nil, []string{"a.txt", "b.log"}},
	}
	sb := newSandbox(t)
	tree(t, sb.dir, buildDir)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Collect(sb.dir, tc.paths, tc.exclude)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Collect(%q, %q) =\n %q\nwant\n %q", tc.paths, tc.exclude, got, tc.want)
			}
		})
	}
	sb.checkOutside(t)
}

func TestCollectErrors(t *testing.T) {
	sb := newSandbox(t)
	tree(t, sb.dir, map[string]string{"f": "x", "sub/g": "y"})
	link := filepath.Join(sb.base, "dirlink")
	if err := os.Symlink(sb.dir, link); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(link)
	tests := []struct {
		name  string
		root  string
		paths []string
		want  error
	}{
		{"root is a symlink", link, []string{"**"}, ErrUnsafe},
		{"root missing", filepath.Join(sb.base, "nope"), []string{"**"}, fs.ErrNotExist},
		{"root is a file", filepath.Join(sb.dir, "f"), []string{"**"}, syscall.ENOTDIR},
		{"bad pattern", sb.dir, []string{"sub/[g"}, doublestar.ErrBadPattern},
	}
	// A tree deeper than any ordinary tool could make.
	deep := filepath.Join(sb.base, "deep")
	if err := os.Mkdir(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	deepTree(t, deep, 2100)
	tests = append(tests, struct {
		name  string
		root  string
		paths []string
		want  error
	}{"path too long", deep, []string{"**"}, ErrTooLarge})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Collect(tc.root, tc.paths, nil)
			if err == nil {
				t.Fatalf("Collect = %q, want an error", got)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzCleanPattern checks that a pattern Collect accepts is relative and
// stays in root, and that one it refuses really could escape.
func FuzzCleanPattern(f *testing.F) {
	for _, p := range []string{"a", "./a/b", "../x", "a/../../x", "/etc", "**/*.txt", "a/..", ".", "", "a\x00b", "{../x,y}", `a\..\..`} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c, ok := cleanPattern(p)
		if !ok {
			if p != "" && !strings.Contains(p, "\x00") && !strings.HasPrefix(p, "/") {
				if q := filepath.ToSlash(filepath.Clean(p)); q != ".." && !strings.HasPrefix(q, "../") {
					t.Fatalf("%q refused, but cleans to %q", p, q)
				}
			}
			return
		}
		if c != "." && !isLocal(c) {
			t.Fatalf("%q cleans to %q, not a valid relative path", p, c)
		}
		if c2, ok := cleanPattern(c); !ok || c2 != c {
			t.Fatalf("cleaning %q again gives %q, %v", c, c2, ok)
		}
	})
}

// deepTree creates a chain of n directories named "d" in dir, going down
// through an os.Root on each, since the path soon exceeds PATH_MAX.
func deepTree(t testing.TB, dir string, n int) {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := r.Mkdir("d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := r.OpenRoot("d")
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		r = next
	}
	r.Close()
}
