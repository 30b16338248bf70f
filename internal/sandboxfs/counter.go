//go:build unix

package sandboxfs

import "sync/atomic"

// Counter is a bounded amount the FS draws from, possibly shared with other
// users (a job's budget and the process's).
//
// An FS draws bytes ([WithBytes]), directory entries ([WithEntries]) and open
// descriptors ([WithOpenFiles]) from counters, and keeps a ledger of what it
// holds of each ([FS.Used], [FS.Entries], [FS.OpenFiles]). It only gives back
// what its ledger holds: over its whole life, an FS never gives a counter more
// than it took from it, whatever the guest removes, so refunds through one FS
// cannot raise the room of the counter's other users beyond what that FS took.
// What the FS still holds when it is done (bytes and entries left in the
// directory) stays taken: the host gives it back when it removes the
// directory, e.g. Give(f.Used()) once nothing uses f any more.
//
// Implementations must be safe for concurrent use. A counter that refuses
// (returns less than asked) is the one reported by [FS.QuotaHit],
// [FS.EntriesHit] or [FS.OpenFilesHit].
type Counter interface {
	// Take reserves up to n units (n > 0) and returns how many it reserved, 0..n.
	Take(n int64) int64
	// Give returns n units taken earlier.
	Give(n int64)
}

// limit is the private Counter made by WithQuota, WithMaxEntries and
// WithMaxOpenFiles: at most max units taken at once.
type limit struct {
	max  int64
	used atomic.Int64
}

func newLimit(n int64) *limit { return &limit{max: n} }

func (l *limit) Take(n int64) int64 {
	for {
		u := l.used.Load()
		g := min(n, l.max-u)
		if g <= 0 {
			return 0
		}
		if l.used.CompareAndSwap(u, u+g) {
			return g
		}
	}
}

func (l *limit) Give(n int64) {
	for {
		u := l.used.Load()
		if l.used.CompareAndSwap(u, max(u-n, 0)) {
			return
		}
	}
}

// ledger is what one FS holds of one counter. c is nil when unbounded: the
// ledger still counts, as a statistic, but nothing refuses.
type ledger struct {
	c    Counter
	held atomic.Int64 // taken from c and not given back; 0 <= held
	hit  atomic.Bool  // c refused something
}

// take takes up to n (n > 0) and returns how many it got, 0..n. Unless
// partial, it gets all of n or nothing. A short take sets hit.
func (l *ledger) take(n int64, partial bool) int64 {
	got := l.tryTake(n, partial)
	if got < n {
		l.hit.Store(true)
	}
	return got
}

// tryTake is take without recording a refusal in hit.
func (l *ledger) tryTake(n int64, partial bool) int64 {
	if n <= 0 {
		return 0
	}
	got := n
	if l.c != nil {
		got = l.c.Take(n)
		switch {
		case got > n: // a broken counter: keep only what was asked
			l.c.Give(got - n)
			got = n
		case got < 0:
			got = 0
		}
		if got < n && !partial && got > 0 {
			l.c.Give(got)
			got = 0
		}
	}
	l.held.Add(got)
	return got
}

// give gives back up to n (what the ledger holds, if less) and returns how
// many it gave. This is what keeps an FS from giving a shared counter more
// than it took: a removal that would refund more than the FS holds (a file
// that was in the directory before, or one charged to another user) gives
// back only what the FS holds.
func (l *ledger) give(n int64) int64 {
	if n <= 0 {
		return 0
	}
	for {
		h := l.held.Load()
		g := min(n, h)
		if g <= 0 {
			return 0
		}
		if l.held.CompareAndSwap(h, h-g) {
			if l.c != nil {
				l.c.Give(g)
			}
			return g
		}
	}
}
