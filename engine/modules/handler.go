package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/sandboxfs"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

// handler runs one job in instances of one module.
type handler struct {
	reg  *Registry
	mod  *module
	lim  resource.Limits // the module's effective limits
	job  *engine.Job
	log  *engine.BoundedLog // the job log, bounded by limits.log
	fsys *sandboxfs.FS
	deps []hostfuncs.Dependency
	http *hostfuncs.HTTPPolicy

	// fileVars holds the file variables the handler may see, read-only,
	// mounted at FileVariablesPath; nil when there are none.
	fileVars fs.FS

	// Pools of this job: memory (linear memory and tables, within the
	// process's guest memory budget), build dir bytes and entries, and
	// open descriptors (within the process's budget).
	mem, disk, entries, fds *resource.Pool
	tables                  int64 // bytes of mem charged for the tables

	// linear is the linear memory of the latest instance (see idle).
	linear atomic.Pointer[linearMemory]

	mu       sync.Mutex
	inst     api.Module // the reactor instance, nil before the first step or after an exit
	calls    int        // guest calls in progress
	released bool       // Cleanup is done with the handler
	freed    bool       // the sandbox is freed
	outlived bool       // a guest call was still running when the job ended
	warned   map[string]bool
}

// FileVariablesPath is where guests find the job's file variables: a file
// variable's value, for a guest, is FileVariablesPath + "/" + its name.
const FileVariablesPath = "/run/wasmrunner/file-variables"

// GuestProjectDir is the guest's path of the job's build dir, and so the
// value of CI_PROJECT_DIR and CI_BUILDS_DIR for guests: no host path
// reaches a guest.
const GuestProjectDir = "/"

// maxFileVariable bounds the content of one file variable a guest sees.
const maxFileVariable = 1 << 20

var _ engine.StepAbandoner = (*handler)(nil)

var _ engine.SharedFileGuard = (*handler)(nil)

// GuardsSharedFiles implements engine.SharedFileGuard: the guest reaches
// the build dir only through the sandbox, which copies a shared file
// before the guest can change it (sandboxfs.WithShared).
func (h *handler) GuardsSharedFiles() {}

// AbandonsStep implements engine.StepAbandoner: Step returns at most
// Stop.Interrupt and interruptSlack after its context ends, leaving a
// guest that could not be interrupted behind.
func (h *handler) AbandonsStep() {}

// newHandler routes a job to its module and prepares its sandbox.
func (r *Registry) newHandler(ctx context.Context, job *engine.Job) (engine.Handler, error) {
	m, err := r.route(job.Image())
	if err != nil {
		return nil, err
	}
	if n, max := m.outlived.Load(), int64(r.policy.Outlived()); n >= max {
		m.release()
		r.observe(func(o Observer) { o.ResourceDenied(m.name, "outlived guests") })
		return nil, fmt.Errorf("handler %s takes no new jobs: %d of its guests are still running after their jobs ended (at most %d may: the operator's max_outlived; its manifest's limits.cpu = %q cannot be stopped)",
			m.name, n, max, m.limits.CPU)
	}
	if err := r.acquireSlots(ctx, job, m); err != nil {
		m.release()
		return nil, err
	}
	h := &handler{reg: r, mod: m, lim: m.limits, job: job, warned: map[string]bool{}}
	ok := false
	defer func() {
		if !ok {
			h.free()
		}
	}()
	lim := &h.lim
	proc := r.proc
	h.mem = resource.NewPool(fmt.Sprintf("the memory limit of %s (limits.memory)", units.FormatSize(lim.Memory)), lim.Memory, proc.Memory)
	// The tables can hold at most tableBytes: charged up front, within the
	// memory limit (loading checked that they fit).
	if !h.mem.TakeAll(m.tableBytes) {
		return nil, fmt.Errorf("handler %s's tables need %s: %s is used up", m.name, units.HumanSize(m.tableBytes), refusedBy(h.mem))
	}
	h.tables = m.tableBytes
	h.disk = resource.NewPool(fmt.Sprintf("the disk limit of %s (limits.disk)", units.FormatSize(lim.Disk)), lim.Disk, nil)
	h.entries = resource.NewPool(fmt.Sprintf("the limit of %d files and directories (limits.files)", lim.Files), lim.Files, nil)
	h.fds = resource.NewPool(fmt.Sprintf("the limit of %d open files (limits.open_files)", lim.OpenFiles), lim.OpenFiles, proc.OpenFiles)
	job.LimitBuildDir(h.disk, h.entries)
	if m.manifest.Sources.Checkout {
		job.WantSources()
	}

	h.fsys, err = sandboxfs.New(job.BuildDir(), sandboxfs.WithBytes(h.disk), sandboxfs.WithEntries(h.entries), sandboxfs.WithOpenFiles(h.fds),
		sandboxfs.WithShared(job.SharedFile))
	if err != nil {
		return nil, fmt.Errorf("sandboxing the build dir: %w", err)
	}
	if h.fileVars, err = h.fileVariables(); err != nil {
		return nil, err
	}
	h.log = job.BoundedLog(lim.Log, fmt.Sprintf("\n\x1b[33;1mWARNING: handler %s reached its log limit of %s (limits.log); further output is dropped\x1b[0;m\n", m.name, units.FormatSize(lim.Log)))
	for _, d := range job.Dependencies() {
		h.deps = append(h.deps, &depFiles{d: d, job: job, disk: h.disk})
	}
	h.http = m.http
	if len(m.growsCapped) > 0 {
		job.Printf("\x1b[33;1mNOTE: handler %s's code may grow %s, declared without a maximum: growth past that size is refused (table.grow returns -1); declare the table's maximum to allow more, within limits.memory\x1b[0;m",
			m.name, strings.Join(m.growsCapped, ", "))
	}
	if len(m.cuts) > 0 {
		job.Printf("\x1b[33;1mWARNING: handler %s's manifest asks for more than the operator allows; it gets %s\x1b[0;m", m.name, cutList(m.cuts))
		r.observe(func(o Observer) { o.ManifestCut(m.name, m.cuts) })
	}
	ok = true
	return h, nil
}

func cutList(cuts []resource.Cut) string {
	var b bytes.Buffer
	for i, c := range cuts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// acquireSlots takes one of the process's instance slots and one of the
// module's. A job that has to wait for them gives its slot of the
// process's job budget back meanwhile, so that another tenant's jobs run.
func (r *Registry) acquireSlots(ctx context.Context, job *engine.Job, m *module) error {
	take := func(ctx context.Context, wait bool) error {
		get := func(s *resource.Slots) error {
			if !wait {
				if s.TryAcquire() {
					return nil
				}
				return errBusy
			}
			return s.Acquire(ctx)
		}
		// The module's slot first: a job waiting for its handler's
		// instance must not hold one of the process's meanwhile.
		if m.slots != nil {
			if err := get(m.slots); err != nil {
				return err
			}
		}
		if err := get(r.proc.Instances); err != nil {
			if m.slots != nil {
				m.slots.Release()
			}
			return err
		}
		return nil
	}
	if take(ctx, false) == nil {
		return nil
	}
	return job.WaitFor(ctx, func(ctx context.Context) error { return take(ctx, true) })
}

// errBusy: a slot is not free now.
var errBusy = errors.New("busy")

// fileVariables returns the file variables the handler may see as a
// read-only file system of their contents.
func (h *handler) fileVariables() (fs.FS, error) {
	files := map[string][]byte{}
	for v := range h.job.AllVariables() {
		if !v.File || !h.visible(v.Key) {
			continue
		}
		data, err := readBounded(v.Value, maxFileVariable)
		if err != nil {
			return nil, fmt.Errorf("file variable %s: %w", v.Key, err)
		}
		files[v.Key] = data
	}
	if len(files) == 0 {
		return nil, nil
	}
	return newMemFS(files), nil
}

// readBounded reads a file the engine wrote, refusing more than limit
// bytes.
func readBounded(name string, limit int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("more than %s", units.FormatSize(limit))
	}
	return data, nil
}

// interruptSlack is how long after Stop.Interrupt a step waits for an
// interrupted guest call to come back before leaving it running.
func interruptSlack(stop resource.Stop) time.Duration { return min(time.Second, stop.Interrupt) }

// beginCall records a guest call about to start; it fails once the
// handler is released or while another call is still running (a guest
// that could not be interrupted).
func (h *handler) beginCall() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.released:
		return errors.New("the handler was released")
	case h.calls > 0:
		return fmt.Errorf("handler %s's guest is still running its previous step", h.mod.name)
	}
	h.calls++
	return nil
}

// endCall records the end of a guest call; the last call to end after the
// handler was released frees the sandbox.
func (h *handler) endCall() {
	h.mu.Lock()
	h.calls--
	last := h.released && h.calls == 0
	outlived := h.outlived
	h.mu.Unlock()
	if !last {
		return
	}
	if outlived {
		n := h.mod.outlived.Add(-1)
		h.reg.log.Warn("a guest that outlived its job has stopped", "module", h.mod.name, "job", h.job.ID(), "still_running", n)
		h.reg.observe(func(o Observer) { o.GuestsOutlived(h.mod.name, n) })
	}
	h.free()
}

// release is called once the job is done with the handler. A guest call
// still running (only a guest under the uninterrupted CPU policy can be)
// keeps the sandbox, its slots and its memory until it returns: it is
// counted against its module, and the module is refused new jobs while
// too many are.
func (h *handler) release() {
	h.mu.Lock()
	if h.released {
		h.mu.Unlock()
		return
	}
	h.released = true
	running := h.calls > 0
	h.outlived = running
	h.mu.Unlock()
	if !running {
		h.free()
		return
	}
	n := h.mod.outlived.Add(1)
	max := h.reg.policy.Outlived()
	h.reg.log.Error("a guest is still running after its job ended; it holds its instance slot and memory until it returns",
		"module", h.mod.name, "job", h.job.ID(), "cpu", h.lim.CPU, "outlived", n, "max_outlived", max)
	h.job.Printf("\x1b[31;1mERROR: handler %s's guest is still running after the job ended (cpu = %q cannot be interrupted); %d such guest(s) of this handler are running, and at %d it takes no new jobs\x1b[0;m",
		h.mod.name, h.lim.CPU, n, max)
	h.reg.observe(func(o Observer) { o.GuestsOutlived(h.mod.name, n) })
}

// free gives back everything the handler holds.
func (h *handler) free() {
	h.mu.Lock()
	if h.freed {
		h.mu.Unlock()
		return
	}
	h.freed = true
	inst := h.inst
	h.inst = nil
	h.mu.Unlock()
	if inst != nil {
		inst.Close(context.Background())
	}
	if h.fsys != nil {
		h.fsys.Close()
	}
	for _, d := range h.deps {
		d.(*depFiles).close()
	}
	h.mem.Give(h.tables)
	if h.mod.slots != nil {
		h.mod.slots.Release()
	}
	h.reg.proc.Instances.Release()
	h.mod.release()
}

// visible reports whether the handler may see a variable: its manifest
// allows it and the operator's policy does not hide it.
func (h *handler) visible(name string) bool {
	return h.mod.manifest.varVisible(name) && !h.reg.policy.VariableHidden(name)
}

// visibleVars returns the job's variables the handler may see, read anew
// for each step (after_script adds CI_JOB_STATUS), with guest paths in
// place of host paths.
func (h *handler) visibleVars() []hostfuncs.Var {
	vars := make([]hostfuncs.Var, 0, 64)
	for v := range h.job.AllVariables() {
		if !h.visible(v.Key) {
			continue
		}
		value := v.Value
		switch {
		case v.File:
			value = FileVariablesPath + "/" + v.Key
		case v.Key == "CI_PROJECT_DIR" || v.Key == "CI_BUILDS_DIR":
			value = GuestProjectDir
		}
		vars = append(vars, hostfuncs.Var{Name: v.Key, Value: value, Masked: v.Masked})
	}
	return vars
}

// environ is the guest's WASI environment for a step: the visible
// variables its manifest exports (the last of a name wins, so the runner's
// own CI_PROJECT_DIR and CI_JOB_STATUS, set after the job's, win), then
// the manifest's fixed ones.
func (h *handler) environ(vars []hostfuncs.Var) []string {
	man := &h.mod.manifest
	idx := make(map[string]int, len(vars))
	env := make([]string, 0, len(vars))
	set := func(k, v string) {
		if i, ok := idx[k]; ok {
			env[i] = k + "=" + v
			return
		}
		idx[k] = len(env)
		env = append(env, k+"="+v)
	}
	for _, v := range vars {
		if matchAny(man.Env.Variables, v.Name) {
			set(v.Name, v.Value)
		}
	}
	for _, k := range sortedKeys(man.Env.Set) {
		set(k, man.Env.Set[k])
	}
	return env
}

// moduleConfig is the sandbox of one instance.
func (h *handler) moduleConfig(stop context.Context, start string) wazero.ModuleConfig {
	cfg := instanceConfig(stop, h.mod.name, h.log, h.fsConfig(), h.idle)
	if start != "" {
		cfg = cfg.WithStartFunctions(start)
	}
	return cfg
}

// fsConfig mounts the build dir as "/" and the file variables, if any,
// read-only. A Go module always gets both, the build dir first (see
// snapshotFS): Go takes its working directory from the first pre-opened
// directory, and a snapshot's notes which there are.
func (h *handler) fsConfig() wazero.FSConfig {
	if (h.mod.start != nil && !h.mod.start.dataOnly) || h.mod.toolchain.goRuntime {
		return snapshotFS(h.fsys, h.fileVars)
	}
	cfg := wazero.NewFSConfig()
	if h.fileVars != nil {
		cfg = mountFileVars(cfg, h.fileVars)
	}
	return sandboxfs.Mount(cfg, h.fsys, "/")
}

// mountFileVars mounts the file variables read-only.
func mountFileVars(cfg wazero.FSConfig, fileVars fs.FS) wazero.FSConfig {
	ro := readOnlyFS{&sysfs.ReadFS{FS: &sysfs.AdaptFS{FS: fileVars}}}
	return cfg.(sysfs.FSConfig).WithSysFSMount(ro, FileVariablesPath)
}

// Step runs one phase in the guest.
func (h *handler) Step(ctx context.Context, script []string, phase engine.Phase) error {
	stepCtx := ctx
	if lim := h.lim.Timeout; lim > 0 {
		var cancel context.CancelFunc
		stepCtx, cancel = context.WithTimeoutCause(ctx, lim, engine.NewJobError(gitlab.JobExecutionTimeout,
			fmt.Errorf("%w: handler %s may run at most %s (limits.timeout)", engine.ErrTimeout, h.mod.name, lim)))
		defer cancel()
	}
	defer h.warnRefusals()
	defer h.log.Flush()
	vars := h.visibleVars()
	env := h.env(stepCtx, script, abi.Phase(phase), vars)
	env.Artifacts = artifactSink{h}
	// The guest may notice the end (is_canceled, sleeps return early) and
	// finish; Stop.Interrupt later it is interrupted wherever it is.
	callCtx, cancel := graceContext(stepCtx, h.reg.proc.Stop.Interrupt)
	defer cancel()
	callCtx = withMemory(hostfuncs.WithEnv(callCtx, env), h.mem, h.mod.image(), h.linear.Store)

	if err := h.beginCall(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		var err error
		if h.mod.reactor {
			err = h.stepReactor(stepCtx, callCtx, phase)
		} else {
			err = h.stepCommand(stepCtx, callCtx)
		}
		// The call is over before the step is: the next step may start
		// as soon as this one returns.
		h.endCall()
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-stepCtx.Done():
		// An interruptible guest is stopped Stop.Interrupt from now; one
		// that cannot be (cpu = uninterrupted) is left running: release
		// counts it once the job is done with the handler.
		wait := h.reg.proc.Stop.Interrupt + interruptSlack(h.reg.proc.Stop)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case err = <-done:
		case <-t.C:
			h.job.Printf("\x1b[31;1mERROR: handler %s's guest did not stop within %s of the step's end\x1b[0;m", h.mod.name, wait)
			return context.Cause(stepCtx)
		}
	}
	// The handler's own time limit decides, whatever the guest returned
	// after it (the job's is the engine's to enforce).
	if cause := context.Cause(stepCtx); cause != nil && ctx.Err() == nil {
		return cause
	}
	// A step that failed after the host's disk refused its writes failed
	// because of the machine: runner_system_failure, which GitLab may
	// retry elsewhere (docs/RATIONALE.md).
	if err != nil && h.fsys.DiskFullHit() {
		return engine.NewJobError(gitlab.RunnerSystemFailure,
			fmt.Errorf("the disk under the runner's builds dir is full: handler %s's writes failed (%w)", h.mod.name, err))
	}
	return err
}

// warnRefusals notes in the job log, once each, what a bound refused the
// guest: the guest itself only sees an error code (EIO for the file
// system, which has no ENOSPC, EDQUOT or EMFILE in wazero; -1 from
// memory.grow).
func (h *handler) warnRefusals() {
	say := func(key, format string, a ...any) {
		if h.warned[key] {
			return
		}
		h.warned[key] = true
		h.job.Printf("\x1b[33;1mWARNING: "+format+"\x1b[0;m", a...)
		h.reg.observe(func(o Observer) { o.ResourceDenied(h.mod.name, key) })
	}
	if by, ok := h.mem.Refused(); ok {
		say("memory", "handler %s could not grow its memory: %s is used up", h.mod.name, by.Name())
	}
	if h.fsys.QuotaHit() {
		say("disk", "handler %s reached %s; writes past it failed", h.mod.name, refusedBy(h.disk))
	}
	if h.fsys.EntriesHit() {
		say("files", "handler %s reached %s; creating more failed", h.mod.name, refusedBy(h.entries))
	}
	if h.fsys.OpenFilesHit() {
		say("open files", "handler %s reached %s; opening more failed", h.mod.name, refusedBy(h.fds))
	}
	if h.fsys.DiskFullHit() {
		say("host disk", "the disk under the runner's builds dir is full (no space left on device); handler %s's writes failed", h.mod.name)
	}
}

// refusedBy names the bound that refused a take from p (p's own limit or
// the process's budget).
func refusedBy(p *resource.Pool) string {
	if by, ok := p.Refused(); ok {
		return by.Name()
	}
	return p.Name()
}

// env is what the guest's host calls act on during one call.
func (h *handler) env(stop context.Context, script []string, phase abi.Phase, vars []hostfuncs.Var) *hostfuncs.Env {
	return &hostfuncs.Env{
		Log:      h.log,
		Sections: h.log,
		Job: hostfuncs.JobInfo{ID: h.job.ID(), ProjectID: h.job.ProjectID(), Name: h.job.Name(), Stage: h.job.Stage(),
			ProjectName: h.job.ProjectName(), Image: h.job.Image(), Timeout: h.job.Timeout()},
		Phase:   phase,
		Script:  script,
		Vars:    vars,
		Hidden:  h.hiddenReason,
		Environ: h.environ(vars),
		Deps:    h.deps,
		Stop:    stop,
		HTTP:    h.http,
		Logger:  h.reg.log,
		Idle:    h.idle,
	}
}

// idleAfter is the shortest wait for which a waiting guest gives back the
// pages of its snapshot's image it only read (see linearMemory.idle): a
// shorter one would pay a page fault per page read again for little.
const idleAfter = time.Second

// idle is told that the guest is about to wait for d (sleep_ms, or a WASI
// sleep).
func (h *handler) idle(d time.Duration) {
	if d < idleAfter {
		return
	}
	if m := h.linear.Load(); m != nil {
		m.idle()
	}
}

// instantiate makes an instance of the module; a panic while doing so (a
// memory the allocator could not reserve) is an error.
func (h *handler) instantiate(callCtx context.Context, cfg wazero.ModuleConfig) (inst api.Module, err error) {
	defer func() {
		if p := recover(); p != nil {
			inst, err = nil, fmt.Errorf("could not make an instance: %v", p)
			if by, ok := h.mem.Refused(); ok {
				err = fmt.Errorf("could not reserve the guest's memory: %s is used up", by.Name())
			}
		}
	}()
	began := time.Now()
	inst, err = h.mod.runtime.InstantiateModule(callCtx, h.mod.compiled, cfg)
	if err == nil {
		h.reg.observe(func(o Observer) { o.ModuleInstantiated(h.mod.name, time.Since(began)) })
	}
	return inst, err
}

// newInstance makes the reactor's instance, initialized: by its
// _initialize, or from the module's snapshot.
func (h *handler) newInstance(ctx, callCtx context.Context) (api.Module, error) {
	st := h.mod.start
	if st == nil {
		start := ""
		if _, ok := h.mod.compiled.ExportedFunctions()[abi.ExportInitialize]; ok {
			start = abi.ExportInitialize
		}
		return h.instantiate(callCtx, h.moduleConfig(ctx, start))
	}
	inst, err := h.instantiate(callCtx, h.moduleConfig(ctx, ""))
	if err != nil {
		return nil, err
	}
	if err := st.start(callCtx, inst, h.log); err != nil {
		inst.Close(context.Background())
		if by, ok := h.mem.Refused(); ok {
			err = fmt.Errorf("could not reserve the guest's memory: %s is used up", by.Name())
		}
		return nil, err
	}
	return inst, nil
}

func (h *handler) stepReactor(ctx, callCtx context.Context, phase engine.Phase) error {
	h.mu.Lock()
	inst := h.inst
	h.mu.Unlock()
	if inst == nil || inst.IsClosed() {
		var err error
		if inst, err = h.newInstance(ctx, callCtx); err != nil {
			return h.guestError(ctx, "starting", nil, err)
		}
		h.mu.Lock()
		h.inst = inst
		h.mu.Unlock()
	}
	res, err := inst.ExportedFunction(abi.ExportStep).Call(callCtx, uint64(uint32(phase)))
	if err != nil {
		return h.guestError(ctx, "running", inst, err)
	}
	if code := int32(uint32(res[0])); code != 0 {
		return engine.Exit(int(code))
	}
	return nil
}

// stepCommand runs a command module's _start in a fresh instance.
func (h *handler) stepCommand(ctx, callCtx context.Context) error {
	inst, err := h.instantiate(callCtx, h.moduleConfig(ctx, abi.ExportStart))
	if inst != nil {
		defer inst.Close(context.Background())
	}
	if err != nil {
		return h.guestError(ctx, "running", inst, err)
	}
	return nil
}

// guestError turns what a guest call returned into the step's error.
func (h *handler) guestError(ctx context.Context, doing string, inst api.Module, err error) error {
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
	hint := ""
	if inst != nil {
		if mem := inst.Memory(); mem != nil && int64(mem.Size())+65536 > h.lim.Memory {
			hint = fmt.Sprintf(" (the guest had used its memory limit of %s: limits.memory)", units.FormatSize(h.lim.Memory))
		}
	}
	h.job.Printf("\x1b[31;1mERROR: handler %s failed while %s: %v%s\x1b[0;m", h.mod.name, doing, err, hint)
	return fmt.Errorf("handler %s: %w", h.mod.name, err)
}

// Cleanup calls the guest's cleanup export, then frees the sandbox.
func (h *handler) Cleanup(ctx context.Context) {
	defer h.release()
	h.mu.Lock()
	inst, busy := h.inst, h.calls > 0
	h.mu.Unlock()
	if inst == nil || inst.IsClosed() || !h.mod.hasCleanup || busy {
		// An instance whose step is still running cannot take another
		// call.
		return
	}
	// Cleanup gets host calls of its own (to release remote resources,
	// say), bounded by its own deadline.
	callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if h.beginCall() != nil {
		return
	}
	defer h.endCall()
	vars := h.visibleVars()
	env := h.env(callCtx, nil, abi.PhaseAfterScript, vars)
	callCtx = withMemory(hostfuncs.WithEnv(callCtx, env), h.mem, nil, nil)
	if _, err := inst.ExportedFunction(abi.ExportCleanup).Call(callCtx); err != nil {
		h.job.Printf("\x1b[33;1mWARNING: handler %s cleanup failed: %v\x1b[0;m", h.mod.name, err)
	}
	h.log.Flush()
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

// artifactSink adds files to the job's artifacts. Data is written through
// the guest's file system, so it counts against the same disk and entry
// limits as the guest's own writes.
type artifactSink struct{ h *handler }

func (a artifactSink) AddFile(rel string) error { return a.h.job.AddArtifact(rel) }

func (a artifactSink) AddData(name string, data []byte) error {
	err := a.h.fsys.WriteFile(name, data, 0o644)
	switch {
	case errors.Is(err, sandboxfs.ErrQuota):
		return fmt.Errorf("%w: writing %s: %s is used up", hostfuncs.ErrLimit, name, refusedBy(a.h.disk))
	case errors.Is(err, sandboxfs.ErrEntries):
		return fmt.Errorf("%w: writing %s: %s is used up", hostfuncs.ErrLimit, name, refusedBy(a.h.entries))
	case err != nil:
		return err
	}
	return a.h.job.AddArtifact(name)
}

// maxDepFile bounds a dependency file a guest reads without extracting.
const maxDepFile = 1 << 30

// depFiles gives a guest a dependency's artifacts without extracting
// them: the file the guest reads is decompressed to a scratch file of the
// job (outside the build dir), one at a time, its bytes charged to the
// job's disk limit while it is kept.
type depFiles struct {
	d    *engine.Dependency
	job  *engine.Job
	disk *resource.Pool

	mu   sync.Mutex
	name string
	file *os.File // the decompressed file, or nil
	size int64
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
	if f.file != nil && f.name == name {
		return f.file, f.size, nil
	}
	a, err := f.d.Artifacts(ctx)
	if errors.Is(err, engine.ErrNoArtifacts) {
		return nil, 0, fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	if err != nil {
		return nil, 0, err
	}
	zf, err := a.Open(name)
	if err != nil {
		return nil, 0, err
	}
	defer zf.Close()
	fi, err := zf.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	if fi.Size() > maxDepFile {
		return nil, 0, fmt.Errorf("%w: %s: %d bytes, more than %s", hostfuncs.ErrLimit, name, fi.Size(), units.FormatSize(maxDepFile))
	}
	f.closeLocked()
	size := fi.Size()
	if !f.disk.TakeAll(size) {
		return nil, 0, fmt.Errorf("%w: reading %s (%s): %s is used up", hostfuncs.ErrLimit, name, units.HumanSize(size), refusedBy(f.disk))
	}
	file, err := f.decompress(zf, size)
	if err != nil {
		f.disk.Give(size)
		return nil, 0, err
	}
	f.name, f.file, f.size = name, file, size
	return file, size, nil
}

// decompress copies zf (size bytes, as its header says) to an unlinked
// scratch file.
func (f *depFiles) decompress(zf io.Reader, size int64) (*os.File, error) {
	dir, err := f.job.ScratchDir()
	if err != nil {
		return nil, err
	}
	file, err := os.CreateTemp(dir, "dep-*")
	if err != nil {
		return nil, err
	}
	os.Remove(file.Name()) // gone with its last descriptor
	n, err := io.Copy(file, io.LimitReader(zf, size+1))
	if err == nil && n != size {
		err = fmt.Errorf("the archive's file has %d bytes, not the %d its header says", n, size)
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return file, nil
}

// close drops the decompressed file, giving its bytes back.
func (f *depFiles) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeLocked()
}

func (f *depFiles) closeLocked() {
	if f.file != nil {
		f.file.Close()
		f.disk.Give(f.size)
		f.file, f.name, f.size = nil, "", 0
	}
}
