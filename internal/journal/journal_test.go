package journal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// slotFiles returns the slot files of a partition.
func slotFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, slotPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readAll returns the entries in a partition's slots.
func readAll(t *testing.T, dir string) []Entry {
	t.Helper()
	var out []Entry
	for _, p := range slotFiles(t, dir) {
		e, ok, err := readSlot(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if ok {
			out = append(out, e)
		}
	}
	return out
}

// TestJournalLifecycle: entries are private files in a private
// partition, written in place into reused slots; a closed journal with no
// entries leaves nothing behind.
func TestJournalLifecycle(t *testing.T) {
	root := filepath.Join(t.TempDir(), "journal")
	j, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEntry()
	e.Name = strings.Repeat("long name ", 40)
	if err := j.Add(e); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		root: 0o700, j.Dir(): 0o700, filepath.Join(j.Dir(), lockName): 0o600, filepath.Join(j.Dir(), slotPrefix+"0"): 0o600,
	} {
		if got := mode(t, p); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(j.Dir(), slotPrefix+"0")); err != nil || fi.Size() != slotSize {
		t.Errorf("slot file: %v, %v; want %d bytes", fi, err, slotSize)
	}
	// A rewrite goes into another slot, then frees the first.
	e.Offset, e.Result, e.FailureReason = 9999, "failed", "script_failure"
	if err := j.Add(e); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, j.Dir())
	if len(got) != 1 || got[0].Offset != 9999 || got[0].Result != "failed" {
		t.Fatalf("after a rewrite the journal holds %+v", got)
	}
	// A shorter entry of another job reuses the freed slot, whose longer
	// leftovers are cleared.
	other := sampleEntry()
	other.JobID, other.Name = 7, "short"
	if err := j.Add(other); err != nil {
		t.Fatal(err)
	}
	if n := len(slotFiles(t, j.Dir())); n != 2 {
		t.Errorf("%d slot files for two jobs, want 2", n)
	}
	if got := readAll(t, j.Dir()); len(got) != 2 {
		t.Fatalf("entries %+v, want two", got)
	}
	for _, id := range []int64{e.JobID, other.JobID, other.JobID} {
		if err := j.Remove(id); err != nil {
			t.Errorf("Remove(%d): %v", id, err)
		}
	}
	if got := readAll(t, j.Dir()); len(got) != 0 {
		t.Errorf("removed entries still read: %+v", got)
	}
	// Removed entries leave no token behind.
	for _, p := range slotFiles(t, j.Dir()) {
		if data, _ := os.ReadFile(p); strings.Contains(string(data), e.Token) {
			t.Errorf("%s still holds the job token", p)
		}
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
	for _, id := range []int64{30, 4, 200} {
		e := sampleEntry()
		e.JobID = id
		if err := dead.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	deadDir := dead.Dir()
	// A rewrite cut short by the crash: job 4 is in two slots.
	if err := os.WriteFile(filepath.Join(deadDir, slotPrefix+"9"), mustEncode(t, Entry{
		JobID: 4, Token: "t", Started: time.Now(), Result: "failed", FailureReason: "script_failure"}), 0o600); err != nil {
		t.Fatal(err)
	}
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
		t.Errorf("entries %v, want 4 30 200", got)
	}
	if o.Entries[0].Result != "failed" {
		t.Errorf("of a job's two entries, the one without its result was taken: %+v", o.Entries[0])
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
	if got := readAll(t, live.Dir()); len(got) != 1 || got[0].JobID != 1 {
		t.Errorf("the live journal's entries: %+v", got)
	}
}

func mustEncode(t *testing.T, e Entry) []byte {
	t.Helper()
	data, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestOrphanProblems: slots that cannot be trusted (torn, damaged, not
// regular files) are reported, each naming its file, and cleared or
// removed; the good entries are still recovered.
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
	data := mustEncode(t, other)
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, data, 0o600)
	for name, write := range map[string]func(string) error{
		slotPrefix + "5": func(p string) error { return os.WriteFile(p, []byte("wasmrunner-journal v1 crc32=0"), 0o600) },
		slotPrefix + "6": func(p string) error { return os.WriteFile(p, data[:len(data)-3], 0o600) }, // torn
		slotPrefix + "8": func(p string) error { return os.Symlink(secret, p) },
		slotPrefix + "9": func(p string) error { return os.Mkdir(p, 0o700) },
		"unrelated":      func(p string) error { return os.WriteFile(p, []byte("x"), 0o600) },
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
	if err := o.Done(good.JobID); err != nil {
		t.Fatal(err)
	}
	o.Close()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the partition was kept: %v", err)
	}
	if got, err := os.ReadFile(secret); err != nil || string(got) != string(data) {
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

// BenchmarkJob is the journal's part of a job: the entry written before
// it starts, rewritten as its report begins, removed once reported.
func BenchmarkJob(b *testing.B) {
	j, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	e := sampleEntry()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.JobID = int64(i + 1)
		e.Result = ""
		if err := j.Add(e); err != nil {
			b.Fatal(err)
		}
		e.Result = "success"
		if err := j.Add(e); err != nil {
			b.Fatal(err)
		}
		if err := j.Remove(e.JobID); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentJobs: jobs journaled at once each get a slot; rewrites
// and removals leave exactly the jobs not removed, and the slots are
// reused (no more of them than jobs in flight at once, plus rewrites).
func TestConcurrentJobs(t *testing.T) {
	j, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	const workers, perWorker = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perWorker {
				e := sampleEntry()
				e.JobID = int64(w*1000 + k + 1)
				if err := j.Add(e); err != nil {
					t.Error(err)
					return
				}
				e.Result = "success"
				if err := j.Add(e); err != nil {
					t.Error(err)
					return
				}
				if k != perWorker-1 { // each worker's last job stays
					if err := j.Remove(e.JobID); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	got := readAll(t, j.Dir())
	if len(got) != workers {
		t.Fatalf("%d entries left, want %d: %+v", len(got), workers, got)
	}
	for _, e := range got {
		if e.JobID%1000 != perWorker || e.Result != "success" {
			t.Errorf("entry left: job %d result %q", e.JobID, e.Result)
		}
	}
	if n := len(slotFiles(t, j.Dir())); n > 3*workers {
		t.Errorf("%d slot files for %d jobs at once", n, workers)
	}
}

// openFDs counts the process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(des)
}

// TestManyJobsFewDescriptors: thousands of jobs in flight at once (as
// waiting jobs are) hold at most maxOpenSlots descriptors of the journal;
// the slots past those are written, replaced, cleared and reused as the
// others, and a closed journal's entries are there for the next start.
func TestManyJobsFewDescriptors(t *testing.T) {
	root := t.TempDir()
	j, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	const jobs = 3 * maxOpenSlots
	for id := int64(1); id <= jobs; id++ {
		e := sampleEntry()
		e.JobID = id
		if err := j.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if n := openFDs(t) - before; n > maxOpenSlots {
		t.Errorf("%d jobs in flight hold %d descriptors, want at most %d", jobs, n, maxOpenSlots)
	}
	// Replace every entry, remove the even jobs, then add as many new
	// ones: they reuse the cleared slots.
	for id := int64(1); id <= jobs; id++ {
		e := sampleEntry()
		e.JobID, e.Result = id, "success"
		if err := j.Add(e); err != nil {
			t.Fatal(err)
		}
		if id%2 == 0 {
			if err := j.Remove(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	for id := int64(jobs + 1); id <= jobs+jobs/2; id++ {
		e := sampleEntry()
		e.JobID = id
		if err := j.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(slotFiles(t, j.Dir())); n > 2*jobs+1 {
		t.Errorf("%d slot files for %d jobs at once", n, jobs)
	}
	got := map[int64]string{}
	for _, e := range readAll(t, j.Dir()) {
		if _, dup := got[e.JobID]; dup {
			t.Errorf("job %d has two entries", e.JobID)
		}
		got[e.JobID] = e.Result
	}
	for id := int64(1); id <= jobs+jobs/2; id++ {
		want, ok := "", id > jobs || id%2 == 1
		if ok && id <= jobs {
			want = "success"
		}
		if r, has := got[id]; has != ok || r != want {
			t.Errorf("job %d: entry %v result %q, want %v %q", id, has, r, ok, want)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t) - before; n > 0 {
		t.Errorf("%d descriptors left open after Close", n)
	}
}

// TestDeferredSync: an entry is written at once and flushed to disk
// within SyncDelay, together with the others written meanwhile; a flush
// that fails is tried again; an entry removed before its flush is not
// flushed; Close flushes what is left.
func TestDeferredSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		synced, failing := map[string]int{}, false
		syncFile = func(s *slot) error {
			mu.Lock()
			defer mu.Unlock()
			if failing {
				return errors.New("disk on fire")
			}
			synced[filepath.Base(s.path)]++
			return nil
		}
		t.Cleanup(func() { syncFile = (*slot).sync })
		count := func() int {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, c := range synced {
				n += c
			}
			return n
		}
		j, err := Open(filepath.Join(t.TempDir(), "journal"))
		if err != nil {
			t.Fatal(err)
		}
		add := func(id int64) {
			e := sampleEntry()
			e.JobID = id
			if err := j.Add(e); err != nil {
				t.Fatal(err)
			}
		}
		// Two slot files, made (and synced as they are made) and freed.
		add(1)
		add(2)
		for _, id := range []int64{1, 2} {
			if err := j.Remove(id); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(); n != 0 {
			t.Fatalf("%d flushes for new slot files", n)
		}
		// Entries written into kept slots wait for the flush, and share it.
		add(3)
		add(4)
		if got := readAll(t, j.Dir()); len(got) != 2 {
			t.Fatalf("written entries: %+v, want two, before the flush", got)
		}
		time.Sleep(SyncDelay - time.Millisecond)
		if n := count(); n != 0 {
			t.Fatalf("flushed %d times before SyncDelay", n)
		}
		time.Sleep(2 * time.Millisecond)
		if n := count(); n != 2 {
			t.Fatalf("flushed %d slots after SyncDelay, want 2", n)
		}
		// A failed flush is tried again.
		if err := j.Remove(4); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		failing = true
		mu.Unlock()
		add(5)
		time.Sleep(SyncDelay + time.Millisecond)
		if n := count(); n != 2 {
			t.Fatalf("%d flushes with a failing disk", n)
		}
		mu.Lock()
		failing = false
		mu.Unlock()
		time.Sleep(SyncDelay + time.Millisecond)
		if n := count(); n != 3 {
			t.Fatalf("%d flushes after the disk came back, want 3", n)
		}
		// A job that ends before its flush costs none.
		add(6)
		if err := j.Remove(6); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * SyncDelay)
		if n := count(); n != 3 {
			t.Fatalf("%d flushes, want 3: a removed entry was flushed", n)
		}
		// Close flushes at once.
		if err := j.Remove(5); err != nil {
			t.Fatal(err)
		}
		add(7)
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 4 {
			t.Fatalf("%d flushes after Close, want 4", n)
		}
	})
}
