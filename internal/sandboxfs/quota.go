//go:build unix

package sandboxfs

import (
	"errors"
	"io/fs"
	"sync"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/sys"
)

// errQuota is the error of a write or truncate refused by the quota. WASI
// has ENOSPC, but wazero's experimentalsys.Errno has none and turns any errno
// it does not know (a host's ENOSPC included) into EIO; EIO it is, then.
// [FS.QuotaHit] tells the host that the quota was the cause.
const errQuota = experimentalsys.EIO

// ErrQuota is wrapped by the error of a host write ([FS.WriteFile]) refused
// by the byte counter.
var ErrQuota = errors.New("sandboxfs: disk quota exceeded")

// Option configures an FS made by [New].
type Option func(*FS)

// WithQuota bounds how many bytes the files written through the FS may grow
// the directory by; 0 or a negative value means no quota. It is [WithBytes]
// with a counter of its own, private to the FS, and replaces an earlier
// WithBytes or WithQuota.
//
// The accounting is approximate but conservative: growth of a regular file
// beyond its size (Write, Pwrite, Truncate, [FS.WriteFile]) is charged; a
// write that does not fit is cut short at the quota, or fails with EIO when
// nothing fits; shrinking a file (Truncate, O_TRUNC) and unlinking its last
// link refund its bytes, never below zero, so files that were in the
// directory before (not charged) give nothing back beyond what was charged.
// A file that is unlinked while open is refunded when its last descriptor
// opened through the FS closes. Directories, links, metadata and file system
// block rounding are not charged; sparse holes are charged as if written.
func WithQuota(bytes int64) Option {
	if bytes <= 0 {
		return WithBytes(nil)
	}
	return WithBytes(newLimit(bytes))
}

// WithBytes makes the FS draw the bytes it charges (see [WithQuota] for what
// is charged and refunded) from c, which other users may share; nil means no
// quota. A write is cut to what c gives. The FS gives back only bytes it took
// (see [Counter]). It replaces an earlier WithBytes or WithQuota.
func WithBytes(c Counter) Option {
	return func(f *FS) { f.bytes.c = c }
}

// Used returns the bytes of growth the FS has taken from its byte counter
// and not given back. It is always 0 without one.
func (f *FS) Used() int64 { return f.bytes.held.Load() }

// QuotaHit reports whether a write or truncate was cut short or refused
// because the byte counter gave less than asked.
func (f *FS) QuotaHit() bool { return f.bytes.hit.Load() }

// quotaState is the accounting part of FS.
type quotaState struct {
	bytes ledger // with c nil, no byte accounting at all

	mu    sync.Mutex         // guards nodes
	nodes map[inodeKey]*node // regular files open through the FS
}

// quota reports whether bytes are charged.
func (f *FS) quota() bool { return f.bytes.c != nil }

type inodeKey struct {
	dev uint64
	ino sys.Inode
}

// node is the shared size of one regular file, whatever the number of its
// open descriptors: a size tracked per descriptor would go stale when
// another descriptor shrinks the file, and growth back to the stale size
// would then go uncharged.
type node struct {
	mu   sync.Mutex // held across the write or truncate that changes size
	size int64      // the file's size as far as writes through the FS go

	refs     int  // open files using the node (guarded by FS.mu)
	unlinked bool // its last link was unlinked while open (guarded by FS.mu)
}

// reserve charges up to want bytes and returns how many it charged.
func (f *FS) reserve(want int64) int64 { return f.bytes.take(want, true) }

// refund gives back n bytes, or what the FS holds if less.
func (f *FS) refund(n int64) { f.bytes.give(n) }

// track attaches the shared node of fl, newly opened, to fl if it is a
// regular file. pre is the file's stat before an open with O_TRUNC (nil
// otherwise or if it failed): the bytes the truncation dropped are refunded.
//
// fl is stat'ed under f.mu: without a node for the file, no descriptor
// opened through the FS has it open, so no write through the FS (the
// guest's or WriteFile's) is changing its size, and the size is what was
// charged for it. A stat taken before the lock could predate another
// descriptor's last write and close, and the node would start from a stale
// size. After a truncating open, the size is read under the node's lock, so
// that no write through another descriptor falls in between.
func (f *FS) track(fl *file, trunc bool, pre fs.FileInfo) experimentalsys.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, errno := fl.Stat()
	if errno != 0 || !st.Mode.IsRegular() {
		return errno
	}
	key := inodeKey{st.Dev, st.Ino}
	n := f.nodes[key]
	if n == nil {
		n = &node{size: st.Size}
		if f.nodes == nil {
			f.nodes = map[inodeKey]*node{}
		}
		f.nodes[key] = n
		if trunc && pre != nil && pre.Mode().IsRegular() {
			if ps := sys.NewStat_t(pre); ps.Dev == st.Dev && ps.Ino == st.Ino {
				f.refund(ps.Size - st.Size)
			}
		}
	} else if trunc {
		n.mu.Lock()
		st, errno = fl.Stat()
		if errno == 0 {
			f.refund(n.size - st.Size)
			n.size = st.Size
		}
		n.mu.Unlock()
		if errno != 0 {
			return errno
		}
	}
	n.refs++
	fl.node, fl.key = n, key
	return 0
}

// untrack drops fl's reference to its node, refunding an unlinked file on
// its last close.
func (f *FS) untrack(fl *file) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := fl.node
	fl.node = nil
	if n.refs--; n.refs > 0 {
		return
	}
	delete(f.nodes, fl.key)
	if n.unlinked {
		n.mu.Lock()
		f.refund(n.size)
		n.mu.Unlock()
	}
}

// unlinked accounts for the removal of the last link of a regular file:
// refunded now, or on its last close if it is open.
func (f *FS) unlinked(st sys.Stat_t) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nodes[inodeKey{st.Dev, st.Ino}]; n != nil {
		n.unlinked = true
		return
	}
	f.refund(st.Size)
}

// quotaWrite writes buf at off (at the end when appending) through write,
// charging growth beyond the node's size: a write that does not fit is cut
// to what does, or fails with errQuota if nothing does. n.mu is held.
func (fl *file) quotaWrite(buf []byte, off int64, appending bool, write func([]byte) (int, experimentalsys.Errno)) (int, experimentalsys.Errno) {
	n := fl.node
	if appending {
		off = n.size
	}
	end := off + int64(len(buf))
	want := end - n.size
	if want <= 0 {
		return write(buf)
	}
	got := fl.fs.reserve(want)
	if got < want {
		fit := n.size + got - off // bytes of buf that fit
		if fit <= 0 {
			fl.fs.refund(got)
			return 0, errQuota
		}
		buf = buf[:fit]
	}
	w, errno := write(buf)
	if newEnd := off + int64(w); newEnd > n.size {
		fl.fs.refund(got - (newEnd - n.size))
		n.size = newEnd
	} else {
		fl.fs.refund(got)
	}
	return w, errno
}

// quotaTruncate truncates to size through trunc, charging growth (errQuota
// if it does not fit whole) and refunding a shrink.
func (fl *file) quotaTruncate(size int64, trunc func() experimentalsys.Errno) experimentalsys.Errno {
	n := fl.node
	n.mu.Lock()
	defer n.mu.Unlock()
	grow := size - n.size
	got := fl.fs.bytes.take(grow, false) // all or nothing
	if got < grow {
		return errQuota
	}
	if errno := trunc(); errno != 0 {
		fl.fs.refund(got)
		return errno
	}
	fl.fs.refund(n.size - size)
	n.size = size
	return 0
}
