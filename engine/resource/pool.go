package resource

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Pool is an amount (bytes, entries, descriptors) that users take from and
// give back to. It is bounded by its own limit and, when it has a parent,
// by the parent's room too: a job's pool draws from the process's, so
// neither bound can be passed. A Pool is safe for concurrent use.
//
// A Pool never goes below zero, and it refuses to take back more than was
// taken from it: a user that gives back too much cannot raise another
// user's room.
type Pool struct {
	name   string
	limit  int64 // < 0: no limit of its own
	parent *Pool

	used    atomic.Int64
	refused atomic.Int64 // takes cut short
	// refusedBy is the pool whose limit last cut a take short: this one
	// or an ancestor.
	refusedBy atomic.Pointer[Pool]
}

// Unlimited is the limit of a Pool bounded only by its parent.
const Unlimited = -1

// NewPool returns a pool named name (it appears in refusals, e.g. "disk
// limit") holding limit units, or [Unlimited]; parent may be nil.
func NewPool(name string, limit int64, parent *Pool) *Pool {
	if limit < 0 {
		limit = Unlimited
	}
	return &Pool{name: name, limit: limit, parent: parent}
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Limit returns the pool's own limit, or [Unlimited].
func (p *Pool) Limit() int64 { return p.limit }

// Used returns the units taken and not given back.
func (p *Pool) Used() int64 { return p.used.Load() }

// Free returns the units that can still be taken, its parents' room
// included; -1 when nothing bounds it.
func (p *Pool) Free() int64 {
	free := int64(-1)
	for q := p; q != nil; q = q.parent {
		if q.limit < 0 {
			continue
		}
		f := max(q.limit-q.used.Load(), 0)
		if free < 0 || f < free {
			free = f
		}
	}
	return free
}

// Take reserves up to n units and returns how many it reserved (0..n).
// When it reserves fewer than n, the pool records which limit refused them
// (see [Pool.Refused]).
func (p *Pool) Take(n int64) int64 {
	if p == nil {
		return n
	}
	if n <= 0 {
		return 0
	}
	got := p.takeOwn(n)
	if got > 0 && p.parent != nil {
		fromParent := p.parent.Take(got)
		if fromParent < got {
			p.used.Add(-(got - fromParent))
			by := p.parent.refusedBy.Load()
			if by == nil {
				by = p.parent
			}
			p.refusedBy.Store(by)
		}
		got = fromParent
	}
	if got < n {
		p.refused.Add(1)
	}
	return got
}

// takeOwn reserves up to n units of the pool's own limit.
func (p *Pool) takeOwn(n int64) int64 {
	for {
		u := p.used.Load()
		g := n
		if p.limit >= 0 {
			g = min(n, p.limit-u)
		}
		if g < n {
			p.refusedBy.Store(p)
		}
		if g <= 0 {
			return 0
		}
		if p.used.CompareAndSwap(u, u+g) {
			return g
		}
	}
}

// TakeAll reserves n units or none, reporting whether it did.
func (p *Pool) TakeAll(n int64) bool {
	if p == nil || n <= 0 {
		return true
	}
	got := p.Take(n)
	if got < n {
		p.Give(got)
		return false
	}
	return true
}

// Give returns n units taken earlier. Giving back more than is in use
// gives back only what is.
func (p *Pool) Give(n int64) {
	if p == nil || n <= 0 {
		return
	}
	for {
		u := p.used.Load()
		g := min(n, u)
		if g <= 0 {
			return
		}
		if p.used.CompareAndSwap(u, u-g) {
			p.parent.Give(g)
			return
		}
	}
}

// Refused reports whether a take was ever cut short, and the pool whose
// limit did it (this pool or an ancestor, e.g. the process's budget).
func (p *Pool) Refused() (by *Pool, ok bool) {
	if p == nil || p.refused.Load() == 0 {
		return nil, false
	}
	by = p.refusedBy.Load()
	if by == nil {
		by = p
	}
	return by, true
}

// Refusals returns how many takes were cut short.
func (p *Pool) Refusals() int64 {
	if p == nil {
		return 0
	}
	return p.refused.Load()
}

// Slots bounds how many of something exist at once (jobs, instances,
// compilations); acquiring blocks until one is free. Slots is safe for
// concurrent use.
type Slots struct {
	name string
	ch   chan struct{}
}

// NewSlots returns n slots named name (n < 1 means 1).
func NewSlots(name string, n int) *Slots {
	return &Slots{name: name, ch: make(chan struct{}, max(n, 1))}
}

// Name returns the slots' name.
func (s *Slots) Name() string { return s.name }

// Cap returns the number of slots.
func (s *Slots) Cap() int { return cap(s.ch) }

// InUse returns the slots taken.
func (s *Slots) InUse() int { return len(s.ch) }

// Acquire takes a slot, waiting until one is free or ctx ends (then it
// returns ctx's cause).
func (s *Slots) Acquire(ctx context.Context) error {
	select {
	case s.ch <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s: %w", s.name, context.Cause(ctx))
	}
}

// AcquireOr takes a slot, waiting until one is free or done is closed;
// it reports whether it took one.
func (s *Slots) AcquireOr(done <-chan struct{}) bool {
	select {
	case s.ch <- struct{}{}:
		return true
	case <-done:
		return false
	}
}

// TryAcquire takes a slot if one is free.
func (s *Slots) TryAcquire() bool {
	select {
	case s.ch <- struct{}{}:
		return true
	default:
		return false
	}
}

// Release frees a slot taken earlier.
func (s *Slots) Release() { <-s.ch }
