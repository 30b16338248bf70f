package modules

import (
	"bytes"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/wasmrunner/wasmrunner/engine/resource"
)

// A memory that starts from a snapshot's image reads the image; what its
// guest writes (all of it) stays its own: the image, and so the next
// instance, is unchanged. Its growth past the image is zeroes, and it is
// charged as any memory.
func TestImageMemory(t *testing.T) {
	const size = 256 << 10
	want := make([]byte, size)
	for i := range want {
		if i%8192 < 4096 { // every other page is zeroes (a hole of the image)
			want[i] = byte(i*31 + 1)
		}
	}
	img, err := newMemImage(want)
	if err != nil {
		t.Fatal(err)
	}
	defer img.close()
	pool := resource.NewPool("test", 1<<20, nil)
	var prev *byte
	for round := range 6 {
		if round >= 2 { // some pages copied up front, as a probe asks
			img.hot = []pageRun{{0, 3}, {10, 1}}
		}
		m := newLinearMemory(pool, 1<<20, img)
		b := m.Reallocate(64 << 10)
		if b == nil {
			t.Fatal("no memory")
		}
		b = m.Reallocate(size + 64<<10)
		// From the second round on, the memory the previous one freed
		// (and scribbled over) is reused, reset to the image.
		if round > 0 && &b[0] != prev {
			t.Errorf("round %d: the freed memory was not reused", round)
		}
		prev = &b[0]
		if !bytes.Equal(b[:size], want) {
			t.Fatalf("round %d: the memory is not the image", round)
		}
		if i := bytes.IndexFunc(b[size:], func(r rune) bool { return r != 0 }); i >= 0 {
			t.Fatalf("round %d: byte %d past the image is not zero", round, size+i)
		}
		if pool.Used() != size+64<<10 {
			t.Fatalf("charged %d", pool.Used())
		}
		// A guest that writes all of its memory, or some pages here and
		// there (the others stay mapped to the image, read).
		for i := range b {
			if round%2 == 0 || (i/pageSize)%5 == 1 {
				b[i] = 0xA5
			}
		}
		m.Free()
		if pool.Used() != 0 {
			t.Fatalf("after Free, %d charged", pool.Used())
		}
	}
	// The freed memory is kept, its address space counted, until the
	// kept memories are drained (a reservation failed) or the image closes.
	imageKept.mu.Lock()
	kept := imageKept.reserved
	imageKept.mu.Unlock()
	if kept < 1<<20 || len(img.kept.free) != 1 {
		t.Errorf("kept %d bytes in %d regions, want one of 1 MiB", kept, len(img.kept.free))
	}
	drainImages()
	imageKept.mu.Lock()
	kept = imageKept.reserved
	imageKept.mu.Unlock()
	if kept != 0 || len(img.kept.free) != 0 {
		t.Errorf("after drainImages, %d bytes in %d regions kept", kept, len(img.kept.free))
	}
	// Nothing that maps the image can write it.
	if _, err := unix.Pwrite(img.fd, []byte{1}, 0); err == nil {
		t.Error("the image's memfd is writable")
	}
	if _, err := unix.Mmap(img.fd, 0, pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED); err == nil {
		t.Error("the image's memfd maps shared and writable")
	}
}

// copiedPages finds the pages of an image a memory wrote.
func TestCopiedPages(t *testing.T) {
	img, err := newMemImage(bytes.Repeat([]byte{7}, 16*pageSize))
	if err != nil {
		t.Fatal(err)
	}
	defer img.close()
	m := newLinearMemory(resource.NewPool("test", 1<<20, nil), 1<<20, img)
	defer m.Free()
	b := m.Reallocate(16 * pageSize)
	_ = b[0] + b[5*pageSize] // read (shared, not copied)
	b[3*pageSize+9], b[4*pageSize], b[9*pageSize+4095] = 1, 1, 1
	runs, err := copiedPages(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []pageRun{{3, 2}, {9, 1}}; !slices.Equal(runs, want) {
		t.Errorf("copied %v, want %v", runs, want)
	}
}
