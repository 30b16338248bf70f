package modules

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wasmrunner/wasmrunner/engine/resource"
)

const canary = "CANARY-7f3a9e-outside-the-modules-dir"

// TestHostileFiles puts each kind of hostile entry in a modules dir beside
// a good module: Open returns at once, the entry is the module's problem
// with a clear message that quotes no file, never followed or read whole,
// and the good module loads.
func TestHostileFiles(t *testing.T) {
	outside := t.TempDir()
	secretWasm := filepath.Join(outside, "secret.wasm")
	secretToml := filepath.Join(outside, "secret.toml")
	os.WriteFile(secretWasm, []byte("\x00asm\x01\x00\x00\x00"+canary), 0o644)
	os.WriteFile(secretToml, []byte("[limits]\n"+canary+" = 1\n"), 0o644)
	good := handlerModule(-1, -1, "good")

	tests := []struct {
		name    string
		module  string // the module it breaks
		setup   func(t *testing.T, dir string)
		want    string // in the problem and in the jobs' error
		limit   int64  // module size cap, 0: default
		secrets []string
	}{
		{"wasm link to /dev/zero", "zero", func(t *testing.T, dir string) {
			symlink(t, "/dev/zero", filepath.Join(dir, "zero.wasm"))
		}, "zero.wasm is a link that leads out of the modules dir; refused unread", 0, nil},
		{"manifest link to /dev/zero", "zm", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "zm.wasm"), good, 0o644)
			symlink(t, "/dev/zero", filepath.Join(dir, "zm.toml"))
		}, "manifest: zm.toml is a link that leads out of the modules dir; refused unread", 0, nil},
		{"wasm FIFO", "pipe", func(t *testing.T, dir string) {
			mkfifo(t, filepath.Join(dir, "pipe.wasm"))
		}, "pipe.wasm is a named pipe (FIFO), not a regular file; refused", 0, nil},
		{"manifest FIFO", "pm", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "pm.wasm"), good, 0o644)
			mkfifo(t, filepath.Join(dir, "pm.toml"))
		}, "manifest: pm.toml is a named pipe (FIFO), not a regular file; refused", 0, nil},
		{"wasm link outside (absolute)", "out", func(t *testing.T, dir string) {
			symlink(t, secretWasm, filepath.Join(dir, "out.wasm"))
		}, "out.wasm is a link that leads out of the modules dir; refused unread", 0, []string{canary}},
		{"wasm link outside (relative)", "rel", func(t *testing.T, dir string) {
			rel, _ := filepath.Rel(dir, secretWasm)
			symlink(t, rel, filepath.Join(dir, "rel.wasm"))
		}, "rel.wasm is a link that leads out of the modules dir; refused unread", 0, []string{canary}},
		{"manifest link outside", "om", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "om.wasm"), good, 0o644)
			symlink(t, secretToml, filepath.Join(dir, "om.toml"))
		}, "manifest: om.toml is a link that leads out of the modules dir; refused unread", 0, []string{canary}},
		{"link through a link outside", "via", func(t *testing.T, dir string) {
			symlink(t, outside, filepath.Join(dir, "sub"))
			symlink(t, "sub/secret.wasm", filepath.Join(dir, "via.wasm"))
		}, "via.wasm is a link that leads out of the modules dir; refused unread", 0, []string{canary}},
		{"directory", "dir", func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "dir.wasm"), 0o755)
		}, "dir.wasm is a directory, not a regular file; refused", 0, nil},
		{"dangling link", "gone", func(t *testing.T, dir string) {
			symlink(t, "nothing-here.wasm", filepath.Join(dir, "gone.wasm"))
		}, "gone.wasm is a link to nothing; refused", 0, nil},
		{"link loop", "loop", func(t *testing.T, dir string) {
			symlink(t, "loop.wasm", filepath.Join(dir, "loop.wasm"))
		}, "loop.wasm is a loop of links; refused", 0, nil},
		{"larger than the cap (1GiB sparse)", "big", func(t *testing.T, dir string) {
			sparse(t, filepath.Join(dir, "big.wasm"), 1<<30)
		}, "big.wasm is 1GiB, more than the limit of 32MiB; refused unread", 0, nil},
		{"larger than a configured cap", "big", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "big.wasm"), append(handlerModule(-1, -1, "x"), make([]byte, 5000)...), 0o644)
		}, "more than the limit of 4KiB; refused unread", 4096, nil},
		{"manifest larger than 64KiB", "lm", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "lm.wasm"), good, 0o644)
			os.WriteFile(filepath.Join(dir, "lm.toml"), []byte("#"+strings.Repeat("x", 70<<10-2)+"\n"), 0o644)
		}, "manifest: lm.toml is 70KiB, more than the limit of 64KiB; refused unread", 0, nil},
		{"manifest linked to a secret file inside", "sm", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "sm.wasm"), good, 0o644)
			os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("password = hunter2-is-secret\n"), 0o644)
			symlink(t, "notes.txt", filepath.Join(dir, "sm.toml"))
		}, "manifest: sm.toml:1: not valid", 0, []string{"hunter2"}},
		{"manifest with a secret in a bad value", "bv", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "bv.wasm"), good, 0o644)
			os.WriteFile(filepath.Join(dir, "bv.toml"), []byte("[env]\nset = { API_KEY = \"s3cr3t-v4lue\" }\n[limits]\ncpu = \"s3cr3t-v4lue\"\n"), 0o644)
		}, "manifest: bv.toml: limits.cpu is not valid", 0, []string{"s3cr3t"}},
		{"manifest that does not parse", "np", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "np.wasm"), good, 0o644)
			os.WriteFile(filepath.Join(dir, "np.toml"), []byte("[limits]\nmemory = \"t0ps3cret\n"), 0o644)
		}, "manifest: np.toml:2", 0, []string{"t0ps3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeModules(t, map[string][]byte{"good": good})
			tt.setup(t, dir)
			var log logBuffer
			cfg := Config{Dir: dir, Logger: log.logger(), Process: resource.NewProcess(resource.ProcessConfig{Compile: resource.CompileLimits{MaxModuleSize: tt.limit}})}
			r := openTimed(t, cfg, 5*time.Second)
			if _, ok := r.modules["good"]; !ok {
				t.Errorf("the good module did not load: %v", r.Problems())
			}
			problem := r.Problems()[tt.module]
			if problem == nil || !strings.Contains(problem.Error(), tt.want) && !strings.Contains(publicReason(problem), tt.want) {
				t.Fatalf("problem of %s: %v; want %q", tt.module, problem, tt.want)
			}
			if !strings.Contains(log.String(), "handler not loaded") {
				t.Errorf("not in the operator log:\n%s", log.String())
			}
			// What a job routed to it is told.
			_, err := r.route(tt.module)
			if err == nil || !strings.Contains(err.Error(), tt.module+".wasm failed to load: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("job error: %v; want %q", err, tt.want)
			}
			for _, s := range append(tt.secrets, canary) {
				if strings.Contains(err.Error(), s) {
					t.Errorf("the job error quotes %q: %v", s, err)
				}
			}
			if strings.Contains(problem.Error(), canary) || strings.Contains(log.String(), canary) {
				t.Errorf("a file outside the dir was read: %v", problem)
			}
			// The same broken version is not tried again.
			if err := r.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(log.String(), "handler not loaded"); n != 1 {
				t.Errorf("reported %d times", n)
			}
		})
	}
}

// TestLinksInsideAreFollowed: a link that stays inside the dir is a module
// like any other.
func TestLinksInsideAreFollowed(t *testing.T) {
	dir := writeModules(t, nil)
	os.Mkdir(filepath.Join(dir, "versions"), 0o755)
	os.WriteFile(filepath.Join(dir, "versions", "h-1.wasm"), handlerModule(-1, -1, "1"), 0o644)
	os.WriteFile(filepath.Join(dir, "versions", "h.toml"), []byte("[limits]\nmemory = \"4MiB\"\n"), 0o644)
	symlink(t, "versions/h-1.wasm", filepath.Join(dir, "h.wasm"))
	symlink(t, "versions/h.toml", filepath.Join(dir, "h.toml"))
	r := openTimed(t, Config{Dir: dir}, 5*time.Second)
	m := r.modules["h"]
	if m == nil || m.limits.Memory != 4<<20 {
		t.Fatalf("module %+v, problems %v", m, r.Problems())
	}
	// Re-pointing the link is a new version.
	os.WriteFile(filepath.Join(dir, "versions", "h-2.wasm"), handlerModule(-1, -1, "2"), 0o644)
	os.Remove(filepath.Join(dir, "h.wasm"))
	symlink(t, "versions/h-2.wasm", filepath.Join(dir, "h.wasm"))
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.modules["h"] == m {
		t.Error("the re-pointed link was not reloaded")
	}
}

// TestFileGrowsWhileRead: a file that grows past the cap after its size
// was checked is refused without being read whole.
func TestFileGrowsWhileRead(t *testing.T) {
	dir := writeModules(t, map[string][]byte{"good": handlerModule(-1, -1, "good"), "grow": handlerModule(-1, -1, "grow")})
	path := filepath.Join(dir, "grow.wasm")
	testHookOpened = func(name string) {
		if name == "grow.wasm" {
			if err := os.Truncate(path, 1<<40); err != nil { // 1 TiB, sparse
				t.Error(err)
			}
		}
	}
	defer func() { testHookOpened = nil }()
	r := openTimed(t, Config{Dir: dir}, 5*time.Second)
	if p := r.Problems()["grow"]; p == nil || !strings.Contains(p.Error(), "grow.wasm grew past the limit of 32MiB while being read; refused") {
		t.Errorf("problem: %v", p)
	}
	if r.modules["good"] == nil {
		t.Errorf("good: %v", r.Problems())
	}
}

// TestFileBecomesFIFO: a regular file replaced by a FIFO between the stat
// and the open does not block the open, and is refused.
func TestFileBecomesFIFO(t *testing.T) {
	dir := writeModules(t, map[string][]byte{"good": handlerModule(-1, -1, "good"), "swap": handlerModule(-1, -1, "swap")})
	path := filepath.Join(dir, "swap.wasm")
	testHookStatted = func(name string) {
		if name == "swap.wasm" {
			os.Remove(path)
			mkfifo(t, path)
		}
	}
	defer func() { testHookStatted = nil }()
	r := openTimed(t, Config{Dir: dir}, 5*time.Second)
	if p := r.Problems()["swap"]; p == nil || !strings.Contains(p.Error(), "swap.wasm is a named pipe (FIFO), not a regular file") {
		t.Errorf("problem: %v", p)
	}
}

// TestFileGrowingConcurrently: a file another process keeps appending to
// costs at most the cap: it is refused, and loading returns.
func TestFileGrowingConcurrently(t *testing.T) {
	dir := writeModules(t, map[string][]byte{"good": handlerModule(-1, -1, "good")})
	f, err := os.Create(filepath.Join(dir, "endless.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := []byte(strings.Repeat("\xff", 64<<10)) // not WebAssembly
	f.Write(handlerModule(-1, -1, "endless"))
	f.Write(chunk)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := f.Write(chunk); err != nil {
				return
			}
		}
	}()
	proc := resource.NewProcess(resource.ProcessConfig{Compile: resource.CompileLimits{MaxModuleSize: 1 << 20}})
	for range 3 {
		r := openTimed(t, Config{Dir: dir, Process: proc}, 10*time.Second)
		if p := r.Problems()["endless"]; p == nil {
			t.Error("a growing file loaded")
		}
		if r.modules["good"] == nil {
			t.Errorf("good: %v", r.Problems())
		}
	}
	close(stop)
	wg.Wait()
}

// TestModulesDirIsAFIFO: a FIFO where the modules dir should be fails
// Open at once.
func TestModulesDirIsAFIFO(t *testing.T) {
	parent := t.TempDir()
	path := filepath.Join(parent, "mods")
	mkfifo(t, path)
	done := make(chan error, 1)
	go func() {
		_, err := Open(context.Background(), Config{Dir: path})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "is not a directory") {
			t.Errorf("Open: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open blocked on a FIFO")
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := unix.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}
