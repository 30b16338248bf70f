package modules

import (
	"context"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmrunner/wasmrunner/engine/resource"
)

// withMemory returns ctx with a memory allocator for the instances made
// with it: each linear memory is charged, as it grows, to pool (the
// instance's memory limit, whose parent is the process's guest memory
// budget). A growth the pool refuses makes memory.grow return -1, as one
// past the memory limit does. With an image (a snapshot's memory), the
// memory's first img.size bytes are the image's, copy-on-write. made, if
// set, is told of each memory made.
func withMemory(ctx context.Context, pool *resource.Pool, img *memImage, made func(*linearMemory)) context.Context {
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
		m := newLinearMemory(pool, max, img)
		if made != nil {
			made(m)
		}
		return m
	}))
}

// linearMemory is a guest's linear memory. Its backing (see region) is
// reserved for the memory's maximum at once, so growing never copies; when
// it is freed, the backing is zeroed and kept for the next instance (see
// regions), which saves the page faults a fresh mapping costs. A memory
// that starts from a snapshot's image is a reservation with the image
// mapped over its start; when it is freed, its pages are reset to the
// image's (and zeroes past it) and it is kept for the image's next
// instance (see imageRegions), never for another image's or a plain
// memory.
type linearMemory struct {
	pool    *resource.Pool
	mu      sync.Mutex // guards r and trimmed against idle while Free runs
	r       region     // nil when the reservation failed or once freed
	trimmed time.Time  // when idle last gave pages back
	used    uint64     // bytes charged to pool and handed to the guest
	img     *memImage  // r starts with this snapshot's image
}

func newLinearMemory(pool *resource.Pool, max uint64, img *memImage) *linearMemory {
	// The pool's limit (the handler's limits.memory) bounds the memory
	// before wazero's (4 GiB): reserve no more than it allows.
	if l := pool.Limit(); l > 0 && uint64(l) < max {
		max = uint64(l) &^ 0xffff
	}
	if img != nil {
		r, warm := img.kept.get(max)
		if r == nil {
			var err error
			if r, err = reserve(max); err != nil {
				regions.drain()
				drainImages()
				if r, err = reserve(max); err != nil {
					return &linearMemory{pool: pool}
				}
			}
			if err := r.mapImage(img); err != nil {
				r.release()
				return &linearMemory{pool: pool}
			}
		}
		if !warm {
			r.populate(img.hot)
		}
		return &linearMemory{pool: pool, r: r, img: img}
	}
	r := regions.get(max)
	if r == nil {
		var err error
		if r, err = reserve(max); err != nil {
			// Out of address space: the kept memories go first.
			regions.drain()
			drainImages()
			r, _ = reserve(max)
		}
	}
	return &linearMemory{pool: pool, r: r}
}

// Reallocate implements experimental.LinearMemory.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if m.r == nil {
		return nil
	}
	if size > m.used {
		// The pool first, so that a refusal is recorded (and said in the
		// job log), then the reservation, which the pool's limit bounds.
		if !m.pool.TakeAll(int64(size - m.used)) {
			return nil
		}
		if size > uint64(len(m.r.bytes())) {
			m.pool.Give(int64(size - m.used))
			return nil
		}
		m.used = size
	}
	return m.r.bytes()[:size]
}

// idle gives back the image's pages the guest only read (see
// region.unmapShared): its guest is about to wait, and a waiting job
// should hold only the pages that are its own. They are the image's, the
// same for every instance, so reading them again (after the wait) maps
// them again, at the cost of a page fault each.
//
// At most once per idleInterval: a guest that sleeps a second in a loop
// would otherwise make the host read its page map and madvise (a TLB
// flush of the process's threads) every second, and fault the pages back
// in between.
func (m *linearMemory) idle() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.r == nil || m.img == nil || (!m.trimmed.IsZero() && time.Since(m.trimmed) < idleInterval) {
		return
	}
	m.trimmed = time.Now()
	m.r.unmapShared(m.img)
}

// idleInterval is the shortest time between two idle trims of a memory.
const idleInterval = 30 * time.Second

// Free implements experimental.LinearMemory.
func (m *linearMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.r != nil && m.img != nil:
		m.img.kept.put(m.r, m.img, max(m.used, m.img.size))
	case m.r != nil:
		regions.put(m.r, m.used)
	}
	m.r = nil
	m.pool.Give(int64(m.used))
	m.used = 0
}

// Keeping freed memories for reuse: at most keptRegions of them, holding
// at most keptReserved bytes of address space in all, and of each only the
// first keptResident bytes stay resident (zeroed); the rest is given back
// to the system.
const (
	keptRegions  = 64
	keptReserved = 2 << 30
	keptResident = 1 << 20
)

// regionCache holds freed memories by size, ready for the next instance.
type regionCache struct {
	mu       sync.Mutex
	free     map[uint64][]region
	n        int
	reserved uint64
}

var regions = &regionCache{free: map[uint64][]region{}}

// get returns a zeroed region of size bytes, or nil.
func (c *regionCache) get(size uint64) region {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := c.free[size]
	if len(rs) == 0 {
		return nil
	}
	r := rs[len(rs)-1]
	c.free[size] = rs[:len(rs)-1]
	c.n--
	c.reserved -= size
	return r
}

// drain releases every kept region.
func (c *regionCache) drain() {
	c.mu.Lock()
	free := c.free
	c.free, c.n, c.reserved = map[uint64][]region{}, 0, 0
	c.mu.Unlock()
	for _, rs := range free {
		for _, r := range rs {
			r.release()
		}
	}
}

// put zeroes the first used bytes of r and keeps it, or releases it when
// enough are kept.
func (c *regionCache) put(r region, used uint64) {
	b := r.bytes()
	keep := min(used, keptResident, uint64(len(b)))
	if used > keep && !r.discard(keep, used) {
		r.release()
		return
	}
	clear(b[:keep])
	size := uint64(len(b))
	c.mu.Lock()
	if c.n < keptRegions && c.reserved+size <= keptReserved {
		c.free[size] = append(c.free[size], r)
		c.n++
		c.reserved += size
		r = nil
	}
	c.mu.Unlock()
	if r != nil {
		r.release()
	}
}

// keptImageRegions bounds the freed memories kept per snapshot image, and
// keptImageReserved the address space they hold for all images.
const (
	keptImageRegions  = 8
	keptImageReserved = 1 << 30
)

// imageKept is the address space the kept memories of all images hold,
// and the images that keep some (to drain them when a reservation
// fails).
var imageKept struct {
	mu       sync.Mutex
	reserved uint64
	images   map[*imageRegions]bool
}

// drainImages releases the memories every image keeps.
func drainImages() {
	imageKept.mu.Lock()
	var all []*imageRegions
	for k := range imageKept.images {
		all = append(all, k)
	}
	imageKept.mu.Unlock()
	for _, k := range all {
		k.drain()
	}
}

// imageRegions are freed memories of one snapshot's instances, reset to
// the image, ready for the next.
type imageRegions struct {
	mu     sync.Mutex
	free   []keptRegion
	closed bool
}

// keptRegion is a freed memory reset to its image. warm: the pages it
// had copied were reset in place and are still its own, so the image's
// hot pages (which every instance had copied up front) need no
// populating again (19 madvise calls for a Go instance).
type keptRegion struct {
	r    region
	warm bool
}

// get returns a kept region of size bytes, or nil, and whether it is
// warm (see keptRegion).
func (k *imageRegions) get(size uint64) (region, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i := len(k.free) - 1; i >= 0; i-- {
		if kr := k.free[i]; uint64(len(kr.r.bytes())) == size {
			k.free = append(k.free[:i], k.free[i+1:]...)
			imageKept.mu.Lock()
			imageKept.reserved -= size
			imageKept.mu.Unlock()
			return kr.r, kr.warm
		}
	}
	return nil, false
}

// put resets the first used bytes of r to img (resetImage) and keeps it,
// or releases it when enough are kept, the image is closed or the reset
// fails.
func (k *imageRegions) put(r region, img *memImage, used uint64) {
	if ok, warm := resetImage(r, img, used); ok {
		size := uint64(len(r.bytes()))
		k.mu.Lock()
		imageKept.mu.Lock()
		if !k.closed && len(k.free) < keptImageRegions && imageKept.reserved+size <= keptImageReserved {
			k.free = append(k.free, keptRegion{r, warm})
			r = nil
			imageKept.reserved += size
			if imageKept.images == nil {
				imageKept.images = map[*imageRegions]bool{}
			}
			imageKept.images[k] = true
		}
		imageKept.mu.Unlock()
		k.mu.Unlock()
	}
	if r != nil {
		r.release()
	}
}

// drain releases the kept regions.
func (k *imageRegions) drain() {
	k.mu.Lock()
	free := k.free
	k.free = nil
	imageKept.mu.Lock()
	for _, kr := range free {
		imageKept.reserved -= uint64(len(kr.r.bytes()))
	}
	delete(imageKept.images, k)
	imageKept.mu.Unlock()
	k.mu.Unlock()
	for _, kr := range free {
		kr.r.release()
	}
}

// close releases the kept regions; none is kept after.
func (k *imageRegions) close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.drain()
}
