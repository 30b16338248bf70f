//go:build unix

package sandboxfs

import (
	"sync/atomic"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// errEntries is the error of a creation refused by the entry limit: EIO, as
// for the byte quota (wazero's experimentalsys.Errno has neither EDQUOT nor
// ENOSPC). [FS.EntriesHit] tells the host that the limit was the cause.
const errEntries = experimentalsys.EIO

// WithMaxEntries bounds how many directory entries (files, directories,
// symbolic and hard links) the guest may create through the FS, net of
// those it removes; 0 or a negative value means no limit.
//
// Creating a new name charges 1 (OpenFile with O_CREAT of a name that did
// not resolve, Mkdir, Symlink, Link); a successful Unlink or Rmdir refunds
// 1, and so does a Rename that replaces an existing name; the count never
// goes below zero, so entries that were in the directory before give
// nothing back beyond what was charged. A creation that would exceed the
// limit fails with EIO before anything is created.
func WithMaxEntries(n int64) Option {
	return func(f *FS) {
		f.maxEntries = max(n, 0)
	}
}

// Entries returns the directory entries created through the FS minus those
// removed through it, never below 0. It counts with or without a limit.
func (f *FS) Entries() int64 { return f.entries.Load() }

// EntriesHit reports whether a creation was refused because of the entry
// limit.
func (f *FS) EntriesHit() bool { return f.entriesHit.Load() }

// entryState is the entry accounting part of FS.
type entryState struct {
	maxEntries int64        // 0: none
	entries    atomic.Int64 // charged entries, 0 <= entries (<= maxEntries if set)
	entriesHit atomic.Bool  // the limit refused a creation
}

// chargeEntry charges one entry, or reports false (and records the hit)
// when that would exceed the limit. A caller whose creation then fails
// gives it back with refundEntry.
func (f *FS) chargeEntry() bool {
	for {
		n := f.entries.Load()
		if f.maxEntries > 0 && n >= f.maxEntries {
			f.entriesHit.Store(true)
			return false
		}
		if f.entries.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// refundEntry gives back one entry, never taking the count below zero.
func (f *FS) refundEntry() {
	for {
		n := f.entries.Load()
		if n <= 0 || f.entries.CompareAndSwap(n, n-1) {
			return
		}
	}
}

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
