// Package journal keeps, on disk, the jobs a runner has in flight, so
// that a runner that died in the middle of jobs (SIGKILL, an OOM kill, a
// crash, a lost power supply) reports them to GitLab when it starts
// again, instead of leaving them "running" until GitLab's stuck-job
// timeout.
//
// A journal root holds the entries of one runner (one GitLab URL and
// runner entry); the engine keeps it beside its build dirs. Each process
// that runs the runner writes into a partition of its own (a directory
// p-<random> under the root) and holds an exclusive flock on the
// partition's lock file for as long as it runs. A partition whose lock
// nobody holds belongs to a process that is gone: [Orphans] takes such
// partitions (locking them in turn), so that several replicas sharing a
// builds dir never touch each other's entries, and a live process's
// entries are never "recovered" by another.
//
// An [Entry] is written before a job starts, rewritten when its final
// report begins, and removed once GitLab accepted the final update or
// said the job was over. Entries live in slot files of a fixed size that
// are reused: a write overwrites a free slot in place, so a job costs no
// file creation, rename or removal (and none of their file-system journal
// commits). A written entry survives the process's death at once (it is
// in the kernel's page cache); the slots written are flushed to disk
// (fdatasync) together within [SyncDelay], so that a power loss or kernel
// crash loses at most the entries of the last second, and a job that ends
// within it costs no flush at all. Removals (zeroing the slot)
// are not synced: a removal lost in a crash makes the next start report a
// job that had been reported, and GitLab answers that with a 403 (the job
// is no longer running), which drops the entry. Entries hold job tokens:
// the root and partitions are 0700, slots 0600, and a removed entry is
// zeroed.
//
// Entries are decoded with [Decode], which checks a header and a CRC-32
// of the body and validates every field: a truncated, corrupt or hostile
// entry is an error naming the file, never a panic, and is reported and
// removed rather than acted on.
package journal
