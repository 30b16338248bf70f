package archive

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var mtime = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// TestRoundTrip collects a tree, zips it into a file and extracts that file
// elsewhere: contents, modes, mtimes and symlinks must survive.
func TestRoundTrip(t *testing.T) {
	src := newSandbox(t)
	tree(t, src.dir, map[string]string{
		"bin/tool":        "#!/bin/sh\necho hi\n",
		"bin/private":     "secret",
		"data/empty":      "",
		"data/big.txt":    strings.Repeat("line of text for deflate\n", 5000),
		"data/nested/a/b": "deep",
		"data/ünïcode ✓":  "name",
		"ln-file":         "@data/big.txt",
		"ln-dir":          "@data/nested",
		"data/ln-up":      "@../bin/tool",
		"ln-dangling":     "@does/not/exist",
	})
	modes := map[string]fs.FileMode{"bin/tool": 0o755, "bin/private": 0o600, "data/empty": 0o444, "data/big.txt": 0o640}
	for name, m := range modes {
		if err := os.Chmod(filepath.Join(src.dir, name), m); err != nil {
			t.Fatal(err)
		}
	}
	files, err := Collect(src.dir, []string{"**"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if fi, _ := os.Lstat(filepath.Join(src.dir, name)); fi.Mode().IsRegular() {
			if err := os.Chtimes(filepath.Join(src.dir, name), mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}

	zipPath := filepath.Join(t.TempDir(), "artifacts.zip")
	zf, err := os.Create(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteZip(context.Background(), zf, src.dir, files); err != nil {
		t.Fatal(err)
	}
	if err := zf.Close(); err != nil {
		t.Fatal(err)
	}
	checkZipMethods(t, zipPath)

	dst := newSandbox(t)
	zf, err = os.Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zf.Close()
	fi, err := zf.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := Extract(context.Background(), zf, fi.Size(), dst.dir, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		a, b := filepath.Join(src.dir, name), filepath.Join(dst.dir, name)
		ai, err := os.Lstat(a)
		if err != nil {
			t.Fatal(err)
		}
		bi, err := os.Lstat(b)
		if err != nil {
			t.Fatalf("%s not extracted: %v", name, err)
		}
		if ai.Mode() != bi.Mode() {
			t.Errorf("%s: mode %v, want %v", name, bi.Mode(), ai.Mode())
		}
		if ai.Mode()&fs.ModeSymlink != 0 {
			at, _ := os.Readlink(a)
			bt, _ := os.Readlink(b)
			if at != bt {
				t.Errorf("%s: link to %q, want %q", name, bt, at)
			}
			continue
		}
		ab, _ := os.ReadFile(a)
		bb, _ := os.ReadFile(b)
		if !bytes.Equal(ab, bb) {
			t.Errorf("%s: content differs", name)
		}
		if !bi.ModTime().Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", name, bi.ModTime(), mtime)
		}
	}
	if got, want := listTree(t, dst.dir), listTree(t, src.dir); !slices.Equal(got, want) {
		t.Errorf("extracted tree\n %q\nwant\n %q", got, want)
	}
	src.checkOutside(t)
	dst.checkOutside(t)
}

// checkZipMethods checks that regular files are deflated and symlinks
// stored.
func checkZipMethods(t *testing.T, zipPath string) {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		want := zip.Deflate
		if f.Mode()&fs.ModeSymlink != 0 {
			want = zip.Store
		}
		if f.Method != want {
			t.Errorf("%s: method %d, want %d", f.Name, f.Method, want)
		}
	}
}

// TestWriteZipSymlinksNotFollowed zips symlinks pointing outside root: the
// archive holds the link targets, never what they point to.
func TestWriteZipSymlinksNotFollowed(t *testing.T) {
	sb := newSandbox(t)
	tree(t, sb.dir, buildDir)
	files, err := Collect(sb.dir, []string{"link*", "build"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteZip(context.Background(), &buf, sb.dir, files); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(canary)) {
			t.Fatalf("%s: the archive holds the canary read through a symlink", f.Name)
		}
		if f.Mode()&fs.ModeSymlink != 0 {
			got[f.Name] = "@" + string(b)
		}
	}
	want := map[string]string{
		"linkdir": "@build", "linkout": "@../outside/canary", "linkoutdir": "@../outside", "build/abs": "@/etc",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("symlink entries %v, want %v", got, want)
	}
}

func TestWriteZipErrors(t *testing.T) {
	sb := newSandbox(t)
	tree(t, sb.dir, map[string]string{"f": "x", "d/g": "y"})
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		root  string
		files []string
		want  error
	}{
		{"canceled", canceled, sb.dir, []string{"f"}, context.Canceled},
		{"escaping name", context.Background(), sb.dir, []string{"../outside/canary"}, ErrUnsafe},
		{"absolute name", context.Background(), sb.dir, []string{"/etc/passwd"}, ErrUnsafe},
		{"missing root", context.Background(), filepath.Join(sb.base, "nope"), []string{"f"}, fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteZip(tc.ctx, io.Discard, tc.root, tc.files)
			if !errors.Is(err, tc.want) {
				t.Fatalf("WriteZip: %v, want %v", err, tc.want)
			}
		})
	}
	// Names that vanished are skipped; a directory is a directory entry.
	var buf bytes.Buffer
	if err := WriteZip(context.Background(), &buf, sb.dir, []string{"d", "f", "gone"}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 2 || zr.File[0].Name != "d/" || !zr.File[0].Mode().IsDir() || zr.File[1].Name != "f" {
		t.Fatalf("archive holds %d entries, want d/ and f", len(zr.File))
	}
}

// TestWriteZipPathSwap replaces a directory of a collected path with a
// symlink to outside before zipping: nothing outside may be read.
func TestWriteZipPathSwap(t *testing.T) {
	sb := newSandbox(t)
	tree(t, sb.dir, map[string]string{"d/canary": "inside"})
	files, err := Collect(sb.dir, []string{"d"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(sb.dir, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(sb.outside, filepath.Join(sb.dir, "d")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	err = WriteZip(context.Background(), &buf, sb.dir, files)
	if err == nil {
		t.Fatal("WriteZip read through a symlink to outside")
	}
	if bytes.Contains(buf.Bytes(), []byte(canary)) {
		t.Fatal("the archive holds the canary")
	}
}

func TestWriteGzip(t *testing.T) {
	sb := newSandbox(t)
	report := strings.Repeat("<testcase name=\"x\"/>\n", 1000)
	tree(t, sb.dir, map[string]string{
		"reports/junit.xml": report,
		"reports/link.xml":  "@junit.xml",
		"reports/out.xml":   "@../../outside/canary",
		"reports/日本.xml":    "cjk",
	})
	if err := os.Chtimes(filepath.Join(sb.dir, "reports/junit.xml"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file, wantName string
		want           error
	}{
		{"reports/junit.xml", "junit.xml", nil},
		{"reports/link.xml", "link.xml", nil},
		{"reports/日本.xml", "", nil},
		{"reports/out.xml", "", errAny},
		{"reports", "", ErrNotRegular},
		{"reports/nope.xml", "", fs.ErrNotExist},
		{"../outside/canary", "", ErrUnsafe},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "out.gz")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = WriteGzip(context.Background(), f, sb.dir, tc.file)
			switch {
			case tc.want == errAny:
				if err == nil {
					t.Fatal("WriteGzip followed a symlink out of root")
				}
				return
			case tc.want != nil:
				if !errors.Is(err, tc.want) {
					t.Fatalf("WriteGzip: %v, want %v", err, tc.want)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(filepath.Join(sb.dir, tc.file))
			if !bytes.Equal(b, want) {
				t.Fatalf("content differs")
			}
			if zr.Name != tc.wantName {
				t.Fatalf("gzip name %q, want %q", zr.Name, tc.wantName)
			}
			if tc.wantName == "junit.xml" && !zr.ModTime.Equal(mtime) {
				t.Fatalf("gzip mtime %v, want %v", zr.ModTime, mtime)
			}
		})
	}
	sb.checkOutside(t)
}

// errAny marks test cases where any error will do, as long as nothing
// outside is read.
var errAny = errors.New("any error")

func BenchmarkWriteZip(b *testing.B) {
	sb := newSandbox(b)
	const n, size = 200, 4 << 10
	var files []string
	for i := range n {
		name := fmt.Sprintf("out/pkg%02d/file%03d.log", i%10, i)
		files = append(files, name)
		var content strings.Builder
		for j := 0; content.Len() < size; j++ {
			fmt.Fprintf(&content, "%04d ok   github.com/example/pkg%d\t0.%03ds coverage: %d.%d%%\n", j, i, j%1000, j%100, i%10)
		}
		tree(b, sb.dir, map[string]string{name: content.String()[:size]})
	}
	b.SetBytes(n * size)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteZip(context.Background(), io.Discard, sb.dir, files); err != nil {
			b.Fatal(err)
		}
	}
}
