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

// A memory told that its guest waits gives back the image's pages the
// guest only read, and keeps every page the guest wrote: what the guest
// reads after the wait is what it read and wrote before.
func TestIdleUnmapsSharedPages(t *testing.T) {
	want := make([]byte, 16*pageSize)
	for i := range want {
		want[i] = byte(i%251 + 1)
	}
	img, err := newMemImage(want)
	if err != nil {
		t.Fatal(err)
	}
	defer img.close()
	m := newLinearMemory(resource.NewPool("test", 1<<20, nil), 1<<20, img)
	defer m.Free()
	b := m.Reallocate(32 * pageSize)
	for _, p := range []int{0, 1, 2, 5, 6, 7, 12} {
		readSink += b[p*pageSize] // read: the image's page is mapped
	}
	b[1*pageSize+3], b[6*pageSize], b[7*pageSize+4095], b[20*pageSize] = 0xEE, 0xEE, 0xEE, 0xEE
	shared, err := sharedPages(b[:img.size])
	if err != nil {
		t.Fatal(err)
	}
	// The pages read are shared (with their neighbours, which the kernel
	// maps on the same fault); none written is.
	isShared := map[uint32]bool{}
	for _, r := range shared {
		for p := r.first; p < r.first+r.n; p++ {
			isShared[p] = true
		}
	}
	for _, p := range []uint32{0, 2, 5, 12} {
		if !isShared[p] {
			t.Errorf("page %d was read but is not shared: %v", p, shared)
		}
	}
	for _, p := range []uint32{1, 6, 7} {
		if isShared[p] {
			t.Errorf("page %d was written but is shared: %v", p, shared)
		}
	}
	m.idle()
	if shared, _ := sharedPages(b[:img.size]); len(shared) != 0 {
		t.Errorf("after idle, still shared: %v", shared)
	}
	if copied, _ := copiedPages(b[:img.size]); !slices.Equal(copied, []pageRun{{1, 1}, {6, 2}}) {
		t.Errorf("after idle, copied %v, want the pages written", copied)
	}
	exp := append(bytes.Clone(want), make([]byte, 16*pageSize)...)
	exp[1*pageSize+3], exp[6*pageSize], exp[7*pageSize+4095], exp[20*pageSize] = 0xEE, 0xEE, 0xEE, 0xEE
	if !bytes.Equal(b, exp) {
		t.Error("after idle, the memory is not what the guest left")
	}
	// A guest that wakes, reads and sleeps again soon is not trimmed
	// again before idleInterval: the pages it read stay mapped.
	for p := range 16 {
		readSink += b[p*pageSize]
	}
	m.idle()
	if shared, _ := sharedPages(b[:img.size]); len(shared) == 0 {
		t.Error("a second idle within idleInterval gave pages back")
	}
	// A freed memory is idle no more: nothing to give back, no fault.
	m.Free()
	m.idle()
}

// readSink keeps the reads of a test from being optimized away.
var readSink byte

// A freed memory reset in place is kept warm: the image's hot pages are
// still its own copies, so the next instance gets them without
// populating them again, and reads the image's content in them.
func TestKeptMemoryWarm(t *testing.T) {
	want := bytes.Repeat([]byte{9}, 16*pageSize)
	img, err := newMemImage(want)
	if err != nil {
		t.Fatal(err)
	}
	defer img.close()
	img.hot = []pageRun{{2, 3}}
	pool := resource.NewPool("test", 1<<20, nil)
	m := newLinearMemory(pool, 1<<20, img)
	b := m.Reallocate(16 * pageSize)
	b[3*pageSize], b[10*pageSize] = 1, 1 // a hot page and another
	m.Free()
	if len(img.kept.free) != 1 || !img.kept.free[0].warm {
		t.Fatalf("kept %+v, want one warm memory", img.kept.free)
	}
	m = newLinearMemory(pool, 1<<20, img)
	defer m.Free()
	b = m.Reallocate(16 * pageSize)
	copied, err := copiedPages(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := []pageRun{{2, 3}, {10, 1}}; !slices.Equal(copied, want) {
		t.Errorf("the reused memory's own pages are %v, want %v", copied, want)
	}
	if !bytes.Equal(b, want) {
		t.Error("the reused memory is not the image")
	}
}
