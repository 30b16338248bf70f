//go:build unix

package sandboxfs

import (
	"fmt"
	"io/fs"
	"sync"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// testCounter is a bounded Counter that fails the test if it is given more
// than it has out.
type testCounter struct {
	t   testing.TB
	max int64

	mu   sync.Mutex
	used int64
}

func newTestCounter(t testing.TB, max int64) *testCounter { return &testCounter{t: t, max: max} }

func (c *testCounter) Take(n int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 {
		c.t.Errorf("Take(%d)", n)
		return 0
	}
	g := max(min(n, c.max-c.used), 0)
	c.used += g
	return g
}

func (c *testCounter) Give(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 || n > c.used {
		c.t.Errorf("Give(%d) with %d taken", n, c.used)
	}
	c.used = max(c.used-n, 0)
}

func (c *testCounter) Used() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used
}

// user is one user's view of a shared counter: it fails the test if that
// user ever gives back more than it took.
type user struct {
	t     testing.TB
	name  string
	c     Counter
	mu    sync.Mutex
	taken int64 // net
}

func (u *user) Take(n int64) int64 {
	g := u.c.Take(n)
	u.mu.Lock()
	u.taken += g
	u.mu.Unlock()
	return g
}

func (u *user) Give(n int64) {
	u.mu.Lock()
	u.taken -= n
	if u.taken < 0 {
		u.t.Errorf("%s gave back %d more than it took", u.name, -u.taken)
	}
	u.mu.Unlock()
	u.c.Give(n)
}

func (u *user) Taken() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.taken
}

// counterKind is one of the three things an FS draws from a counter, with a
// way for a test to take and give back one unit of it through the FS.
type counterKind struct {
	name   string
	option func(Counter) Option
	held   func(*FS) int64
	hit    func(*FS) bool
	// use takes one unit through the FS; i names it (distinct per call).
	use func(t *testing.T, fsys *FS, i int) experimentalsys.Errno
	// release gives back unit i, taken by use.
	release func(t *testing.T, fsys *FS, i int)
	// overRelease tries to give back more than was taken: removing what the
	// FS did not create, closing twice. It must give back nothing beyond
	// what the FS holds.
	overRelease func(t *testing.T, fsys *FS)
}

// useFile is where use puts unit i for bytes and entries.
func useFile(i int) string { return fmt.Sprint("u", i) }

// unlinkPreexisting removes what the fixture made (not charged to the FS):
// 2 files of 7 bytes each, then links and dirs.
func unlinkPreexisting(t *testing.T, fsys *FS) {
	for _, p := range []string{"inside.txt", "sub/file.txt", "link_in", "chain1", "chain2"} {
		if errno := fsys.Unlink(p); errno != 0 {
			t.Errorf("unlink %s: %v", p, errno)
		}
	}
	if errno := fsys.Rmdir("sub/emptydir"); errno != 0 {
		t.Errorf("rmdir: %v", errno)
	}
}

func counterKinds() []counterKind {
	type openFiles struct{ files map[int]experimentalsys.File }
	fds := map[*FS]*openFiles{}
	var fdsMu sync.Mutex
	opened := func(fsys *FS) *openFiles {
		fdsMu.Lock()
		defer fdsMu.Unlock()
		if fds[fsys] == nil {
			fds[fsys] = &openFiles{files: map[int]experimentalsys.File{}}
		}
		return fds[fsys]
	}
	return []counterKind{
		{
			name:   "bytes",
			option: WithBytes,
			held:   (*FS).Used,
			hit:    (*FS).QuotaHit,
			use: func(t *testing.T, fsys *FS, i int) experimentalsys.Errno {
				f, errno := fsys.OpenFile(useFile(i), rwCreate, 0o644)
				if errno != 0 {
					t.Fatalf("open %s: %v", useFile(i), errno)
				}
				defer f.Close()
				_, errno = f.Write([]byte{'x'})
				return errno
			},
			release: func(t *testing.T, fsys *FS, i int) {
				if errno := fsys.Unlink(useFile(i)); errno != 0 {
					t.Fatal(errno)
				}
			},
			overRelease: unlinkPreexisting,
		},
		{
			name:   "entries",
			option: WithEntries,
			held:   (*FS).Entries,
			hit:    (*FS).EntriesHit,
			use: func(t *testing.T, fsys *FS, i int) experimentalsys.Errno {
				if i%2 == 0 {
					return fsys.Mkdir(useFile(i), 0o755)
				}
				return create(fsys, useFile(i))
			},
			release: func(t *testing.T, fsys *FS, i int) {
				rm := fsys.Unlink
				if i%2 == 0 {
					rm = fsys.Rmdir
				}
				if errno := rm(useFile(i)); errno != 0 {
					t.Fatal(errno)
				}
			},
			overRelease: unlinkPreexisting,
		},
		{
			name:   "open files",
			option: WithOpenFiles,
			held:   (*FS).OpenFiles,
			hit:    (*FS).OpenFilesHit,
			use: func(t *testing.T, fsys *FS, i int) experimentalsys.Errno {
				flag, p := experimentalsys.O_RDONLY, "inside.txt"
				if i%2 == 1 {
					flag, p = experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, "sub"
				}
				f, errno := fsys.OpenFile(p, flag, 0)
				if errno == 0 {
					o := opened(fsys)
					o.files[i] = f
					t.Cleanup(func() { f.Close() })
				}
				return errno
			},
			release: func(t *testing.T, fsys *FS, i int) {
				o := opened(fsys)
				if errno := o.files[i].Close(); errno != 0 {
					t.Fatal(errno)
				}
			},
			overRelease: func(t *testing.T, fsys *FS) {
				for _, f := range opened(fsys).files {
					f.Close() // again: a no-op
				}
			},
		},
	}
}

// TestCounters: each counter bounds its kind, is the only one reported as
// hit, and gets back exactly what the FS took.
func TestCounters(t *testing.T) {
	for _, k := range counterKinds() {
		t.Run(k.name, func(t *testing.T) {
			fx := newFixture(t)
			c := newTestCounter(t, 3)
			fsys, err := New(fx.build, k.option(c))
			if err != nil {
				t.Fatal(err)
			}
			defer fsys.Close()
			for i := range 3 {
				wantErrno(t, fmt.Sprint("use ", i), k.use(t, fsys, i), 0)
			}
			if k.hit(fsys) {
				t.Error("hit before the counter refused")
			}
			wantErrno(t, "use over the counter", k.use(t, fsys, 3), experimentalsys.EIO)
			if !k.hit(fsys) {
				t.Error("hit is false after a refusal")
			}
			for _, o := range counterKinds() {
				if o.name != k.name && o.hit(fsys) {
					t.Errorf("%s reported as hit", o.name)
				}
			}
			if k.held(fsys) != 3 || c.Used() != 3 {
				t.Errorf("FS holds %d, counter has %d out, want 3", k.held(fsys), c.Used())
			}
			k.release(t, fsys, 1)
			if k.held(fsys) != 2 || c.Used() != 2 {
				t.Errorf("after a release: FS holds %d, counter has %d out, want 2", k.held(fsys), c.Used())
			}
			wantErrno(t, "use after a release", k.use(t, fsys, 4), 0)
			wantErrno(t, "use over again", k.use(t, fsys, 5), experimentalsys.EIO)
			for _, i := range []int{0, 2, 4} {
				k.release(t, fsys, i)
			}
			k.overRelease(t, fsys)
			if k.held(fsys) != 0 || c.Used() != 0 {
				t.Errorf("after releasing all: FS holds %d, counter has %d out", k.held(fsys), c.Used())
			}
		})
	}
}

// TestSharedCounter: two FS instances (on two dirs) share one counter. One
// exhausting it makes the other's uses fail, and what one gives back,
// whatever it removes, is at most what it took.
func TestSharedCounter(t *testing.T) {
	for _, k := range counterKinds() {
		t.Run(k.name, func(t *testing.T) {
			c := newTestCounter(t, 5)
			a := &user{t: t, name: "a", c: c}
			b := &user{t: t, name: "b", c: c}
			fsA, err := New(newFixture(t).build, k.option(a))
			if err != nil {
				t.Fatal(err)
			}
			defer fsA.Close()
			fsB, err := New(newFixture(t).build, k.option(b))
			if err != nil {
				t.Fatal(err)
			}
			defer fsB.Close()
			check := func(when string) {
				t.Helper()
				if k.held(fsA) != a.Taken() || k.held(fsB) != b.Taken() || c.Used() != a.Taken()+b.Taken() {
					t.Errorf("%s: FS a holds %d (took %d), FS b holds %d (took %d), counter has %d out",
						when, k.held(fsA), a.Taken(), k.held(fsB), b.Taken(), c.Used())
				}
			}
			for i := range 2 {
				wantErrno(t, "a uses", k.use(t, fsA, i), 0)
			}
			for i := range 3 {
				wantErrno(t, "b uses", k.use(t, fsB, i), 0)
			}
			check("full")
			wantErrno(t, "a over", k.use(t, fsA, 10), experimentalsys.EIO)
			wantErrno(t, "b over", k.use(t, fsB, 10), experimentalsys.EIO)
			if !k.hit(fsA) || !k.hit(fsB) {
				t.Error("hit is false")
			}
			// a gives back one unit, then tries to give back more than it
			// holds: b gets exactly a's 2 units of room, no more.
			k.release(t, fsA, 0)
			check("a released one")
			wantErrno(t, "b uses a's unit", k.use(t, fsB, 20), 0)
			wantErrno(t, "b over again", k.use(t, fsB, 21), experimentalsys.EIO)
			k.release(t, fsA, 1)
			k.overRelease(t, fsA)
			check("a released all")
			if k.held(fsA) != 0 {
				t.Errorf("a holds %d", k.held(fsA))
			}
			wantErrno(t, "b uses a's last unit", k.use(t, fsB, 22), 0)
			wantErrno(t, "b over at the end", k.use(t, fsB, 23), experimentalsys.EIO)
			check("end")
			if c.Used() != 5 {
				t.Errorf("counter has %d out, want 5", c.Used())
			}
		})
	}
}

// Two FS instances on the same dir (the guest's and a host writer's, say)
// share a counter. One removing what the other created gives back at most
// what it took itself: the other's charge stays, conservatively.
func TestSharedCounterSameDir(t *testing.T) {
	fx := newFixture(t)
	c := newTestCounter(t, 100)
	a := &user{t: t, name: "a", c: c}
	b := &user{t: t, name: "b", c: c}
	fsA, err := New(fx.build, WithBytes(a), WithEntries(a))
	if err != nil {
		t.Fatal(err)
	}
	defer fsA.Close()
	fsB, err := New(fx.build, WithBytes(b), WithEntries(b))
	if err != nil {
		t.Fatal(err)
	}
	defer fsB.Close()
	write := func(fsys *FS, p string, n int) {
		t.Helper()
		f := openQ(t, fsys, p, rwCreate)
		if w, errno := f.Write(make([]byte, n)); w != n || errno != 0 {
			t.Fatal(w, errno)
		}
		f.Close()
	}
	write(fsA, "a", 10)  // a: 10 bytes + 1 entry
	write(fsB, "b", 60)  // b: 60 bytes + 1 entry
	wantUsed(t, fsA, 10) // 11 units from a
	if errno := fsA.Unlink("b"); errno != 0 {
		t.Fatal(errno)
	}
	wantUsed(t, fsA, 0) // gave back its 10, not b's 60
	wantEntries(t, fsA, 0)
	wantUsed(t, fsB, 60) // b does not know: its charge stays
	if a.Taken() != 0 || b.Taken() != 61 || c.Used() != 61 {
		t.Errorf("a took %d, b took %d, counter has %d out", a.Taken(), b.Taken(), c.Used())
	}
}

// A Close that fails (here: the descriptor was closed behind the file's
// back) still gives back its open-files unit, once.
func TestOpenFilesCloseFails(t *testing.T) {
	fx := newFixture(t)
	c := newTestCounter(t, 1)
	fsys, err := New(fx.build, WithOpenFiles(c), WithQuota(100))
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	f, errno := fsys.OpenFile("inside.txt", rdwr, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	f.(*file).f.Close()
	if errno := f.Close(); errno == 0 {
		t.Error("Close succeeded: the test no longer makes it fail")
	}
	if c.Used() != 0 || fsys.OpenFiles() != 0 {
		t.Errorf("after a failed Close: counter has %d out, FS holds %d", c.Used(), fsys.OpenFiles())
	}
	wantErrno(t, "close again", f.Close(), 0)
	if c.Used() != 0 {
		t.Errorf("second Close: counter has %d out", c.Used())
	}
	// Concurrent Closes (a guest's fd_close racing its module's close) give
	// back once.
	for range 50 {
		f, errno := fsys.OpenFile("inside.txt", rdwr, 0)
		if errno != 0 {
			t.Fatal(errno)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { f.Close() })
		}
		wg.Wait()
	}
	if c.Used() != 0 || fsys.OpenFiles() != 0 {
		t.Errorf("after concurrent Closes: counter has %d out, FS holds %d", c.Used(), fsys.OpenFiles())
	}
}

// wazero's lazy open of a pre-opened directory (at every guest's start,
// for fd_prestat_get) holds no descriptor until the guest uses the
// directory itself; then it is never refused (wazero would panic) and
// takes a unit when there is one. Any other open at the limit is refused.
func TestOpenFilesLazyPreopen(t *testing.T) {
	fx := newFixture(t)
	c := newTestCounter(t, 1)
	fsys, err := New(fx.build, WithOpenFiles(c))
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	root, errno := fsys.OpenFile(".", experimentalsys.O_RDONLY, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if isDir, errno := root.IsDir(); !isDir || errno != 0 {
		t.Errorf("IsDir = %v, %v", isDir, errno)
	}
	if st, errno := root.Stat(); errno != 0 || !st.Mode.IsDir() {
		t.Errorf("Stat = %v, %v", st.Mode, errno)
	}
	if d := root.(*preopenDir); d.f != nil || c.Used() != 0 {
		t.Errorf("after IsDir and Stat the pre-open holds a descriptor (%v) or a unit (%d)", d.f != nil, c.Used())
	}
	if _, errno := root.Readdir(-1); errno != 0 {
		t.Fatal(errno)
	}
	if c.Used() != 1 {
		t.Errorf("with room, the pre-open read took %d", c.Used())
	}
	root2, errno := fsys.OpenFile(".", experimentalsys.O_RDONLY, 0)
	if errno != 0 {
		t.Fatalf("pre-open at the limit: %v", errno)
	}
	if _, errno := root2.Readdir(-1); errno != 0 {
		t.Fatalf("pre-open read at the limit: %v", errno)
	}
	if fsys.OpenFilesHit() || c.Used() != 1 || fsys.OpenFiles() != 1 {
		t.Errorf("pre-open at the limit: hit %v, counter %d, FS %d", fsys.OpenFilesHit(), c.Used(), fsys.OpenFiles())
	}
	for _, o := range []struct {
		p    string
		flag experimentalsys.Oflag
		perm int
	}{
		{".", experimentalsys.O_RDONLY, 0o600}, // a guest's path_open
		{".", experimentalsys.O_RDONLY | experimentalsys.O_DIRECTORY, 0o600},
		{"/", experimentalsys.O_RDONLY, 0},
		{"sub", experimentalsys.O_RDONLY, 0},
	} {
		if f, errno := fsys.OpenFile(o.p, o.flag, fs.FileMode(o.perm)); errno != errOpenFiles {
			t.Errorf("OpenFile(%q, %v, %o) at the limit: %v", o.p, o.flag, o.perm, errno)
			if f != nil {
				f.Close()
			}
		}
	}
	root2.Close() // held nothing: gives nothing
	if c.Used() != 1 {
		t.Errorf("after closing the uncounted pre-open: counter %d", c.Used())
	}
	root.Close()
	if c.Used() != 0 || fsys.OpenFiles() != 0 {
		t.Errorf("after closing both: counter %d, FS %d", c.Used(), fsys.OpenFiles())
	}
	if _, errno := root.Stat(); errno != experimentalsys.EBADF {
		t.Errorf("Stat after Close: %v", errno)
	}
}
