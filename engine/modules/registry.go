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
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	// DefaultHandler handles jobs without an image (an image itself:
	// "shell", "shell:1.0"); empty means the only module, if there is
	// exactly one.
	DefaultHandler string
	// Handlers, if not empty, names the handlers this registry's jobs may
	// use (each with all its versions): only their modules are loaded,
	// and a job naming another handler fails. Names that match no module,
	// and a DefaultHandler not among them, are reported (Report, the
	// operator log).
	Handlers []string
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
	modules  map[string]*module   // by ref.String()
	problems map[string]error     // modules that failed to load, by ref.String()
	failed   map[string]fileStamp // versions that failed to load: not retried
	// dirProblems are the modules dir's and the configuration's problems
	// at the last reload; skipped the modules left out by Config.Handlers.
	dirProblems []Problem
	skipped     []string
	closed      bool
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
// dropped, each version of a handler on its own. Jobs in flight keep the
// version they started with. When ctx ends, the modules not loaded by
// then are left for the next reload.
func (r *Registry) Reload(ctx context.Context) error {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	root, err := openRoot(r.cfg.Dir)
	if err != nil {
		return fmt.Errorf("modules: %w", err)
	}
	defer root.Close()
	ls, err := listDir(root)
	if err != nil {
		return fmt.Errorf("modules: reading %s: %w", r.cfg.Dir, err)
	}
	if ls.cut {
		r.log.Error("the modules dir holds too many entries: only the first are loaded", "dir", r.cfg.Dir, "modules", len(ls.wasm))
	}
	refs, dirProblems, skipped := r.plan(ls)
	present := map[string]bool{}
	stamps := map[string]fileStamp{}
	byKey := map[string]ref{}
	r.mu.RLock()
	var todo []string
	for _, id := range refs {
		key := id.String()
		present[key] = true
		byKey[key] = id
		st := stampOf(root, id.stem())
		if !ls.tomls[id.stem()] {
			st.tomlCase = ls.tomlCase(id.stem())
		}
		stamps[key] = st
		if fst, bad := r.failed[key]; bad && fst == st {
			continue // the same broken version: already reported
		}
		if m, loaded := r.modules[key]; !loaded || m.stamp != st {
			todo = append(todo, key)
		}
	}
	r.mu.RUnlock()
	slices.Sort(todo)

	loaded := map[string]*module{}
	failed := map[string]error{}
	drop := map[string]bool{} // cache versions this reload stopped using
	for _, key := range todo {
		if ctx.Err() != nil {
			failed[key] = &loadError{err: errNotYet, public: errNotYet.Error(), transient: true}
			continue
		}
		m, version, err := r.loadModule(ctx, root, byKey[key], stamps[key], ls)
		if err != nil {
			failed[key] = err
			if version != "" {
				drop[version] = true
			}
			continue
		}
		loaded[key] = m
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		for _, m := range loaded {
			m.retire()
		}
		return errors.New("modules: registry closed")
	}
	if !slices.Equal(dirProblems, r.dirProblems) {
		for _, p := range dirProblems {
			if !slices.Contains(r.dirProblems, p) {
				r.log.Error("modules dir problem", "dir", r.cfg.Dir, "code", p.Code, "problem", p.Message)
			}
		}
	}
	r.dirProblems, r.skipped = dirProblems, skipped
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
		args := []any{"module", name, "file", filepath.Base(m.path), "sha256", m.sha256, "abi", "v1", "bytes", m.size, "compile", m.compileDur.Round(time.Microsecond),
			"reactor", m.reactor, "memory", units.FormatSize(m.limits.Memory), "http_hosts", m.limits.HTTP.Allow}
		if m.version != "" {
			args = append(args, "cache", m.version)
		}
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
		for _, p := range m.problems {
			r.log.Warn("handler loaded with a problem", "module", name, "code", p.Code, "problem", p.Message)
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
		r.log.Error("handler not loaded", "module", name, "code", problemsOf(err)[0].Code, "error", err)
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

// plan says, from the dir's listing, which handler versions the registry
// loads, what is wrong with the dir and the registry's configuration, and
// which modules Config.Handlers leaves out.
func (r *Registry) plan(ls *listing) (refs []ref, dirProblems []Problem, skipped []string) {
	add := func(code, format string, args ...any) {
		dirProblems = append(dirProblems, Problem{Code: code, Message: fmt.Sprintf(format, args...)})
	}
	names := map[string]bool{} // handlers with a module, loaded or not
	wasm := map[string]bool{}
	for _, stem := range ls.wasm {
		wasm[stem] = true
		id, err := parseStem(stem)
		if err != nil {
			add(CodeBadVersion, "%v", err)
			continue
		}
		names[id.Name] = true
		if len(r.cfg.Handlers) > 0 && !slices.Contains(r.cfg.Handlers, id.Name) {
			skipped = append(skipped, id.String())
			continue
		}
		refs = append(refs, id)
	}
	for stem := range ls.tomls {
		switch {
		case wasm[stem]:
		case ls.hasWasmCase(stem):
			// Reported with the module it was meant for.
		default:
			add(CodeManifestNoModule, "%s.toml has no %s.wasm beside it: it is the manifest of no module (a manifest is NAME.toml beside NAME.wasm, or NAME@TAG.toml beside NAME@TAG.wasm)", stem, stem)
		}
	}
	for _, name := range ls.odd {
		add(CodeFileName, "%s is not loaded: modules are NAME.wasm and manifests NAME.toml, in lower case", name)
	}
	for _, h := range r.cfg.Handlers {
		if !names[h] {
			add(CodeUnknownHandler, "handlers lists %q, but the modules dir has no %s.wasm nor %s@TAG.wasm", h, h, h)
		}
	}
	if d := r.cfg.DefaultHandler; d != "" {
		img, err := parseImage(d)
		switch {
		case err != nil:
			add(CodeUnknownDefault, "default_handler: %v", err)
		case len(r.cfg.Handlers) > 0 && !slices.Contains(r.cfg.Handlers, img.Name):
			add(CodeDefaultNotAllowed, "default_handler %q is not in handlers (%s): jobs without an image would fail", d, strings.Join(r.cfg.Handlers, ", "))
		case !wasm[img.stem()]:
			add(CodeUnknownDefault, "default_handler %q names no module: the modules dir has no %s.wasm", d, img.stem())
		}
	}
	slices.SortFunc(dirProblems, func(a, b Problem) int { return strings.Compare(a.Message, b.Message) })
	slices.Sort(skipped)
	return refs, dirProblems, skipped
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

// ModuleInfo describes a module: one version of a handler.
type ModuleInfo struct {
	// Name is the handler's name, Tag its version ("" for the untagged
	// NAME.wasm) and Image the two as a job's image names them
	// ("shell:1.0").
	Name, Tag, Image string
	// Path is the module file's path, Manifest its manifest's ("" without
	// one).
	Path, ManifestPath string
	// Loaded: the module loaded and takes jobs; the fields below are set
	// only then, but for Problems.
	Loaded      bool
	Size        int64
	SHA256      string // of the module file, hex
	Reactor     bool   // false: a command module (_start per step)
	HasManifest bool
	Manifest    Manifest
	// Limits are what its jobs get: the manifest cut to the policy; Cuts
	// says what was cut.
	Limits      resource.Limits
	Cuts        []resource.Cut
	CompileTime time.Duration
	// Problems say what is wrong: why it did not load, or what its jobs
	// will run into.
	Problems []Problem
}

func (m *module) info() ModuleInfo {
	return ModuleInfo{
		Name: m.ref.Name, Tag: m.ref.Tag, Image: m.name, Path: m.path, ManifestPath: m.manifestPath,
		Loaded: true, Size: m.size, SHA256: m.sha256, Reactor: m.reactor,
		HasManifest: m.hasToml, Manifest: m.manifest, Limits: m.limits, Cuts: m.cuts, CompileTime: m.compileDur,
		Problems: slices.Clone(m.problems),
	}
}

// Modules returns the loaded modules by image.
func (r *Registry) Modules() []ModuleInfo {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []ModuleInfo
	for _, m := range r.modules {
		out = append(out, m.info())
	}
	slices.SortFunc(out, func(a, b ModuleInfo) int { return compareRefs(ref{a.Name, a.Tag}, ref{b.Name, b.Tag}) })
	return out
}

// compareRefs orders handler versions by name, the untagged one first.
func compareRefs(a, b ref) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Tag, b.Tag))
}

// Problems returns the modules that failed to load, by image.
func (r *Registry) Problems() map[string]error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string]error, len(r.problems))
	for k, v := range r.problems {
		out[k] = v
	}
	return out
}

// Report is what `wasmrunner modules check` says of a registry.
type Report struct {
	// Modules are the modules loaded and those that failed, by image.
	Modules []ModuleInfo
	// Skipped are the modules Config.Handlers leaves out (not loaded).
	Skipped []string
	// Problems are the modules dir's and the configuration's: files that
	// are no module's, names in Handlers or DefaultHandler that refer to
	// no module...
	Problems []Problem
}

// Report returns the registry's modules with their problems, and the
// problems of its dir and configuration.
func (r *Registry) Report() Report {
	out := Report{Modules: r.Modules()}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for key, err := range r.problems {
		id, _ := parseImage(key)
		stem := id.stem()
		mi := ModuleInfo{Name: id.Name, Tag: id.Tag, Image: key, Path: filepath.Join(r.cfg.Dir, stem+".wasm"), Problems: problemsOf(err)}
		if _, err := os.Lstat(filepath.Join(r.cfg.Dir, stem+".toml")); err == nil {
			mi.ManifestPath = filepath.Join(r.cfg.Dir, stem+".toml")
		}
		if _, loaded := r.modules[key]; loaded {
			// A broken new file beside the module it did not replace.
			for i := range mi.Problems {
				mi.Problems[i].Message = "its file changed and no longer loads (the module loaded before still takes jobs): " + mi.Problems[i].Message
			}
		}
		out.Modules = append(out.Modules, mi)
	}
	slices.SortStableFunc(out.Modules, func(a, b ModuleInfo) int { return compareRefs(ref{a.Name, a.Tag}, ref{b.Name, b.Tag}) })
	out.Skipped = slices.Clone(r.skipped)
	out.Problems = slices.Clone(r.dirProblems)
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
	img, err := parseImage(image)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoHandler, err)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if img.Name == "" {
		if d := r.cfg.DefaultHandler; d != "" {
			if img, err = parseImage(d); err != nil {
				return nil, fmt.Errorf("%w: default handler: %v", ErrNoHandler, err)
			}
		} else if len(r.modules) == 1 {
			for _, m := range r.modules {
				img.ref = m.ref
			}
		} else {
			return nil, fmt.Errorf("%w: the job names no image and no default handler is set (available: %s)", ErrNoHandler, r.availableLocked())
		}
	}
	if len(r.cfg.Handlers) > 0 && !slices.Contains(r.cfg.Handlers, img.Name) {
		return nil, fmt.Errorf("%w: handler %q is not allowed for this runner (allowed: %s)", ErrNoHandler, img.Name, strings.Join(r.cfg.Handlers, ", "))
	}
	if img.Digest != "" && img.Tag == "" {
		// Any version of the handler whose file has that digest.
		var match []ref
		for _, m := range r.modules {
			if m.ref.Name == img.Name && m.sha256 == img.Digest {
				match = append(match, m.ref)
			}
		}
		if len(match) == 0 {
			return nil, fmt.Errorf("%w: no version of %s has sha256 %s (%s)", ErrNoHandler, img.Name, img.Digest, r.versionsLocked(img.Name))
		}
		img.ref = slices.MinFunc(match, compareRefs) // the same bytes: any will do
	}
	key := img.ref.String()
	m, ok := r.modules[key]
	if !ok || !m.acquire() {
		err := fmt.Errorf("%w: %q is not loaded (%s)", ErrNoHandler, key, r.versionsLocked(img.Name))
		if lerr, bad := r.problems[key]; bad {
			// Never the whole error: it may quote a file.
			err = fmt.Errorf("%w; %s.wasm failed to load: %s", err, img.stem(), publicReason(lerr))
		}
		return nil, err
	}
	if img.Digest != "" && m.sha256 != img.Digest {
		m.release()
		return nil, fmt.Errorf("%w: the image pins sha256 %s, but %s is sha256 %s (%s.wasm changed?)", ErrNoHandler, img.Digest, key, m.sha256, img.stem())
	}
	return m, nil
}

// versionsLocked names the loaded versions of a handler, or all loaded
// handlers when it has none.
func (r *Registry) versionsLocked(name string) string {
	var versions []ref
	for _, m := range r.modules {
		if m.ref.Name == name {
			versions = append(versions, m.ref)
		}
	}
	if len(versions) == 0 {
		return "available: " + r.availableLocked()
	}
	slices.SortFunc(versions, compareRefs)
	s := make([]string, len(versions))
	for i, v := range versions {
		s[i] = v.String()
		if v.Tag == "" {
			s[i] += " (untagged)"
		}
	}
	return "versions of " + name + ": " + strings.Join(s, ", ")
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
