package modules

import (
	"context"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmrunner/wasmrunner/engine/resource"
)

// withMemory returns ctx with a memory allocator for the instances made
// with it: each linear memory is charged, as it grows, to pool (the
// instance's memory limit, whose parent is the process's guest memory
// budget). A growth the pool refuses makes memory.grow return -1, as one
// past the memory limit does.
func withMemory(ctx context.Context, pool *resource.Pool) context.Context {
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(capacity, max uint64) experimental.LinearMemory {
		return newLinearMemory(pool, max)
	}))
}

// linearMemory is a guest's linear memory. Its backing (see region) is
// reserved for the memory's maximum at once, so growing never copies, and
// touched pages are given back to the system as soon as it is freed.
type linearMemory struct {
	pool *resource.Pool
	r    region // nil when the reservation failed
	used uint64 // bytes charged to pool and handed to the guest
}

func newLinearMemory(pool *resource.Pool, max uint64) *linearMemory {
	r, _ := reserve(max)
	return &linearMemory{pool: pool, r: r}
}

// Reallocate implements experimental.LinearMemory.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if m.r == nil || size > uint64(len(m.r.bytes())) {
		return nil
	}
	if size > m.used {
		if !m.pool.TakeAll(int64(size - m.used)) {
			return nil
		}
		m.used = size
	}
	return m.r.bytes()[:size]
}

// Free implements experimental.LinearMemory.
func (m *linearMemory) Free() {
	if m.r != nil {
		m.r.release()
		m.r = nil
	}
	m.pool.Give(int64(m.used))
	m.used = 0
}
