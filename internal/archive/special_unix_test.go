//go:build unix

package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestSpecialFiles checks that a FIFO in the build dir is neither collected
// nor opened (opening one for reading would block) when zipped or gzipped.
func TestSpecialFiles(t *testing.T) {
	sb := newSandbox(t)
	tree(t, sb.dir, map[string]string{"f": "x"})
	if err := syscall.Mkfifo(filepath.Join(sb.dir, "fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	files, err := Collect(sb.dir, []string{"**"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(files, []string{"f"}) {
		t.Fatalf("Collect = %q, want only f", files)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	zipped, gzipped := make(chan error, 1), make(chan error, 1)
	var buf bytes.Buffer
	go func() { zipped <- WriteZip(ctx, &buf, sb.dir, []string{"fifo", "f"}) }()
	go func() { gzipped <- WriteGzip(ctx, new(bytes.Buffer), sb.dir, "fifo") }()
	for _, c := range []struct {
		done chan error
		want error
	}{{zipped, nil}, {gzipped, ErrNotRegular}} {
		select {
		case err := <-c.done:
			if c.want == nil && err != nil || !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("blocked on a FIFO")
		}
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "f" {
		t.Fatalf("archive holds %d entries, want only f", len(zr.File))
	}
}
