package gitsource

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseCleanFlags(t *testing.T) {
	for _, c := range []struct {
		in   string
		want CleanFlags
		err  string
	}{
		{in: "-ffdx", want: CleanFlags{Dirs: true, AllIgnored: true}},
		{in: "-ffd", want: CleanFlags{Dirs: true}},
		{in: "-f -d -x -q", want: CleanFlags{Dirs: true, AllIgnored: true}},
		{in: "--force -dX", want: CleanFlags{Dirs: true, OnlyIgnored: true}},
		{in: "-ffdx -e node_modules/ --exclude=vendor -ekeep.txt", want: CleanFlags{Dirs: true, AllIgnored: true, Exclude: []string{"node_modules/", "vendor", "keep.txt"}}},
		{in: "-dx", err: "without -f"},
		{in: "-ffdn", err: "-n is not supported"},
		{in: "-fxX", err: "cannot be used together"},
		{in: "-f path", err: "not supported"},
	} {
		got, err := ParseCleanFlags(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got.Dirs != c.want.Dirs || got.AllIgnored != c.want.AllIgnored || got.OnlyIgnored != c.want.OnlyIgnored || !slices.Equal(got.Exclude, c.want.Exclude) {
			t.Errorf("%q: %+v %v, want %+v", c.in, got, err, c.want)
		}
	}
}

// TestClean cleans a tree left with untracked files (which a fresh build
// dir never has: clean guarantees it) under each form of the flags.
func TestClean(t *testing.T) {
	tracked := map[string]bool{".gitignore": true, "src": true, "src/main.go": true}
	for _, c := range []struct {
		flags string
		left  []string
	}{
		{"-ffdx", []string{".gitignore", "src", "src/main.go"}},
		{"-ffd", []string{".gitignore", "build", "build/out.o", "src", "src/main.go", "src/x.log"}},
		{"-ffdX", []string{".gitignore", "src", "src/main.go", "src/untracked.go", "untracked-dir", "untracked-dir/f"}},
		{"-ffx", []string{".gitignore", "build", "build/out.o", "src", "src/main.go", "untracked-dir", "untracked-dir/f"}},
		{"-ffdx -e untracked-dir", []string{".gitignore", "src", "src/main.go", "untracked-dir", "untracked-dir/f"}},
	} {
		dir := t.TempDir()
		for p, content := range map[string]string{
			".gitignore": "*.log\nbuild/\n", "src/main.go": "package main", "src/untracked.go": "x",
			"src/x.log": "log", "build/out.o": "o", "untracked-dir/f": "f",
		} {
			_ = os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
			_ = os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644)
		}
		_ = os.Symlink("/etc", filepath.Join(dir, "link-out"))
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		f, err := ParseCleanFlags(c.flags)
		if err != nil {
			t.Fatal(err)
		}
		var removed []string
		if err := clean(root, tracked, f, func(p string) { removed = append(removed, p) }); err != nil {
			t.Fatal(err)
		}
		root.Close()
		var left []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if rel, _ := filepath.Rel(dir, p); rel != "." {
				left = append(left, rel)
			}
			return nil
		})
		want := slices.Clone(c.left)
		if !slices.Contains(removed, "link-out") {
			want = append(want, "link-out")
		}
		slices.Sort(want)
		if !slices.Equal(left, want) {
			t.Errorf("%s: left %v, want %v (removed %v)", c.flags, left, want, removed)
		}
	}
	// /etc was not touched through the link.
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Error(err)
	}
}
