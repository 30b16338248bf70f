// Package modules runs WebAssembly job handlers: it loads every NAME.wasm
// of a directory (with its optional NAME.toml manifest), validates it
// against the guest ABI, compiles it once, and gives the engine a
// HandlerFactory that routes each job to a handler by its image and runs
// it in a fresh, sandboxed instance.
//
// Each job's instance sees the job's build dir as its only file system
// (confined with an os.Root, so no path or symlink leads out of it), real
// clocks and random numbers, no sockets, the job variables its manifest
// allows, and the host functions of package hostfuncs. Its memory, wall
// time, log size and concurrency are bounded; a trap, exit or runaway guest
// fails its own job only.
package modules

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

// Config configures a [Registry].
type Config struct {
	// Dir holds the modules (required). Everything in it is untrusted:
	// files are read through an os.Root on it (links are followed only
	// while they stay inside), must be regular files, and are bounded in
	// size (modules: Process.Compile.MaxModuleSize; manifests: 64 KiB).
	Dir string
	// CacheDir, if set, keeps compiled modules across reloads and
	// processes: one directory per module version, bounded by
	// CacheMaxBytes (see cache.go). Give each registry its own.
	CacheDir string
	// CacheMaxBytes bounds CacheDir: after each reload that changed
	// something the registry evicts the versions it dropped, then the
	// least recently loaded ones no registry holds while the cache is
	// larger. Default [DefaultCacheMaxBytes]. It also bounds one compiled
	// module.
	CacheMaxBytes int64
	// Compiler, if set, is the command line of the compiler child: a
	// program that runs [RunCompiler] (see [SelfCompiler]). Each module is
	// then compiled in a child process held to Process.Compile's memory
	// and time bounds, into CacheDir (a temporary directory when CacheDir
	// is empty), and loaded from there. Nil: modules are compiled in this
	// process (one at a time, after the same checks), where one that
	// needs more memory than the process has can end it.
	Compiler []string
	// DefaultHandler handles jobs without an image; empty means the only
	// module, if there is exactly one.
	DefaultHandler string
	// Process holds the budgets shared with the rest of the process
	// (instances at once, guest memory, open files, compilations and
	// their bounds) and its Stop.Interrupt is how long a guest may run on
	// after its job is cancelled or times out (it can notice with
	// is_canceled) before it is interrupted. Nil: a process of this
	// registry alone.
	Process *resource.Process
	// Policy is the operator's ceiling over the modules' manifests. Nil:
	// the defaults are the ceilings.
	Policy *resource.Policy
	// Logger receives the operator log; nil discards it.
	Logger *slog.Logger
	// Observer, if set, learns how long compiling and instantiating
	// modules takes (for metrics).
	Observer Observer
}

// Observer learns of module costs and of what bounds refused (for
// metrics). Its methods must return quickly.
type Observer interface {
	ModuleCompiled(module string, d time.Duration)
	ModuleInstantiated(module string, d time.Duration)
	// ManifestCut: a job of module runs with less than its manifest asks
	// for.
	ManifestCut(module string, cuts []resource.Cut)
	// ResourceDenied: a bound refused a job of module something (memory,
	// disk, files, open files, outlived guests...).
	ResourceDenied(module, resource string)
	// GuestsOutlived: running is the number of module's guests still
	// running after their jobs ended.
	GuestsOutlived(module string, running int64)
	// CacheSize: the registry's compilation cache holds bytes (after an
	// eviction).
	CacheSize(bytes int64)
}

// Registry holds the loaded modules. It is safe for concurrent use.
type Registry struct {
	cfg    Config
	log    *slog.Logger
	proc   *resource.Process
	policy *resource.Policy

	// cacheRoot is the compilation cache ("" without one), tempCache
	// whether the registry made it (and removes it on Close).
	cacheRoot string
	tempCache bool
	cacheMax  int64
	compiler  []string

	reloadMu  sync.Mutex // one reload at a time
	evictedAt time.Time  // the last eviction; zero before the first

	mu       sync.RWMutex
	modules  map[string]*module
	problems map[string]error
	failed   map[string]fileStamp // versions that failed to load: not retried
	closed   bool
}

// Open loads the modules of cfg.Dir. A module that fails to load is
// logged and reported by [Registry.Problems]; it does not stop the others.
// When ctx ends before every module is loaded, Open returns with those
// loaded by then: the others are reported as not loaded yet, and loaded
// by the next [Registry.Reload].
func Open(ctx context.Context, cfg Config) (*Registry, error) {
	if cfg.Dir == "" {
		return nil, errors.New("modules: Config.Dir is required")
	}
	if fi, err := os.Stat(cfg.Dir); err != nil {
		return nil, fmt.Errorf("modules: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("modules: %s is not a directory", cfg.Dir)
	}
	if cfg.Process == nil {
		cfg.Process = resource.NewProcess(resource.ProcessConfig{})
	}
	if cfg.Policy == nil {
		cfg.Policy = &resource.Policy{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheMaxBytes <= 0 {
		cfg.CacheMaxBytes = DefaultCacheMaxBytes
	}
	r := &Registry{
		cfg:       cfg,
		log:       cfg.Logger,
		proc:      cfg.Process,
		policy:    cfg.Policy,
		cacheRoot: cfg.CacheDir,
		cacheMax:  cfg.CacheMaxBytes,
		modules:   map[string]*module{},
		problems:  map[string]error{},
		failed:    map[string]fileStamp{},
	}
	if len(cfg.Compiler) > 0 && compilerSupported() {
		r.compiler = slices.Clone(cfg.Compiler)
	}
	switch {
	case r.cacheRoot != "":
		if err := os.MkdirAll(r.cacheRoot, 0o700); err != nil {
			return nil, fmt.Errorf("modules: compilation cache: %w", err)
		}
	case r.compiler != nil:
		d, err := os.MkdirTemp("", "wasmrunner-compiled-")
		if err != nil {
			return nil, fmt.Errorf("modules: compilation cache: %w", err)
		}
		r.cacheRoot, r.tempCache = d, true
	}
	if err := r.Reload(ctx); err != nil {
		r.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return r, nil
}

// errNotYet is the problem of a module whose loading was cut short.
var errNotYet = errors.New("not loaded yet: loading the modules dir was cut short; it is loaded at a later reload")

// Reload brings the registry in line with the directory: new modules are
// loaded, changed ones (module or manifest) replaced, removed ones
// dropped. Jobs in flight keep the version they started with. When ctx
// ends, the modules not loaded by then are left for the next reload.
func (r *Registry) Reload(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	root, err := openRoot(r.cfg.Dir)
	if err != nil {
		return fmt.Errorf("modules: %w", err)
	}
	defer root.Close()
	names, cut, err := listModules(root)
	if err != nil {
		return fmt.Errorf("modules: reading %s: %w", r.cfg.Dir, err)
	}
	if cut {
		r.log.Error("the modules dir holds too many entries: only the first are loaded", "dir", r.cfg.Dir, "modules", len(names))
	}
	present := map[string]bool{}
	stamps := map[string]fileStamp{}
	r.mu.RLock()
	var todo []string
	for _, name := range names {
		present[name] = true
		st := stampOf(root, name)
		stamps[name] = st
		if fst, bad := r.failed[name]; bad && fst == st {
			continue // the same broken version: already reported
		}
		if m, loaded := r.modules[name]; !loaded || m.stamp != st {
			todo = append(todo, name)
		}
	}
	r.mu.RUnlock()
	slices.Sort(todo)

	loaded := map[string]*module{}
	failed := map[string]error{}
	drop := map[string]bool{} // cache versions this reload stopped using
	for _, name := range todo {
		if ctx.Err() != nil {
			failed[name] = &loadError{err: errNotYet, public: errNotYet.Error(), transient: true}
			continue
		}
		m, version, err := r.loadModule(ctx, root, name, stamps[name])
		if err != nil {
			failed[name] = err
			if version != "" {
				drop[version] = true
			}
			continue
		}
		loaded[name] = m
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		for _, m := range loaded {
			m.retire()
		}
		return errors.New("modules: registry closed")
	}
	var retired []*module
	for name, m := range r.modules {
		if !present[name] {
			retired = append(retired, m)
			delete(r.modules, name)
			delete(r.problems, name)
			r.log.Info("handler removed", "module", name)
		}
	}
	for name := range r.problems {
		if !present[name] {
			delete(r.problems, name)
			delete(r.failed, name)
		}
	}
	for name, m := range loaded {
		if old := r.modules[name]; old != nil {
			retired = append(retired, old)
			r.log.Info("handler replaced", "module", name)
		}
		r.modules[name] = m
		delete(r.problems, name)
		delete(r.failed, name)
		r.observe(func(o Observer) { o.ModuleCompiled(name, m.compileDur) })
		args := []any{"module", name, "abi", "v1", "bytes", m.size, "compile", m.compileDur.Round(time.Microsecond),
			"reactor", m.reactor, "memory", m.limits.Memory, "http_hosts", m.limits.HTTP.Allow}
		if m.compileRSS > 0 {
			args = append(args, "compile_memory", units.HumanSize(m.compileRSS))
		}
		if m.fromCache {
			args = append(args, "cached", true)
		}
		if m.tablesCapped > 0 {
			args = append(args, "tables_capped", m.tablesCapped)
		}
		r.log.Info("handler loaded", args...)
		if len(m.cuts) > 0 {
			r.log.Warn("handler's manifest asks for more than the policy allows", "module", name, "cut", cutList(m.cuts))
		}
	}
	for name, err := range failed {
		// A broken new version does not replace a working one.
		r.problems[name] = err
		if isTransient(err) {
			delete(r.failed, name)
			r.log.Warn("handler not loaded yet", "module", name, "error", err)
			continue
		}
		r.failed[name] = stamps[name]
		r.log.Error("handler not loaded", "module", name, "error", err)
	}
	inUse := map[string]bool{}
	for _, m := range r.modules {
		inUse[m.version] = true
	}
	r.mu.Unlock()
	for _, m := range retired {
		m.retire()
		drop[m.version] = true
	}
	for v := range inUse {
		delete(drop, v) // another module has the same bytes
	}
	if r.cacheRoot != "" && (len(todo) > 0 || len(retired) > 0 || r.evictedAt.IsZero()) {
		r.evict(drop)
	}
	return nil
}

// evict bounds the compilation cache after a reload.
func (r *Registry) evict(drop map[string]bool) {
	delete(drop, "")
	size, evicted, err := evictCache(r.cacheRoot, drop, r.cacheMax)
	r.evictedAt = time.Now()
	if err != nil {
		r.log.Warn("evicting compiled modules failed", "dir", r.cacheRoot, "error", err)
	}
	if len(evicted) > 0 {
		r.log.Debug("compiled modules evicted", "dir", r.cacheRoot, "versions", len(evicted), "cache_bytes", size)
	}
	if size > r.cacheMax {
		r.log.Warn("the compilation cache is over its bound: the versions in use take more", "dir", r.cacheRoot, "bytes", size, "max", r.cacheMax)
	}
	r.observe(func(o Observer) { o.CacheSize(size) })
}

// Watch reloads the directory every interval until ctx ends.
func (r *Registry) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Reload(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("reloading handlers failed", "error", err)
			}
		}
	}
}

// ModuleInfo describes a loaded module.
type ModuleInfo struct {
	Name        string
	Path        string
	Size        int64
	Reactor     bool // false: a command module (_start per step)
	HasManifest bool
	Manifest    Manifest
	// Limits are what its jobs get: the manifest cut to the policy; Cuts
	// says what was cut.
	Limits      resource.Limits
	Cuts        []resource.Cut
	CompileTime time.Duration
}

// Modules returns the loaded modules by name.
func (r *Registry) Modules() []ModuleInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []ModuleInfo
	for _, m := range r.modules {
		out = append(out, ModuleInfo{
			Name: m.name, Path: m.path, Size: m.size, Reactor: m.reactor,
			HasManifest: m.hasToml, Manifest: m.manifest, Limits: m.limits, Cuts: m.cuts, CompileTime: m.compileDur,
		})
	}
	slices.SortFunc(out, func(a, b ModuleInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Problems returns the modules that failed to load, by name.
func (r *Registry) Problems() map[string]error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]error, len(r.problems))
	for k, v := range r.problems {
		out[k] = v
	}
	return out
}

// Close releases every module once the jobs using them are done.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	mods := r.modules
	r.modules = map[string]*module{}
	r.mu.Unlock()
	for _, m := range mods {
		m.retire()
	}
	if r.tempCache {
		r.reloadMu.Lock() // no compiler child writes there any more
		defer r.reloadMu.Unlock()
		return os.RemoveAll(r.cacheRoot)
	}
	return nil
}

// ErrNoHandler fails a job whose image names no loaded handler.
var ErrNoHandler = errors.New("no handler")

// route picks the module for an image and takes a reference on it.
func (r *Registry) route(image string) (*module, error) {
	name := HandlerName(image)
	r.mu.RLock()
	defer r.mu.RUnlock()
	if name == "" {
		name = r.cfg.DefaultHandler
		if name == "" && len(r.modules) == 1 {
			for n := range r.modules {
				name = n
			}
		}
		if name == "" {
			return nil, fmt.Errorf("%w: the job names no image and no default handler is set (available: %s)", ErrNoHandler, r.availableLocked())
		}
	}
	m, ok := r.modules[name]
	if !ok || !m.acquire() {
		err := fmt.Errorf("%w: %q is not loaded (available: %s)", ErrNoHandler, name, r.availableLocked())
		if lerr, bad := r.problems[name]; bad {
			// Never the whole error: it may quote a file.
			err = fmt.Errorf("%w; %s.wasm failed to load: %s", err, name, publicReason(lerr))
		}
		return nil, err
	}
	return m, nil
}

func (r *Registry) availableLocked() string {
	names := make([]string, 0, len(r.modules))
	for n := range r.modules {
		names = append(names, n)
	}
	if len(names) == 0 {
		return "none"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// HandlerName is the handler an image names: its last path element
// without tag or digest ("registry.example.com/team/shell:1.2" -> "shell").
func HandlerName(image string) string {
	image = strings.TrimSpace(image)
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	image = path.Base(image)
	if i := strings.LastIndex(image, ":"); i >= 0 {
		image = image[:i]
	}
	if image == "." || image == "/" {
		return ""
	}
	return image
}

// Process returns the budgets the registry draws from.
func (r *Registry) Process() *resource.Process { return r.proc }

// observe calls f with the observer, if there is one.
func (r *Registry) observe(f func(Observer)) {
	if r.cfg.Observer != nil {
		f(r.cfg.Observer)
	}
}

// Factory returns the engine's handler factory.
func (r *Registry) Factory() engine.HandlerFactory {
	return r.newHandler
}
