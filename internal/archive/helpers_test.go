package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sandbox is a temporary directory with dir, where a test works, and its
// sibling outside, holding a canary file that nothing may change.
type sandbox struct {
	base, dir, outside string
}

const canary = "canary: must never change"

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	base := t.TempDir()
	sb := sandbox{base: base, dir: filepath.Join(base, "dir"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{sb.dir, sb.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sb.outside, "canary"), []byte(canary), 0o644); err != nil {
		t.Fatal(err)
	}
	return sb
}

// checkOutside fails the test if anything but dir and outside exists in
// the base directory, or outside holds anything but the unchanged canary.
func (sb sandbox) checkOutside(t testing.TB) {
	t.Helper()
	names := func(d string) []string {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range ents {
			n = append(n, e.Name())
		}
		return n
	}
	if got := names(sb.base); !slices.Equal(got, []string{"dir", "outside"}) {
		t.Fatalf("base dir holds %q, want dir and outside only", got)
	}
	if got := names(sb.outside); !slices.Equal(got, []string{"canary"}) {
		t.Fatalf("outside dir holds %q, want the canary only", got)
	}
	b, err := os.ReadFile(filepath.Join(sb.outside, "canary"))
	if err != nil || string(b) != canary {
		t.Fatalf("canary changed: %q, %v", b, err)
	}
}

// tree creates files under root from spec: a name ending in "/" is a
// directory, a value starting with "@" makes a symlink to the rest, anything
// else is a regular file with that content.
func tree(t testing.TB, root string, spec map[string]string) {
	t.Helper()
	for name, v := range spec {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(v, "@"):
			err = os.Symlink(v[1:], p)
		default:
			err = os.WriteFile(p, []byte(v), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// listTree returns the slash-separated paths of everything under root, with
// "/" after directories and " -> target" after symlinks.
func listTree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			rel += "/"
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			rel += " -> " + target
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// zent is an entry of a zip made by makeZip. A symlink's body is its
// target.
type zent struct {
	name, body string
	mode       fs.FileMode
}

func file(name, body string) zent         { return zent{name, body, 0o644} }
func symlink(name, to string) zent        { return zent{name, to, fs.ModeSymlink | 0o777} }
func dirEntry(name string) zent           { return zent{name, "", fs.ModeDir | 0o755} }
func withMode(e zent, m fs.FileMode) zent { e.mode = m; return e }

func makeZip(t testing.TB, ents ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// extractFile writes data to a file and extracts it from there into dir.
func extractFile(t testing.TB, data []byte, dir string, lim Limits) error {
	t.Helper()
	p := filepath.Join(t.TempDir(), "archive.zip")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Extract(context.Background(), f, int64(len(data)), dir, lim)
}
