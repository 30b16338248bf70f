package archive

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// ExtractLinked gives what Extract gives, names, contents, modes, times and
// budget, with each regular file a hard link to the one extracted before;
// a file it cannot link is written.
func TestExtractLinked(t *testing.T) {
	ents := []zent{
		file("f.txt", "orig"), symlink("sub/l", "../f.txt"), symlink("l", "f.txt"), file("l", "new"),
		withMode(file("ro", "r"), 0o400), dirEntry("empty/"), file("a/b/c.txt", "deep"), file("a/d.txt", "d"),
		file("missing", "not in the cache"),
	}
	data := makeZip(t, ents...)
	extractInto := func(dir string, from string, lim Limits) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if from == "" {
			err = Extract(context.Background(), bytes.NewReader(data), int64(len(data)), dir, lim)
		} else {
			err = ExtractLinked(context.Background(), bytes.NewReader(data), int64(len(data)), dir, lim, from)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	base := t.TempDir()
	cache, plain, linked := filepath.Join(base, "cache"), filepath.Join(base, "plain"), filepath.Join(base, "linked")
	extractInto(cache, "", DefaultLimits())
	if err := os.Remove(filepath.Join(cache, "missing")); err != nil {
		t.Fatal(err)
	}
	plainBudget, linkedBudget := &testBudget{bytes: 1 << 20, entries: 100}, &testBudget{bytes: 1 << 20, entries: 100}
	lim := DefaultLimits()
	lim.Budget = plainBudget
	extractInto(plain, "", lim)
	// What is in the way is replaced, as by Extract.
	tree(t, linked, map[string]string{"f.txt": "old", "a/d.txt": "@../f.txt"})
	lim.Budget = linkedBudget
	linkedBudget.usedBytes, linkedBudget.usedEntries = 3, 3 // what tree made, as clear refunds it
	extractInto(linked, cache, lim)

	if got, want := listTree(t, linked), listTree(t, plain); !slices.Equal(got, want) {
		t.Fatalf("linked tree %q, want %q", got, want)
	}
	if *linkedBudget != *plainBudget {
		t.Errorf("charged %+v, want %+v as Extract", *linkedBudget, *plainBudget)
	}
	for _, name := range []string{"f.txt", "l", "ro", "a/b/c.txt", "a/d.txt", "missing"} {
		want, err := os.Lstat(filepath.Join(plain, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.Lstat(filepath.Join(linked, name))
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode() != want.Mode() || !got.ModTime().Equal(want.ModTime()) || got.Size() != want.Size() {
			t.Errorf("%s: %v %v %d, want %v %v %d", name, got.Mode(), got.ModTime(), got.Size(), want.Mode(), want.ModTime(), want.Size())
		}
		wb, _ := os.ReadFile(filepath.Join(plain, name))
		gb, _ := os.ReadFile(filepath.Join(linked, name))
		if !bytes.Equal(gb, wb) {
			t.Errorf("%s holds %q, want %q", name, gb, wb)
		}
		c, err := os.Lstat(filepath.Join(cache, name))
		if linkedToCache := err == nil && os.SameFile(c, got); linkedToCache != (name != "missing") {
			t.Errorf("%s: a link to the cache's file: %v", name, linkedToCache)
		}
	}
	if fi, err := os.Lstat(filepath.Join(linked, "sub/l")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("sub/l: %v, %v", fi, err)
	}
}
