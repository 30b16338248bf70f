package modules

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/sandboxfs"
	"github.com/wasmrunner/wasmrunner/internal/wasmbin"
)

// Snapshots of Go handlers. A Go reactor's _initialize starts Go's runtime
// and runs the program's init functions: a few milliseconds, and its data
// segments (megabytes) copied into each instance's memory. A module
// eligible for it (snapshotEligible) is loaded without its data segments
// (wasmbin.Snapshottable), and when it is loaded one instance of it, the
// template, is initialized outside any job: the data segments written,
// _initialize run. Its memory goes into a sealed memfd (memImage) and its
// mutable globals are noted. Each job then gets a fresh instance whose
// memory maps the image copy-on-write and whose globals are set to the
// template's: what the job's guest writes is its own (pages copied on
// write); the image cannot change. When no snapshot could be taken, each
// job's instance is initialized as the template was (startState.initialize).
//
// The template runs in a neutral sandbox: arguments as a job's, an
// environment of the manifest's env.set only, an empty build dir it may not
// write, an empty file-variables dir, no host functions of the runner (a
// call fails, and then no snapshot is taken). What its initialization
// wrote on stdout and stderr is written into each job's log, as it would
// have been. See docs/RATIONALE.md for what the Go program sees differ.

// globalExportPrefix names the exports wasmbin.Snapshottable adds for
// the mutable globals.
const globalExportPrefix = "wasmrunner.snapshot.global."

// Bounds of the template's initialization and probe step (both within
// snapshotTimeout: a module's load waits for them, and the modules loading
// after it too).
const (
	snapshotTimeout   = 10 * time.Second
	maxSnapshotOutput = 64 << 10
	snapshotOpenFiles = 64
)

// sdkRefreshEnv is the Go SDK's function that makes each step's WASI
// environment Go's (os.Getenv): a snapshot's own is the template's. Go's
// linker writes it in the name section with "/" and "-" as "_".
const sdkRefreshEnv = "github.com_wasmrunner_wasmrunner_guest_sdk_go.refreshEnv"

// startState is how the instances of a module loaded without its data
// segments get their initial state.
type startState struct {
	layout *wasmbin.Snapshot
	snap   *snapshot // nil: each instance is initialized
	// dataOnly: the module is not a Go reactor; snap's image, if any,
	// holds the data segments only (see takeDataImage), and each instance
	// runs its own _initialize, as instantiation does.
	dataOnly bool
	// why there is no snapshot, "" when there is one.
	why string
}

// snapshot is an initialized instance's state.
type snapshot struct {
	image   *memImage
	globals []uint64 // values of layout.Globals, in order
	output  []byte   // what _initialize wrote on stdout and stderr
	took    time.Duration
}

// snapshotEligible reports whether a module's instances may start from a
// snapshot, or, for a Go reactor, why not.
func snapshotEligible(tc toolchain, man Manifest, limits resource.Limits) (bool, string) {
	switch {
	case !tc.goRuntime || !tc.exports[abi.ExportInitialize] || !tc.exports[abi.ExportStep]:
		return false, ""
	case man.Start.Snapshot != nil && !*man.Start.Snapshot:
		return false, "its manifest says [start] snapshot = false"
	case limits.CPU == resource.CPUUninterrupted:
		return false, "its CPU policy is uninterrupted (its initialization could not be stopped)"
	case !tc.sdkRefreshEnv:
		return false, "it is not built on wasmrunner's Go SDK, which makes each step's environment Go's (os.Getenv)"
	}
	return true, ""
}

// dataImageEligible reports whether the instances of a module that is not
// a Go reactor may map its data segments from an image (takeDataImage):
// reactors (a fresh instance per job, whose _initialize runs in it) unless
// the manifest opts out.
func dataImageEligible(tc toolchain, man Manifest) bool {
	return !tc.goRuntime && tc.exports[abi.ExportStep] &&
		(man.Start.Snapshot == nil || *man.Start.Snapshot)
}

// takeDataImage puts the data segments of m, loaded without them, into
// an image of its initial memory: exactly what instantiation would have
// written, before any of the guest's code runs. No guest code runs here, and
// each instance runs its own initialization (_initialize) from that state,
// so an instance from the image is the same as one instantiated from the
// module. What the instances share copy-on-write are the pages of data
// (constants, mostly) they only read: the Rust shell's 111 KB of data
// segments were copied into each job's memory.
func takeDataImage(m *module) error {
	layout := m.start.layout
	size := uint64(layout.MemoryMin) * 65536
	if len(layout.Data) == 0 {
		return errors.New("it has no data segments")
	}
	b := make([]byte, size)
	for i, seg := range layout.Data {
		if uint64(seg.Offset)+uint64(len(seg.Data)) > size {
			// Instantiation fails; each instance's initialize says why.
			return fmt.Errorf("data segment %d (%d bytes at %d) is out of the initial memory's bounds", i, len(seg.Data), seg.Offset)
		}
		copy(b[seg.Offset:], seg.Data)
	}
	img, err := newMemImage(b)
	if err != nil {
		return err
	}
	m.start.snap = &snapshot{image: img}
	m.start.layout.Data = nil
	return nil
}

// image is the memory image the module's instances start with, or nil.
func (m *module) image() *memImage {
	if m.start == nil || m.start.snap == nil {
		return nil
	}
	return m.start.snap.image
}

// initialize gives a fresh instance of a module loaded without its data
// segments the state its instantiation would have given it (the data
// segments), then runs _initialize.
func (s *startState) initialize(ctx context.Context, inst api.Module) error {
	mem := inst.Memory()
	for i, seg := range s.layout.Data {
		if mem == nil || !mem.Write(seg.Offset, seg.Data) {
			return fmt.Errorf("data segment %d (%d bytes at %d) is out of the memory's bounds", i, len(seg.Data), seg.Offset)
		}
	}
	if f := inst.ExportedFunction(abi.ExportInitialize); f != nil {
		if _, err := f.Call(ctx); err != nil {
			return err
		}
	}
	return nil
}

// start gives a fresh instance its initial state: the snapshot's (its
// memory is the image already: see withMemory), whose initialization
// output goes to log, or its own initialization's.
func (s *startState) start(ctx context.Context, inst api.Module, log io.Writer) error {
	if s.snap == nil {
		return s.initialize(ctx, inst)
	}
	if s.dataOnly {
		// The memory is the image (the data segments): what is left is
		// the instance's own initialization.
		return s.initialize(ctx, inst)
	}
	mem := inst.Memory()
	if cur := uint64(mem.Size()); cur < s.snap.image.size {
		if _, ok := mem.Grow(uint32((s.snap.image.size - cur) / 65536)); !ok {
			return errors.New("its memory could not grow to the snapshot's size")
		}
	}
	for i, g := range s.layout.Globals {
		mg, ok := inst.ExportedGlobal(g.Export).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("global %d is not exported mutable", g.Index)
		}
		mg.Set(s.snap.globals[i])
	}
	if len(s.snap.output) > 0 {
		_, _ = log.Write(s.snap.output)
	}
	return nil
}

func (s *startState) close() {
	if s != nil && s.snap != nil {
		s.snap.image.close()
	}
}

// takeSnapshot initializes the template instance of m and captures its
// state; m.start.snap is set on success.
func (r *Registry) takeSnapshot(ctx context.Context, m *module) error {
	began := time.Now()
	pool := resource.NewPool(fmt.Sprintf("the memory limit of %s (limits.memory)", m.name), m.limits.Memory, r.proc.Memory)
	if !pool.TakeAll(m.tableBytes) {
		return fmt.Errorf("its tables need %d bytes: %s is used up", m.tableBytes, refusedBy(pool))
	}
	dir, err := os.MkdirTemp("", "wasmrunner-snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	files := resource.NewPool("open files", snapshotOpenFiles, nil)
	fsys, err := sandboxfs.New(dir, sandboxfs.WithBytes(resource.NewPool("disk", 0, nil)),
		sandboxfs.WithEntries(resource.NewPool("files", 0, nil)), sandboxfs.WithOpenFiles(files))
	if err != nil {
		return err
	}
	defer fsys.Close()

	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	var env []string
	for _, k := range sortedKeys(m.manifest.Env.Set) {
		env = append(env, k+"="+m.manifest.Env.Set[k])
	}
	ctx, calls := hostfuncs.WithInit(ctx, env)
	ctx = withMemory(ctx, pool, nil, nil)
	out := &headBuffer{max: maxSnapshotOutput + 1}
	cfg := instanceConfig(ctx, m.name, out, snapshotFS(fsys, nil), nil)
	inst, err := instantiateSafely(ctx, m, cfg)
	if err != nil {
		return fmt.Errorf("instantiating: %w", err)
	}
	defer inst.Close(context.Background())
	openBefore := files.Used()
	if err := m.start.initialize(ctx, inst); err != nil {
		return fmt.Errorf("initializing: %w", err)
	}
	switch {
	case calls.HostCalls() > 0:
		return errors.New("its initialization calls the runner's host functions, which belong to a job")
	case out.buf.Len() > maxSnapshotOutput:
		return fmt.Errorf("its initialization writes more than %d bytes of output", maxSnapshotOutput)
	case files.Used() > openBefore+1:
		// One is the build dir's pre-opened descriptor, which wazero
		// opens when the guest first asks about it (Go's runtime does,
		// when it starts).
		return errors.New("its initialization leaves files open")
	}
	mem := inst.Memory()
	data, ok := mem.Read(0, mem.Size())
	if !ok {
		return errors.New("reading its memory")
	}
	s := &snapshot{output: append([]byte(nil), out.buf.Bytes()...)}
	for _, g := range m.start.layout.Globals {
		eg := inst.ExportedGlobal(g.Export)
		if eg == nil {
			return fmt.Errorf("global %d is not exported", g.Index)
		}
		s.globals = append(s.globals, eg.Get())
	}
	if s.image, err = newMemImage(data); err != nil {
		return err
	}
	m.start.snap = s
	// The data segments are in the image: no instance needs them again.
	m.start.layout.Data = nil
	if hot, err := probeWrites(ctx, m, cfg, r.proc.Memory); err == nil {
		s.image.hot = hot
	} else {
		r.log.Debug("no probe of the pages a step writes", "module", m.name, "error", err)
	}
	s.took = time.Since(began)
	return nil
}

// probeWrites starts an instance from m's snapshot, calls its step outside
// any job (where the SDK finds no script and returns: Go's runtime and the
// SDK's start of a step run), and returns the pages of the image it wrote,
// which every step writes.
func probeWrites(ctx context.Context, m *module, cfg wazero.ModuleConfig, procMemory *resource.Pool) ([]pageRun, error) {
	snap := m.start.snap
	pool := resource.NewPool("probe", m.limits.Memory, procMemory)
	ctx = withMemory(ctx, pool, snap.image, nil)
	inst, err := instantiateSafely(ctx, m, cfg)
	if err != nil {
		return nil, err
	}
	defer inst.Close(context.Background())
	if err := m.start.start(ctx, inst, io.Discard); err != nil {
		return nil, err
	}
	if _, err := inst.ExportedFunction(abi.ExportStep).Call(ctx, uint64(abi.PhaseScript)); err != nil {
		return nil, err
	}
	mem, ok := inst.Memory().Read(0, uint32(snap.image.size))
	if !ok {
		return nil, errors.New("reading its memory")
	}
	return copiedPages(mem)
}

// instantiateSafely instantiates m; a panic (a memory the allocator could
// not reserve) is an error.
func instantiateSafely(ctx context.Context, m *module, cfg wazero.ModuleConfig) (inst api.Module, err error) {
	defer func() {
		if p := recover(); p != nil {
			inst, err = nil, fmt.Errorf("could not make an instance: %v", p)
		}
	}()
	return m.runtime.InstantiateModule(ctx, m.compiled, cfg)
}

// instanceConfig is the configuration of an instance of module name: its
// output to log, fsc its file system; WASI sleeps end when stop does, and
// idle, if set, hears of each before it begins (see hostfuncs.Env.Idle).
func instanceConfig(stop context.Context, name string, log io.Writer, fsc wazero.FSConfig, idle func(time.Duration)) wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithArgs(name).
		WithStdout(log).
		WithStderr(log).
		WithFSConfig(fsc).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithNanosleep(func(ns int64) {
			if idle != nil && stop.Err() == nil {
				idle(time.Duration(ns))
			}
			t := time.NewTimer(time.Duration(ns))
			defer t.Stop()
			select {
			case <-t.C:
			case <-stop.Done():
			}
		}).
		WithStartFunctions()
}

// snapshotFS is the file system of the instances of a module that starts
// from a snapshot: the build dir at "/", the first pre-opened directory,
// then the file variables (an empty directory if the job has none), always
// in that order: Go's runtime notes the pre-opened directories when it
// starts, in the template.
func snapshotFS(fsys *sandboxfs.FS, fileVars fs.FS) wazero.FSConfig {
	cfg := sandboxfs.Mount(wazero.NewFSConfig(), fsys, "/")
	if fileVars == nil {
		fileVars = newMemFS(map[string][]byte{})
	}
	return mountFileVars(cfg, fileVars)
}
