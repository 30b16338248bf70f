package hostfuncs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

// wasmFile returns testdata/hostfuncs/name.wasm. The files are built by
// testdata/hostfuncs/build.sh; without them the test is skipped, except
// in CI.
func wasmFile(t testing.TB, name string) []byte {
	t.Helper()
	path := filepath.Join("..", "testdata", "hostfuncs", name+".wasm")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		msg := fmt.Sprintf("%s is missing: run testdata/hostfuncs/build.sh (needs wat2wasm from wabt)", path)
		if os.Getenv("CI") == "" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// engines are the wazero engines tests run on.
var engines = map[string]func() wazero.RuntimeConfig{
	"compiler":    wazero.NewRuntimeConfigCompiler,
	"interpreter": wazero.NewRuntimeConfigInterpreter,
}

// guest is an instance of a test guest with the host module.
type guest struct {
	t   testing.TB
	mod api.Module
}

func newGuest(t testing.TB, name string, cfg wazero.RuntimeConfig) *guest {
	t.Helper()
	wasm := wasmFile(t, name)
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	t.Cleanup(func() { r.Close(ctx) })
	if _, err := hostfuncs.Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	return &guest{t: t, mod: mod}
}

// call calls the guest's export fn and returns its result.
func (g *guest) call(ctx context.Context, fn string, args ...uint64) uint64 {
	g.t.Helper()
	f := g.mod.ExportedFunction(fn)
	if f == nil {
		g.t.Fatalf("guest has no export %q", fn)
	}
	res, err := f.Call(ctx, args...)
	if err != nil {
		g.t.Fatalf("%s: %v", fn, err)
	}
	return res[0]
}

// call32 calls an export with an i32 result.
func (g *guest) call32(ctx context.Context, fn string, args ...uint64) int64 {
	g.t.Helper()
	return int64(int32(uint32(g.call(ctx, fn, args...))))
}

// put writes s to the guest's memory at off.
func (g *guest) put(off uint32, s string) {
	g.t.Helper()
	if !g.mod.Memory().WriteString(off, s) {
		g.t.Fatalf("cannot write %d bytes at %#x", len(s), off)
	}
}

// get reads n bytes of the guest's memory at off.
func (g *guest) get(off, n uint32) string {
	g.t.Helper()
	b, ok := g.mod.Memory().Read(off, n)
	if !ok {
		g.t.Fatalf("cannot read %d bytes at %#x", n, off)
	}
	return string(b)
}

// sections writes section marks into the job log.
type sections struct{ w io.Writer }

func (s sections) StartSection(name, header string) {
	fmt.Fprintf(s.w, "[start %s: %s]\n", name, header)
}
func (s sections) EndSection(name string) { fmt.Fprintf(s.w, "[end %s]\n", name) }

// dep is a dependency whose artifacts are in memory.
type dep struct {
	id    int64
	name  string
	files []string          // nil: no artifacts
	data  map[string]string // content of files
	err   error             // returned by Files and Open
	block bool              // Files and Open wait for ctx to end
	panic bool              // Files and Open panic
}

func (d *dep) ID() int64    { return d.id }
func (d *dep) Name() string { return d.name }
func (d *dep) check(ctx context.Context) error {
	switch {
	case d.panic:
		panic("dependency exploded")
	case d.block:
		<-ctx.Done()
		return fmt.Errorf("downloading: %w", ctx.Err())
	case d.err != nil:
		return d.err
	case d.files == nil:
		return fmt.Errorf("%s has no artifacts: %w", d.name, fs.ErrNotExist)
	}
	return nil
}

func (d *dep) Files(ctx context.Context) ([]string, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	return d.files, nil
}

func (d *dep) Open(ctx context.Context, name string) (io.ReaderAt, int64, error) {
	if err := d.check(ctx); err != nil {
		return nil, 0, err
	}
	s, ok := d.data[name]
	if !ok {
		return nil, 0, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return strings.NewReader(s), int64(len(s)), nil
}

// sink records artifacts; some names fail.
type sink struct {
	mu    sync.Mutex
	files []string
	data  map[string]string
}

func (s *sink) fail(name string) error {
	switch {
	case strings.HasPrefix(name, "../"):
		return fmt.Errorf("%q is not a path inside the build dir: %w", name, fs.ErrInvalid)
	case name == "missing":
		return &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	case name == "broken":
		return errors.New("disk full")
	}
	return nil
}

func (s *sink) AddFile(rel string) error {
	if err := s.fail(rel); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = append(s.files, rel)
	return nil
}

func (s *sink) AddData(name string, data []byte) error {
	if err := s.fail(name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		s.data = map[string]string{}
	}
	s.data[name] = string(data)
	return nil
}

// panicLog returns an operator log that fails the test on any record:
// host functions must not panic on guest input.
func panicLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(failWriter{t}, nil))
}

type failWriter struct{ t testing.TB }

func (w failWriter) Write(p []byte) (int, error) {
	w.t.Errorf("operator log: %s", p)
	return len(p), nil
}

// errno formats an expected error code.
func errno(e abi.Errno) int64 { return int64(e) }

// slogTo returns an operator log written to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
