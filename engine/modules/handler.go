package modules

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/sandboxfs"
)

// handler runs one job in instances of one module.
type handler struct {
	reg  *Registry
	mod  *module
	job  *engine.Job
	log  io.Writer // the job log, bounded by the manifest
	fsys *sandboxfs.FS
	deps []hostfuncs.Dependency
	http *hostfuncs.HTTPPolicy

	mu       sync.Mutex
	inst     api.Module // the reactor instance, nil before the first step or after an exit
	released bool

	fileVars     *sandboxfs.FS // the job's file variables, mounted at FileVariablesPath
	fileVarsHost string

	diskWarned  bool // the disk limit warning is in the job log
	filesWarned bool // the file count limit warning is in the job log
}

// fileVarsQuota bounds what a guest may add to the file variables dir.
const fileVarsQuota = 1 << 20

// fileVarsEntries bounds the names a guest may create in the file variables
// dir.
const fileVarsEntries = 64

// FileVariablesPath is where guests find the job's file variables: a file
// variable's value, for a guest, is FileVariablesPath + "/" + its name.
const FileVariablesPath = "/run/wasmrunner/file-variables"

var _ engine.Handler = (*handler)(nil)

// newHandler routes a job to its module and prepares its sandbox.
func (r *Registry) newHandler(ctx context.Context, job *engine.Job) (engine.Handler, error) {
	m, err := r.route(job.Image())
	if err != nil {
		return nil, err
	}
	if err := r.acquireSlots(ctx, m); err != nil {
		m.release()
		return nil, err
	}
	h := &handler{reg: r, mod: m, job: job}
	ok := false
	defer func() {
		if !ok {
			h.release()
		}
	}()
	man := &m.manifest
	h.fsys, err = sandboxfs.New(job.BuildDir(), sandboxfs.WithQuota(int64(man.Limits.Disk)), sandboxfs.WithMaxEntries(man.Limits.Files))
	if err != nil {
		return nil, fmt.Errorf("sandboxing the build dir: %w", err)
	}
	if dir := job.FileVariablesDir(); dir != "" {
		if h.fileVars, err = sandboxfs.New(dir, sandboxfs.WithQuota(fileVarsQuota), sandboxfs.WithMaxEntries(fileVarsEntries)); err != nil {
			return nil, fmt.Errorf("sandboxing file variables: %w", err)
		}
		h.fileVarsHost = dir
	}
	h.log = job.Writer()
	if lim := int64(man.Limits.Log); lim > 0 {
		h.log = &limitWriter{w: h.log, left: lim, notice: fmt.Sprintf("\n\x1b[33;1mWARNING: handler %s reached its log limit of %d bytes; further output is dropped\x1b[0;m\n", m.name, lim)}
	}
	for _, d := range job.Dependencies() {
		h.deps = append(h.deps, &depFiles{d: d})
	}
	h.http = m.http
	ok = true
	return h, nil
}

// acquireSlots takes a global and a per-module instance slot.
func (r *Registry) acquireSlots(ctx context.Context, m *module) error {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	if m.slots != nil {
		select {
		case m.slots <- struct{}{}:
		case <-ctx.Done():
			<-r.slots
			return context.Cause(ctx)
		}
	}
	return nil
}

func (h *handler) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	if h.inst != nil {
		h.inst.Close(context.Background())
		h.inst = nil
	}
	if h.fsys != nil {
		h.fsys.Close()
	}
	if h.fileVars != nil {
		h.fileVars.Close()
	}
	if h.mod.slots != nil {
		<-h.mod.slots
	}
	<-h.reg.slots
	h.mod.release()
}

// visibleVars returns the job's variables the handler may see, read anew
// for each step (after_script adds CI_JOB_STATUS).
func (h *handler) visibleVars() []hostfuncs.Var {
	var vars []hostfuncs.Var
	for _, v := range h.job.Variables() {
		if !h.mod.manifest.varVisible(v.Key) {
			continue
		}
		value := v.Value
		if v.File && h.fileVarsHost != "" {
			// The guest reaches the file through its own mount.
			value = FileVariablesPath + "/" + filepath.Base(v.Value)
		}
		vars = append(vars, hostfuncs.Var{Name: v.Key, Value: value, Masked: v.Masked})
	}
	return vars
}

// moduleConfig is the sandbox of one instance.
func (h *handler) moduleConfig(stop context.Context, start string, vars []hostfuncs.Var) wazero.ModuleConfig {
	man := &h.mod.manifest
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithArgs(h.mod.name).
		WithStdout(h.log).
		WithStderr(h.log).
		WithFSConfig(h.fsConfig()).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithNanosleep(func(ns int64) {
			// WASI sleeps end when the job does.
			t := time.NewTimer(time.Duration(ns))
			defer t.Stop()
			select {
			case <-t.C:
			case <-stop.Done():
			}
		}).
		WithStartFunctions()
	if start != "" {
		cfg = cfg.WithStartFunctions(start)
	}
	for _, v := range vars {
		if matchAny(man.Env.Variables, v.Name) {
			cfg = cfg.WithEnv(v.Name, v.Value)
		}
	}
	for k, v := range man.Env.Set {
		cfg = cfg.WithEnv(k, v)
	}
	return cfg
}

// fsConfig mounts the build dir as "/" and the file variables, if any.
func (h *handler) fsConfig() wazero.FSConfig {
	cfg := sandboxfs.Mount(wazero.NewFSConfig(), h.fsys, "/")
	if h.fileVars != nil {
		cfg = sandboxfs.Mount(cfg, h.fileVars, FileVariablesPath)
	}
	return cfg
}

// Step runs one phase in the guest.
func (h *handler) Step(ctx context.Context, script []string, phase engine.Phase) error {
	if lim := time.Duration(h.mod.manifest.Limits.Timeout); lim > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, lim, engine.NewJobError(gitlab.JobExecutionTimeout,
			fmt.Errorf("%w: handler %s may run at most %s", engine.ErrTimeout, h.mod.name, lim)))
		defer cancel()
	}
	defer h.warnDisk()
	vars := h.visibleVars()
	env := h.env(ctx, script, abi.Phase(phase), vars)
	env.Artifacts = artifactSink{h.job}
	// The guest may notice the end (is_canceled, sleeps return early) and
	// finish; StopGrace later it is interrupted wherever it is.
	callCtx, cancel := graceContext(ctx, h.reg.cfg.StopGrace)
	defer cancel()
	callCtx = hostfuncs.WithEnv(callCtx, env)

	if h.mod.reactor {
		return h.stepReactor(ctx, callCtx, phase, vars)
	}
	return h.stepCommand(ctx, callCtx, vars)
}

// warnDisk notes in the job log, once each, that the guest hit its disk
// limit or its file count limit (the guest itself only sees EIO: wazero has
// no ENOSPC or EDQUOT).
func (h *handler) warnDisk() {
	h.warnFiles()
	if h.diskWarned {
		return
	}
	for _, q := range []struct {
		fs    *sandboxfs.FS
		limit int64
		what  string
	}{{h.fsys, int64(h.mod.manifest.Limits.Disk), "disk limit"}, {h.fileVars, fileVarsQuota, "file variables disk limit"}} {
		if q.fs != nil && q.fs.QuotaHit() {
			h.diskWarned = true
			h.job.Printf("\x1b[33;1mWARNING: handler %s reached its %s of %d bytes; writes past it failed\x1b[0;m", h.mod.name, q.what, q.limit)
			return
		}
	}
}

// warnFiles is warnDisk for the file count limits.
func (h *handler) warnFiles() {
	if h.filesWarned {
		return
	}
	for _, q := range []struct {
		fs    *sandboxfs.FS
		limit int64
		where string
	}{{h.fsys, h.mod.manifest.Limits.Files, ""}, {h.fileVars, fileVarsEntries, " in the file variables dir"}} {
		if q.fs != nil && q.fs.EntriesHit() {
			h.filesWarned = true
			h.job.Printf("\x1b[33;1mWARNING: handler %s reached its limit of %d files and directories%s; creating more failed\x1b[0;m", h.mod.name, q.limit, q.where)
			return
		}
	}
}

// env is what the guest's host calls act on during one call.
func (h *handler) env(stop context.Context, script []string, phase abi.Phase, vars []hostfuncs.Var) *hostfuncs.Env {
	return &hostfuncs.Env{
		Log:      h.log,
		Sections: h.job,
		Job: hostfuncs.JobInfo{ID: h.job.ID(), ProjectID: h.job.ProjectID(), Name: h.job.Name(), Stage: h.job.Stage(),
			ProjectName: h.job.ProjectName(), Image: h.job.Image(), Timeout: h.job.Timeout()},
		Phase:  phase,
		Script: script,
		Vars:   vars,
		Deps:   h.deps,
		Stop:   stop,
		HTTP:   h.http,
		Logger: h.reg.log,
	}
}

func (h *handler) stepReactor(ctx, callCtx context.Context, phase engine.Phase, vars []hostfuncs.Var) error {
	h.mu.Lock()
	inst := h.inst
	h.mu.Unlock()
	if inst == nil || inst.IsClosed() {
		start := ""
		if _, ok := h.mod.compiled.ExportedFunctions()[abi.ExportInitialize]; ok {
			start = abi.ExportInitialize
		}
		var err error
		began := time.Now()
		inst, err = h.mod.runtime.InstantiateModule(callCtx, h.mod.compiled, h.moduleConfig(ctx, start, vars))
		if err != nil {
			return h.guestError(ctx, "starting", err)
		}
		if o := h.reg.cfg.Observer; o != nil {
			o.ModuleInstantiated(h.mod.name, time.Since(began))
		}
		h.mu.Lock()
		h.inst = inst
		h.mu.Unlock()
	}
	res, err := inst.ExportedFunction(abi.ExportStep).Call(callCtx, uint64(uint32(phase)))
	if err != nil {
		return h.guestError(ctx, "running", err)
	}
	if code := int32(uint32(res[0])); code != 0 {
		return engine.Exit(int(code))
	}
	return nil
}

// stepCommand runs a command module's _start in a fresh instance.
func (h *handler) stepCommand(ctx, callCtx context.Context, vars []hostfuncs.Var) error {
	inst, err := h.mod.runtime.InstantiateModule(callCtx, h.mod.compiled, h.moduleConfig(ctx, abi.ExportStart, vars))
	if inst != nil {
		defer inst.Close(context.Background())
	}
	if err != nil {
		return h.guestError(ctx, "running", err)
	}
	return nil
}

// guestError turns what a guest call returned into the step's error.
func (h *handler) guestError(ctx context.Context, doing string, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case 0:
			return nil
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			if cause := context.Cause(ctx); cause != nil {
				return cause
			}
			return err
		default:
			return engine.Exit(int(exit.ExitCode()))
		}
	}
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	h.job.Printf("\x1b[31;1mERROR: handler %s failed while %s: %v\x1b[0;m", h.mod.name, doing, err)
	return fmt.Errorf("handler %s: %w", h.mod.name, err)
}

// Cleanup calls the guest's cleanup export, then frees the sandbox.
func (h *handler) Cleanup(ctx context.Context) {
	defer h.release()
	h.mu.Lock()
	inst := h.inst
	h.mu.Unlock()
	if inst == nil || inst.IsClosed() || !h.mod.hasCleanup {
		return
	}
	// Cleanup gets host calls of its own (to release remote resources,
	// say), bounded by its own deadline.
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	callCtx = hostfuncs.WithEnv(callCtx, h.env(callCtx, nil, abi.PhaseAfterScript, h.visibleVars()))
	if _, err := inst.ExportedFunction(abi.ExportCleanup).Call(callCtx); err != nil {
		h.job.Printf("\x1b[33;1mWARNING: handler %s cleanup failed: %v\x1b[0;m", h.mod.name, err)
	}
}

// graceContext is a context that ends grace after ctx does, with ctx's
// values and cause.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	hard, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	var mu sync.Mutex
	var timer *time.Timer
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		timer = time.AfterFunc(grace, func() { cancel(context.Cause(ctx)) })
	})
	return hard, func() {
		stop()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel(context.Canceled)
	}
}

// limitWriter passes on at most left bytes, then one notice.
type limitWriter struct {
	mu     sync.Mutex
	w      io.Writer
	left   int64
	notice string
	done   bool
}

func (l *limitWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return len(p), nil
	}
	if int64(len(p)) <= l.left {
		l.left -= int64(len(p))
		return l.w.Write(p)
	}
	if l.left > 0 {
		_, _ = l.w.Write(p[:l.left])
	}
	l.left = 0
	l.done = true
	_, _ = io.WriteString(l.w, l.notice)
	return len(p), nil
}

// artifactSink adds files to the job's artifacts.
type artifactSink struct{ job *engine.Job }

func (a artifactSink) AddFile(rel string) error { return a.job.AddArtifact(rel) }
func (a artifactSink) AddData(name string, data []byte) error {
	return a.job.AddArtifactData(name, data)
}

// maxDepFile bounds a dependency file a guest reads without extracting.
const maxDepFile = 256 << 20

// depFiles gives a guest a dependency's artifacts without extracting
// them, decompressing one file at a time.
type depFiles struct {
	d *engine.Dependency

	mu   sync.Mutex
	name string
	data []byte
}

func (f *depFiles) ID() int64    { return f.d.ID }
func (f *depFiles) Name() string { return f.d.Name }

func (f *depFiles) Files(ctx context.Context) ([]string, error) {
	a, err := f.d.Artifacts(ctx)
	if errors.Is(err, engine.ErrNoArtifacts) {
		return nil, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	if err != nil {
		return nil, err
	}
	return a.Files(), nil
}

func (f *depFiles) Open(ctx context.Context, name string) (io.ReaderAt, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.data != nil && f.name == name {
		return bytes.NewReader(f.data), int64(len(f.data)), nil
	}
	a, err := f.d.Artifacts(ctx)
	if errors.Is(err, engine.ErrNoArtifacts) {
		return nil, 0, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	if err != nil {
		return nil, 0, err
	}
	file, err := a.Open(name)
	if err != nil {
		return nil, 0, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	if fi.Size() > maxDepFile {
		return nil, 0, fmt.Errorf("%s: %d bytes, more than %d", name, fi.Size(), maxDepFile)
	}
	data, err := io.ReadAll(io.LimitReader(file, maxDepFile+1))
	if err != nil {
		return nil, 0, err
	}
	f.name, f.data = name, data
	return bytes.NewReader(data), int64(len(data)), nil
}
