package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestJournalLifecycle: entries are private files in a private
// partition; a closed journal with no entries leaves nothing behind.
func TestJournalLifecycle(t *testing.T) {
	root := filepath.Join(t.TempDir(), "journal")
	j, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEntry()
	if err := j.Add(e); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		root: 0o700, j.Dir(): 0o700, filepath.Join(j.Dir(), lockName): 0o600, filepath.Join(j.Dir(), entryName(e.JobID)): 0o600,
	} {
		if got := mode(t, p); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	e.Offset, e.Result, e.FailureReason = 9999, "failed", "script_failure"
	if err := j.Add(e); err != nil { // a rewrite replaces the entry
		t.Fatal(err)
	}
	got, err := readEntry(filepath.Join(j.Dir(), entryName(e.JobID)))
	if err != nil || got.Offset != 9999 || got.Result != "failed" {
		t.Fatalf("rewritten entry: %+v, %v", got, err)
	}
	if err := j.Remove(e.JobID); err != nil {
		t.Fatal(err)
	}
	if err := j.Remove(e.JobID); err != nil {
		t.Errorf("removing a removed entry: %v", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if names, _ := readNames(root); len(names) != 0 {
		t.Errorf("an empty journal left %v", names)
	}
	if err := j.Add(e); err == nil {
		t.Error("Add after Close succeeded")
	}
}

// TestOrphans: partitions of live journals are never taken, however many
// scans run; a journal closed with entries (its process gone) is taken
// once, by one scanner, and removed when its entries are done.
func TestOrphans(t *testing.T) {
	root := t.TempDir()
	live, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	liveEntry := sampleEntry()
	liveEntry.JobID = 1
	if err := live.Add(liveEntry); err != nil {
		t.Fatal(err)
	}

	dead, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, id := range []int64{30, 4, 200} {
		e := sampleEntry()
		e.JobID = id
		if err := dead.Add(e); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}
	// A write interrupted by the crash leaves its temporary file.
	if err := os.WriteFile(filepath.Join(dead.Dir(), tmpPrefix+entryName(4)), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadDir := dead.Dir()
	dead.Close() // as the process's death releases its lock

	orphans, err := Orphans(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(orphans) != 1 || orphans[0].Dir() != deadDir {
		t.Fatalf("orphans %v, want only %s", orphans, deadDir)
	}
	o := orphans[0]
	var got []int64
	for _, e := range o.Entries {
		got = append(got, e.JobID)
	}
	if len(got) != 3 || got[0] != 4 || got[1] != 30 || got[2] != 200 {
		t.Errorf("entries %v, want 4 30 200 (of %v)", got, want)
	}
	if _, err := os.Stat(filepath.Join(deadDir, tmpPrefix+entryName(4))); !os.IsNotExist(err) {
		t.Errorf("leftover temporary file not removed: %v", err)
	}
	// While o is held, another scan (another process) does not take it.
	if again, err := Orphans(root); err != nil || len(again) != 0 {
		t.Fatalf("a held orphan was taken again: %v %v", again, err)
	}
	if err := o.Done(4); err != nil {
		t.Fatal(err)
	}
	o.Close() // entries left: the partition stays for the next start
	again, err := Orphans(root)
	if err != nil || len(again) != 1 || len(again[0].Entries) != 2 {
		t.Fatalf("after one entry done: %v %v", again, err)
	}
	for _, e := range again[0].Entries {
		if err := again[0].Done(e.JobID); err != nil {
			t.Fatal(err)
		}
	}
	again[0].Close()
	if _, err := os.Stat(deadDir); !os.IsNotExist(err) {
		t.Errorf("a done orphan's partition was kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(live.Dir(), entryName(1))); err != nil {
		t.Errorf("the live journal's entry: %v", err)
	}
}

// TestOrphanProblems: entries that cannot be trusted are reported, each
// naming its file, and removed; the good ones are still recovered.
func TestOrphanProblems(t *testing.T) {
	root := t.TempDir()
	j, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	good := sampleEntry()
	if err := j.Add(good); err != nil {
		t.Fatal(err)
	}
	dir := j.Dir()
	j.Close()
	other := sampleEntry()
	other.JobID = 7
	data, _ := Encode(other)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, data, 0o600)
	for name, write := range map[string]func(string) error{
		entryName(5): func(p string) error { return os.WriteFile(p, []byte("wasmrunner-journal v1 crc32=0"), 0o600) },
		entryName(6): func(p string) error { return os.WriteFile(p, data, 0o600) }, // job 7's entry under 6's name
		entryName(8): func(p string) error { return os.Symlink(secret, p) },
		entryName(9): func(p string) error { return os.Mkdir(p, 0o700) },
	} {
		if err := write(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	orphans, err := Orphans(root)
	if err != nil || len(orphans) != 1 {
		t.Fatalf("%v %v", orphans, err)
	}
	o := orphans[0]
	defer o.Close()
	if len(o.Entries) != 1 || o.Entries[0].JobID != good.JobID {
		t.Errorf("entries %+v, want only job %d", o.Entries, good.JobID)
	}
	if len(o.Problems) != 4 {
		t.Fatalf("problems %v, want 4", o.Problems)
	}
	for _, p := range o.Problems {
		if !strings.Contains(p.Error(), dir) {
			t.Errorf("problem %q does not name its file", p)
		}
	}
	for _, n := range []string{entryName(5), entryName(6), entryName(8)} {
		if _, err := os.Lstat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s kept: %v", n, err)
		}
	}
	if _, err := os.Stat(secret); err != nil {
		t.Errorf("the file a link pointed to was touched: %v", err)
	}
}

// TestOrphansNoRoot: a runner that never ran has no journal.
func TestOrphansNoRoot(t *testing.T) {
	o, err := Orphans(filepath.Join(t.TempDir(), "none"))
	if err != nil || o != nil {
		t.Errorf("%v %v", o, err)
	}
}
