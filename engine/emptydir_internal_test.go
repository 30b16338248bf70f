package engine

import (
	"os"
	"path/filepath"
	"testing"
)

// emptyDir removes everything in a dir, links included (never what they
// point at), resets its mode, and refuses what is not a directory: a
// link to one, a file, nothing.
func TestEmptyDir(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(root, "outside")
	if err := os.MkdirAll(filepath.Join(outside, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "build")
	for _, d := range []string{"a/b/c", "ro"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 300 { // more names than one read of the directory holds
		if err := os.WriteFile(filepath.Join(dir, "a", "b", "c", "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "file-with-a-long-name-"+string(rune('a'+i%26))+string(rune('a'+i/26))), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := emptyDir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Errorf("left %d entries, first %s", len(names), names[0].Name())
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("dir after: %v, %v; want mode 0755", fi, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("what a link pointed at was removed: %v", err)
	}

	link := filepath.Join(root, "dirlink")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, file, filepath.Join(root, "missing")} {
		if err := emptyDir(p, 0o755); err == nil {
			t.Errorf("emptyDir(%s) succeeded", p)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("emptying a link emptied its target: %v", err)
	}
}
