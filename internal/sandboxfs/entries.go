//go:build unix

package sandboxfs

import (
	"errors"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// errEntries is the error of a creation refused by the entry limit: EIO, as
// for the byte quota (wazero's experimentalsys.Errno has neither EDQUOT nor
// ENOSPC). [FS.EntriesHit] tells the host that the limit was the cause.
const errEntries = experimentalsys.EIO

// ErrEntries is wrapped by the error of a host write ([FS.WriteFile])
// refused by the entry counter.
var ErrEntries = errors.New("sandboxfs: entry limit exceeded")

// WithMaxEntries bounds how many directory entries (files, directories,
// symbolic and hard links) the guest may create through the FS, net of
// those it removes; 0 or a negative value means no limit. It is
// [WithEntries] with a counter of its own, private to the FS, and replaces
// an earlier WithEntries or WithMaxEntries.
//
// Creating a new name charges 1 (OpenFile with O_CREAT of a name that did
// not resolve, Mkdir, Symlink, Link, and each file or directory
// [FS.WriteFile] creates); a successful Unlink or Rmdir refunds 1, and so
// does a Rename that replaces an existing name; the count never goes below
// zero, so entries that were in the directory before give nothing back
// beyond what was charged. A creation that would exceed the limit fails with
// EIO before anything is created.
func WithMaxEntries(n int64) Option {
	if n <= 0 {
		return WithEntries(nil)
	}
	return WithEntries(newLimit(n))
}

// WithEntries makes the FS draw the directory entries it charges (see
// [WithMaxEntries]) from c, which other users may share; nil means no limit.
// The FS gives back only entries it took (see [Counter]). It replaces an
// earlier WithEntries or WithMaxEntries.
func WithEntries(c Counter) Option {
	return func(f *FS) { f.entries.c = c }
}

// Entries returns the directory entries created through the FS minus those
// removed through it, never below 0: what it holds of its entry counter. It
// counts with or without a counter.
func (f *FS) Entries() int64 { return f.entries.held.Load() }

// EntriesHit reports whether a creation was refused because the entry
// counter gave less than asked.
func (f *FS) EntriesHit() bool { return f.entries.hit.Load() }

// chargeEntry charges one entry, or reports false (and records the hit)
// when the counter refuses. A caller whose creation then fails gives it back
// with refundEntry.
func (f *FS) chargeEntry() bool { return f.entries.take(1, false) == 1 }

// refundEntry gives back one entry, if the FS holds one.
func (f *FS) refundEntry() { f.entries.give(1) }

// createEntry charges one entry around create, which makes one new name:
// refused with errEntries over the limit, refunded if create fails.
func (f *FS) createEntry(create func() experimentalsys.Errno) experimentalsys.Errno {
	if !f.chargeEntry() {
		return errEntries
	}
	errno := create()
	if errno != 0 {
		f.refundEntry()
	}
	return errno
}
