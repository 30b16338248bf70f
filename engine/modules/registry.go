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
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/resource"
)

// Config configures a [Registry].
type Config struct {
	// Dir holds the modules (required).
	Dir string
	// CacheDir, if set, keeps compiled modules across processes.
	CacheDir string
	// DefaultHandler handles jobs without an image; empty means the only
	// module, if there is exactly one.
	DefaultHandler string
	// Process holds the budgets shared with the rest of the process
	// (instances at once, guest memory, open files, compilations) and its
	// Stop.Interrupt is how long a guest may run on after its job is
	// cancelled or times out (it can notice with is_canceled) before it is
	// interrupted. Nil: a process of this registry alone.
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
}

// Registry holds the loaded modules. It is safe for concurrent use.
type Registry struct {
	cfg    Config
	log    *slog.Logger
	cache  wazero.CompilationCache
	proc   *resource.Process
	policy *resource.Policy

	mu       sync.RWMutex
	modules  map[string]*module
	problems map[string]error
	failed   map[string]fileStamp // versions that failed to load: not retried
	closed   bool
}

// Open loads the modules of cfg.Dir. A module that fails to load is
// logged and reported by [Registry.Problems]; it does not stop the others.
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
	r := &Registry{
		cfg:      cfg,
		log:      cfg.Logger,
		proc:     cfg.Process,
		policy:   cfg.Policy,
		modules:  map[string]*module{},
		problems: map[string]error{},
		failed:   map[string]fileStamp{},
	}
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("modules: compilation cache: %w", err)
		}
		r.cache = c
	}
	if err := r.Reload(ctx); err != nil {
		r.Close(ctx)
		return nil, err
	}
	return r, nil
}

// Reload brings the registry in line with the directory: new modules are
// loaded, changed ones (module or manifest) replaced, removed ones
// dropped. Jobs in flight keep the version they started with.
func (r *Registry) Reload(ctx context.Context) error {
	ents, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return fmt.Errorf("modules: %w", err)
	}
	present := map[string]bool{}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".wasm")
		if !ok || name == "" || e.IsDir() {
			continue
		}
		present[name] = true
	}

	r.mu.RLock()
	var todo []string
	for name := range present {
		m, loaded := r.modules[name]
		st, err := stampOf(filepath.Join(r.cfg.Dir, name+".wasm"), filepath.Join(r.cfg.Dir, name+".toml"))
		if fst, bad := r.failed[name]; bad && err == nil && fst == st {
			continue // the same broken version: already reported
		}
		if err != nil || !loaded || m.stamp != st {
			todo = append(todo, name)
		}
	}
	r.mu.RUnlock()
	slices.Sort(todo)

	loaded := map[string]*module{}
	failed := map[string]error{}
	failedStamps := map[string]fileStamp{}
	for _, name := range todo {
		st, _ := stampOf(filepath.Join(r.cfg.Dir, name+".wasm"), filepath.Join(r.cfg.Dir, name+".toml"))
		m, err := loadModule(ctx, r.cfg.Dir, name, r.cache, r.policy)
		if err != nil {
			failed[name] = err
			failedStamps[name] = st
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
		r.log.Info("handler loaded", "module", name, "abi", "v1", "bytes", m.size, "compile", m.compileDur.Round(time.Microsecond),
			"reactor", m.reactor, "memory", m.limits.Memory, "http_hosts", m.limits.HTTP.Allow)
		if len(m.cuts) > 0 {
			r.log.Warn("handler's manifest asks for more than the policy allows", "module", name, "cut", cutList(m.cuts))
		}
	}
	for name, err := range failed {
		// A broken new version does not replace a working one.
		r.problems[name] = err
		r.failed[name] = failedStamps[name]
		r.log.Error("handler not loaded", "module", name, "error", err)
	}
	r.mu.Unlock()
	for _, m := range retired {
		m.retire()
	}
	return nil
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
	if r.cache != nil {
		return r.cache.Close(ctx)
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
			err = fmt.Errorf("%w; %s.wasm failed to load: %v", err, name, lerr)
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
