package archive

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExtractHostile extracts hostile archives: each must fail with the
// given error, leave dir as listed and never touch anything outside.
func TestExtractHostile(t *testing.T) {
	long := "../" + strings.Repeat("a", 5000)
	tests := []struct {
		name string
		ents []zent
		want error
		tree []string // dir afterwards
	}{
		{"zip slip", []zent{file("ok", "x"), file("../evil", "x")}, ErrUnsafe, nil},
		{"zip slip to canary", []zent{file("../outside/canary", "pwned")}, ErrUnsafe, nil},
		{"absolute", []zent{file("/abs/evil", "x")}, ErrUnsafe, nil},
		{"escape after cleaning", []zent{file("a/../../evil", "x")}, ErrUnsafe, nil},
		{"dot-dot inside", []zent{file("a/../b", "x")}, ErrUnsafe, nil},
		{"dot-dot directory", []zent{dirEntry("../")}, ErrUnsafe, nil},
		{"backslash", []zent{file(`..\evil`, "x")}, ErrUnsafe, nil},
		{"backslash inside", []zent{file(`a\..\..\evil`, "x")}, ErrUnsafe, nil},
		{"NUL", []zent{file("evil\x00.txt", "x")}, ErrUnsafe, nil},
		{"empty name", []zent{file("", "x")}, ErrUnsafe, nil},
		{"file named like dir", []zent{file(".", "x")}, ErrUnsafe, nil},
		{"symlink escape then write through it", []zent{symlink("link", "../../etc"), file("link/passwd", "x")}, ErrUnsafe, nil},
		{"symlink to outside", []zent{symlink("link", "../outside")}, ErrUnsafe, nil},
		{"symlink to outside file", []zent{symlink("a/b/link", "../../../outside/canary")}, ErrUnsafe, nil},
		{"absolute symlink", []zent{symlink("link", "/etc")}, ErrUnsafe, nil},
		{"absolute symlink into dir", []zent{symlink("link", "/tmp")}, ErrUnsafe, nil},
		{"symlink dot-dot after name", []zent{symlink("d/u", ".."), symlink("t", "d/u/..")}, ErrUnsafe, nil},
		{"symlink with backslash", []zent{symlink("link", `..\..\etc`)}, ErrUnsafe, nil},
		{"empty symlink", []zent{symlink("link", "")}, ErrUnsafe, nil},
		{"long symlink", []zent{symlink("link", strings.Repeat("a/", 3000))}, ErrUnsafe, nil},
		{"entry under inside symlink", []zent{dirEntry("sub/"), symlink("l", "sub"), file("l/x", "x")}, ErrUnsafe, nil},
		{"entry under symlink, link last", []zent{file("l/x", "x"), symlink("l", "sub")}, ErrUnsafe, nil},
		{"long name", []zent{file(long, "x")}, ErrUnsafe, nil},
		{"unsafe entry last", []zent{file("a", "1"), file("b/c", "2"), file("../z", "3")}, ErrUnsafe, nil},
		{"symlink inside is fine", []zent{file("f.txt", "hi"), symlink("sub/l", "../f.txt"), symlink("self", ".")},
			nil, []string{"f.txt", "self -> .", "sub/", "sub/l -> ../f.txt"}},
		{"dangling symlink inside is fine", []zent{symlink("a/l", "../not/yet")}, nil, []string{"a/", "a/l -> ../not/yet"}},
		{"symlink replaced by file", []zent{file("f.txt", "orig"), symlink("l", "f.txt"), file("l", "new")},
			nil, []string{"f.txt", "l"}},
		{"setuid dropped", []zent{withMode(file("suid", "x"), fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky|0o755)}, nil, []string{"suid"}},
		{"device skipped", []zent{withMode(file("dev", ""), fs.ModeDevice|0o644), withMode(file("fifo", ""), fs.ModeNamedPipe|0o644)}, nil, nil},
		{"dot dirs", []zent{dirEntry("./"), dirEntry("a/./b/"), file("./c", "x")}, nil, []string{"a/", "a/b/", "c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := newSandbox(t)
			err := extractFile(t, makeZip(t, tc.ents...), sb.dir, DefaultLimits())
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Extract: %v, want %v", err, tc.want)
			}
			if err != nil && len(err.Error()) > 400 {
				t.Fatalf("error of %d bytes: %.100s...", len(err.Error()), err)
			}
			if got := listTree(t, sb.dir); !slices.Equal(got, tc.tree) {
				t.Fatalf("dir holds %q, want %q", got, tc.tree)
			}
			sb.checkOutside(t)
		})
	}
}

// TestExtractResults checks what the allowed cases above created.
func TestExtractResults(t *testing.T) {
	sb := newSandbox(t)
	ents := []zent{
		file("f.txt", "orig"), symlink("sub/l", "../f.txt"), symlink("l", "f.txt"), file("l", "new"),
		withMode(file("suid", "x"), fs.ModeSetuid|0o4755), withMode(file("ro", "r"), 0o400),
	}
	if err := extractFile(t, makeZip(t, ents...), sb.dir, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(sb.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("sub/l"); got != "orig" {
		t.Errorf("sub/l reads %q, want orig", got)
	}
	if got := read("f.txt"); got != "orig" {
		t.Errorf("f.txt is %q: written through the symlink l", got)
	}
	if got := read("l"); got != "new" {
		t.Errorf("l is %q, want new", got)
	}
	for name, want := range map[string]fs.FileMode{"suid": 0o755, "ro": 0o400, "l": 0o644} {
		fi, err := os.Lstat(filepath.Join(sb.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), want)
		}
	}
	// Extracting again overwrites, read-only files included.
	if err := extractFile(t, makeZip(t, ents...), sb.dir, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	sb.checkOutside(t)
}

// TestExtractExisting extracts into a dir that already holds symlinks and
// hard links to outside, as a hostile job could leave it.
func TestExtractExisting(t *testing.T) {
	tests := []struct {
		name string
		ents []zent
		want error
	}{
		{"write under symlink to outside dir", []zent{file("x/file", "pwned")}, ErrUnsafe},
		{"directory under symlink", []zent{dirEntry("x/sub/")}, ErrUnsafe},
		{"symlink under symlink", []zent{symlink("x/l", "y")}, ErrUnsafe},
		{"write deep under symlink", []zent{file("x/a/b/c", "pwned")}, ErrUnsafe},
		{"replace symlink to outside dir", []zent{file("x", "mine")}, nil},
		{"replace symlink to outside file", []zent{file("y", "mine")}, nil},
		{"replace hard link to outside file", []zent{file("h", "mine")}, nil},
		{"replace symlink with symlink", []zent{symlink("y", "h")}, nil},
		{"directory over symlink", []zent{dirEntry("x/")}, ErrUnsafe},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := newSandbox(t)
			if err := os.Symlink(sb.outside, filepath.Join(sb.dir, "x")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(sb.outside, "canary"), filepath.Join(sb.dir, "y")); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(filepath.Join(sb.outside, "canary"), filepath.Join(sb.dir, "h")); err != nil {
				t.Fatal(err)
			}
			err := extractFile(t, makeZip(t, tc.ents...), sb.dir, DefaultLimits())
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Extract: %v, want %v", err, tc.want)
			}
			if err == nil {
				e := tc.ents[0]
				p := filepath.Join(sb.dir, e.name)
				if e.mode&fs.ModeSymlink != 0 {
					if got, _ := os.Readlink(p); got != e.body {
						t.Fatalf("%s links to %q, want %q", e.name, got, e.body)
					}
				} else if b, err := os.ReadFile(p); err != nil || string(b) != e.body {
					t.Fatalf("%s holds %q, %v; want %q", e.name, b, err, e.body)
				}
			}
			sb.checkOutside(t)
		})
	}
}

// bomb returns a zip with one entry of n zero bytes, declaring size as its
// uncompressed size (n if size < 0).
func bomb(t testing.TB, n, size int64) []byte {
	t.Helper()
	var data bytes.Buffer
	fw, err := flate.NewWriter(&data, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<16)
	crc := crc32.NewIEEE()
	for left := n; left > 0; {
		k := min(left, int64(len(zeros)))
		fw.Write(zeros[:k])
		crc.Write(zeros[:k])
		left -= k
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if size < 0 {
		size = n
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{
		Name: "bomb", Method: zip.Deflate, CRC32: crc.Sum32(),
		CompressedSize64: uint64(data.Len()), UncompressedSize64: uint64(size),
	}
	h.SetMode(0o644)
	w, err := zw.CreateRaw(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractLimits(t *testing.T) {
	many := make([]zent, 30)
	for i := range many {
		many[i] = file(fmt.Sprintf("f%02d", i), "x")
	}
	mib := strings.Repeat("m", 1<<20)
	small := Limits{MaxFiles: 20, MaxFileSize: 1 << 20, MaxTotalSize: 3 << 20}
	tests := []struct {
		name string
		data func(t *testing.T) []byte
		lim  Limits
		want error
	}{
		{"bomb", func(t *testing.T) []byte { return bomb(t, 16<<20, -1) }, small, ErrTooLarge},
		{"bomb with lying header", func(t *testing.T) []byte { return bomb(t, 16<<20, 100) }, small, zip.ErrFormat},
		{"too many files", func(t *testing.T) []byte { return makeZip(t, many...) }, small, ErrTooLarge},
		{"too much in all", func(t *testing.T) []byte {
			return makeZip(t, file("a", mib), file("b", mib), file("c", mib), file("d", mib))
		}, small, ErrTooLarge},
		{"at the limits", func(t *testing.T) []byte {
			return makeZip(t, file("a", mib), file("b", mib), file("c", mib))
		}, Limits{MaxFiles: 3, MaxFileSize: 1 << 20, MaxTotalSize: 3 << 20}, nil},
		{"zero limits are defaults", func(t *testing.T) []byte { return makeZip(t, many...) }, Limits{}, nil},
		{"too many implied directories", func(t *testing.T) []byte {
			var ents []zent
			for i := range 10 {
				ents = append(ents, file(fmt.Sprintf("d%d/a/b/c/f", i), "x"))
			}
			return makeZip(t, ents...)
		}, small, ErrTooLarge},
		{"deep path", func(t *testing.T) []byte {
			return makeZip(t, file(strings.Repeat("a/", 1500)+"f", "deep"), file(strings.Repeat("a/", 1499)+"g", "deep"))
		}, Limits{MaxFiles: 1500, MaxFileSize: 10, MaxTotalSize: 10}, nil},
		{"name too long", func(t *testing.T) []byte {
			return makeZip(t, file(strings.Repeat("a/", 2100)+"f", "deep"))
		}, small, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := newSandbox(t)
			err := extractFile(t, tc.data(t), sb.dir, tc.lim)
			if tc.want == nil && err != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Extract: %.300v, want %v", err, tc.want)
			}
			if err != nil {
				// Nothing too large stays behind.
				for _, name := range listTree(t, sb.dir) {
					if fi, err := os.Lstat(filepath.Join(sb.dir, name)); err == nil && fi.Size() > tc.lim.MaxFileSize {
						t.Fatalf("%s: %d bytes on disk", name, fi.Size())
					}
				}
			}
			sb.checkOutside(t)
		})
	}
}

// TestExtractCountsBytes checks that Extract counts the bytes it writes,
// not trusting the declared sizes (which archive/zip enforces too, so the
// limits are lowered after the declared sizes were checked).
func TestExtractCountsBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		lim  Limits
	}{
		{"file", Limits{MaxFiles: 10, MaxFileSize: 1 << 20, MaxTotalSize: 1 << 30}},
		{"total", Limits{MaxFiles: 10, MaxFileSize: 1 << 30, MaxTotalSize: 1 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sb := newSandbox(t)
			data := bomb(t, 4<<20, -1)
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			entries, err := plan(zr, DefaultLimits())
			if err != nil {
				t.Fatal(err)
			}
			root, err := os.OpenRoot(sb.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			x := &extractor{root: root, lim: tc.lim, dirs: map[string]bool{}, buf: make([]byte, copyBuffer), cr: ctxReader{ctx: context.Background()}}
			if err := x.extract(entries[0]); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("extract: %v, want %v", err, ErrTooLarge)
			}
			if got := listTree(t, sb.dir); len(got) != 0 {
				t.Fatalf("dir holds %q after a failed extraction", got)
			}
		})
	}
}

func TestExtractNotZip(t *testing.T) {
	valid := makeZip(t, file("a", "hello"))
	tests := map[string][]byte{
		"empty":     nil,
		"text":      []byte("this is not a zip file at all, just text"),
		"truncated": valid[:len(valid)-10],
		"gzip":      {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3},
		"only end":  valid[len(valid)-22:],
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			sb := newSandbox(t)
			err := extractFile(t, data, sb.dir, DefaultLimits())
			if !errors.Is(err, ErrNotZip) {
				t.Fatalf("Extract: %v, want %v", err, ErrNotZip)
			}
			sb.checkOutside(t)
		})
	}
}

func TestExtractCanceled(t *testing.T) {
	sb := newSandbox(t)
	data := makeZip(t, file("a", "x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Extract(ctx, bytes.NewReader(data), int64(len(data)), sb.dir, DefaultLimits())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Extract: %v, want %v", err, context.Canceled)
	}
	if got := listTree(t, sb.dir); len(got) != 0 {
		t.Fatalf("dir holds %q", got)
	}
}

func TestExtractErrorNamesEntry(t *testing.T) {
	tests := []struct{ name, quoted string }{
		{"../evil\n\x1b[31m", `"../evil\n\x1b[31m"`},
		{"../" + strings.Repeat("é", 1000), `"../éé`},
	}
	for _, tc := range tests {
		sb := newSandbox(t)
		err := extractFile(t, makeZip(t, file(tc.name, "x")), sb.dir, DefaultLimits())
		if !errors.Is(err, ErrUnsafe) {
			t.Fatalf("Extract: %v, want %v", err, ErrUnsafe)
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.quoted) {
			t.Fatalf("error %q does not name the entry as %s", msg, tc.quoted)
		}
		if len(msg) > 300 || strings.ContainsAny(msg, "\n\x1b") {
			t.Fatalf("error of %d bytes, or with control characters: %q", len(msg), msg)
		}
	}
}

// FuzzExtract extracts arbitrary bytes and mutated archives: Extract must
// not panic, must not create or change anything outside dir, and every
// symlink it creates must resolve inside dir.
func FuzzExtract(f *testing.F) {
	f.Add([]byte("not a zip"))
	f.Add(makeZip(f, file("a/b.txt", "hello"), dirEntry("c/"), symlink("c/l", "../a/b.txt")))
	f.Add(makeZip(f, symlink("d/u", ".."), symlink("t", "d/u/..")))
	f.Add(makeZip(f, symlink("l", "sub"), file("l/x", "x")))
	f.Add(makeZip(f, file("../outside/canary", "pwned")))
	f.Add(makeZip(f, symlink("l", "../outside"), file("l/canary", "pwned")))
	f.Add(makeZip(f, withMode(file("s", "x"), fs.ModeSetuid|0o777), file("a/../b", "y")))
	f.Add(bomb(f, 1<<20, 10))
	f.Fuzz(func(t *testing.T, data []byte) {
		sb := newSandbox(t)
		realDir, err := filepath.EvalSymlinks(sb.dir)
		if err != nil {
			t.Fatal(err)
		}
		lim := Limits{MaxFiles: 64, MaxFileSize: 1 << 20, MaxTotalSize: 4 << 20}
		_ = Extract(context.Background(), bytes.NewReader(data), int64(len(data)), sb.dir, lim)
		sb.checkOutside(t)
		var total int64
		err = filepath.WalkDir(sb.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
				t.Fatalf("%s: mode %v", p, fi.Mode())
			}
			if fi.Mode().IsRegular() {
				total += fi.Size()
			}
			if d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			base, resolved := realDir, ""
			if resolved, err = filepath.EvalSymlinks(p); err != nil {
				// Dangling, or a loop: resolve lexically.
				base, resolved = sb.dir, filepath.Join(filepath.Dir(p), target)
			}
			if rel, err := filepath.Rel(base, resolved); err != nil || !filepath.IsLocal(rel) {
				t.Fatalf("symlink %s -> %s resolves to %s, outside dir", p, target, resolved)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if total > lim.MaxTotalSize {
			t.Fatalf("%d bytes extracted, more than %d", total, lim.MaxTotalSize)
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	const n, size = 200, 4 << 10
	var ents []zent
	for i := range n {
		var content strings.Builder
		for j := 0; content.Len() < size; j++ {
			fmt.Fprintf(&content, "%04d ok   github.com/example/pkg%d\t0.%03ds coverage: %d.%d%%\n", j, i, j%1000, j%100, i%10)
		}
		ents = append(ents, file(fmt.Sprintf("out/pkg%02d/file%03d.log", i%10, i), content.String()[:size]))
	}
	data := makeZip(b, ents...)
	p := filepath.Join(b.TempDir(), "a.zip")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	dir := b.TempDir()
	b.SetBytes(n * size)
	b.ReportAllocs()
	for b.Loop() {
		if err := Extract(context.Background(), f, int64(len(data)), dir, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
	}
}

// testBudget is a Budget of fixed bytes and entries.
type testBudget struct{ bytes, entries, usedBytes, usedEntries int64 }

func (b *testBudget) Take(bytes, entries int64) error {
	if b.usedBytes+bytes > b.bytes || b.usedEntries+entries > b.entries {
		return errors.New("over the test budget")
	}
	b.usedBytes += bytes
	b.usedEntries += entries
	return nil
}

func (b *testBudget) Give(bytes, entries int64) {
	b.usedBytes -= bytes
	b.usedEntries -= entries
}

func TestExtractBudget(t *testing.T) {
	tests := []struct {
		name           string
		ents           []zent
		bytes, entries int64
		wantErr        bool
		wantBytes      int64
		wantEntries    int64
	}{
		{name: "fits", ents: []zent{file("a/b.txt", "12345"), symlink("a/l", "b.txt")}, bytes: 10, entries: 3, wantBytes: 10, wantEntries: 3},
		{name: "bytes over", ents: []zent{file("a.txt", "123456")}, bytes: 5, entries: 10, wantErr: true},
		{name: "entries over", ents: []zent{file("a/b/c/d.txt", "1")}, bytes: 10, entries: 3, wantErr: true, wantBytes: 0, wantEntries: 3},
		{name: "replaced file refunds", ents: []zent{file("a.txt", "12345"), file("a.txt", "123")}, bytes: 8, entries: 1, wantBytes: 3, wantEntries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t)
			b := &testBudget{bytes: tt.bytes, entries: tt.entries}
			lim := DefaultLimits()
			lim.Budget = b
			err := extractFile(t, makeZip(t, tt.ents...), sb.dir, lim)
			if tt.wantErr {
				if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "over the test budget") {
					t.Fatalf("err = %v, want ErrTooLarge naming the budget", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !tt.wantErr || tt.wantEntries != 0 {
				if b.usedBytes != tt.wantBytes || b.usedEntries != tt.wantEntries {
					t.Fatalf("charged %d bytes, %d entries; want %d, %d", b.usedBytes, b.usedEntries, tt.wantBytes, tt.wantEntries)
				}
			}
			if b.usedBytes > b.bytes || b.usedEntries > b.entries {
				t.Fatalf("over budget: %+v", b)
			}
			sb.checkOutside(t)
		})
	}
}
