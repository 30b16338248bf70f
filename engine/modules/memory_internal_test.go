package modules

import (
	"bytes"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine/resource"
)

// A memory kept for reuse is zero when the next instance gets it: no byte
// of one job's guest memory reaches the next.
func TestReusedMemoryIsZero(t *testing.T) {
	const max = 8 << 20
	pool := resource.NewPool("test", max, nil)
	for round := 0; round < 3; round++ {
		m := newLinearMemory(pool, max, nil)
		prev := 0
		for _, size := range []uint64{65536, 3 << 20} {
			b := m.Reallocate(size)
			if len(b) != int(size) {
				t.Fatalf("round %d: Reallocate(%d) gave %d bytes", round, size, len(b))
			}
			if i := bytes.IndexFunc(b[prev:], func(r rune) bool { return r != 0 }); i >= 0 {
				t.Fatalf("round %d: byte %d of new memory is not zero", round, prev+i)
			}
			for i := range b {
				b[i] = 0xA5
			}
			prev = len(b)
		}
		if pool.Used() != 3<<20 {
			t.Fatalf("charged %d", pool.Used())
		}
		m.Free()
		if pool.Used() != 0 {
			t.Fatalf("after Free, %d charged", pool.Used())
		}
	}
}

// Growth the pool refuses is refused, and the memory keeps its size.
func TestMemoryGrowthCharged(t *testing.T) {
	proc := resource.NewPool("process", 1<<20, nil)
	job := resource.NewPool("job", 4<<20, proc)
	m := newLinearMemory(job, 4<<20, nil)
	defer m.Free()
	if b := m.Reallocate(1 << 20); len(b) != 1<<20 {
		t.Fatal("within the budget")
	}
	if b := m.Reallocate(2 << 20); b != nil {
		t.Fatal("grew past the process's budget")
	}
	if by, ok := job.Refused(); !ok || by != proc {
		t.Fatalf("refused by %v", by)
	}
	if b := m.Reallocate(8 << 20); b != nil {
		t.Fatal("grew past the reservation")
	}
}
