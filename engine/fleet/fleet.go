package fleet

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/ocisource"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

// DefaultLoadTimeout is how long a runner waits for its handlers to load
// before it starts with those loaded by then, when its LoadTimeout is 0.
const DefaultLoadTimeout = 30 * time.Second

// Config configures a [Fleet]: what its runners share.
type Config struct {
	// Logger receives the operator log; nil discards it.
	Logger *slog.Logger
	// Process holds the budgets all runners share (required).
	Process *resource.Process
	// Compiler is the command line of the module compiler child (see
	// modules.SelfCompiler); nil compiles in this process.
	Compiler []string
	// SystemID is sent with every job request (see gitlab.SystemID).
	SystemID string
	// Version is wasmrunner's, told to GitLab.
	Version string
	// CacheDir holds the compilation caches (CacheDir/compiled/<runner>,
	// unless a runner's CompiledDir says otherwise) and pulled oci://
	// handlers (CacheDir/oci/<runner>) (required).
	CacheDir string
	// ReloadInterval is how often a modules dir is checked for changes;
	// default 5 s.
	ReloadInterval time.Duration
	// Transport returns the base transport of runners with the given TLS
	// options; runners with the same options share one. Nil:
	// gitlab.NewTransport's defaults.
	Transport func(gitlab.TLSOptions) (http.RoundTripper, error)
	// Observe returns what a runner reports to (metrics); nil: nothing.
	Observe func(runner string) Observers
	// Clock times token rotations; nil: the system clock.
	Clock Clock
	// TokenRotated, if set, saves a runner's new token (in the config
	// file, or its token file) after GitLab replaced the old one. The new
	// token is used even if it fails (GitLab no longer takes the old one);
	// the error is logged.
	TokenRotated func(runner string, t Token) error
}

// Observers are what one runner reports to; any may be nil.
type Observers struct {
	Jobs    engine.Observer
	Modules modules.Observer
	Source  ocisource.Observer
	// Transport wraps the runner's GitLab transport (to count requests).
	Transport func(http.RoundTripper) http.RoundTripper
}

// Fleet is the set of runners one process serves. Each runner's handlers
// load in their own goroutine, bounded by its LoadTimeout: a modules dir
// that is slow to load (a large module, many of them) delays no other
// runner, and no lock is held while loading.
type Fleet struct {
	cfg Config
	bg  context.Context
	log *slog.Logger

	mu         sync.Mutex
	live       map[string]*instance
	loading    map[string]*loading
	transports map[gitlab.TLSOptions]http.RoundTripper
	stopping   bool
	all        sync.WaitGroup // runners and loads
}

// instance is one running runner with its handlers.
type instance struct {
	opts   Runner
	health *health
	reg    *modules.Registry
	runner *engine.Runner
	stop   context.CancelFunc // stops watching the modules dir
	// stopToken stops replacing its token: a drained runner's token is
	// its successor's.
	stopToken context.CancelFunc
}

// retire drains the runner: it takes no more jobs, finishes its running
// ones, and leaves its token alone.
func (i *instance) retire() {
	i.stopToken()
	i.runner.Drain()
}

// loading is a runner whose handlers are loading.
type loading struct {
	opts   Runner
	health *health
	cancel context.CancelFunc
}

// New returns an empty fleet. ctx's values (not its end) are those of the
// runners; [Fleet.Shutdown] stops them.
func New(ctx context.Context, cfg Config) (*Fleet, error) {
	if cfg.Process == nil || cfg.CacheDir == "" {
		return nil, errors.New("fleet: Config.Process and Config.CacheDir are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReloadInterval <= 0 {
		cfg.ReloadInterval = 5 * time.Second
	}
	if cfg.Transport == nil {
		cfg.Transport = func(o gitlab.TLSOptions) (http.RoundTripper, error) {
			return gitlab.NewTransport(gitlab.TransportOptions{TLS: o})
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string) Observers { return Observers{} }
	}
	return &Fleet{
		cfg: cfg, bg: context.WithoutCancel(ctx), log: cfg.Logger,
		live: map[string]*instance{}, loading: map[string]*loading{}, transports: map[gitlab.TLSOptions]http.RoundTripper{},
	}, nil
}

// Apply makes the runners those of want (see the package doc). What can be
// checked at once (names, URLs, TLS files, modules dirs) is: on error
// nothing is changed.
func (f *Fleet) Apply(want []Runner) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping {
		return errors.New("fleet: shutting down")
	}
	byName := map[string]Runner{}
	for _, r := range want {
		if r.Name == "" {
			return errors.New("fleet: a runner has no name")
		}
		if _, dup := byName[r.Name]; dup {
			return fmt.Errorf("fleet: runner name %q is used twice", r.Name)
		}
		byName[r.Name] = r
	}
	live, loadingNow := map[string]Runner{}, map[string]Runner{}
	for name, i := range f.live {
		live[name] = i.opts
	}
	for name, l := range f.loading {
		loadingNow[name] = l.opts
	}
	steps := plan(live, loadingNow, want)
	clients := map[string]*gitlab.Client{}
	healths := map[string]*health{}
	for _, s := range steps {
		if !s.load {
			continue
		}
		r := byName[s.name]
		h := &health{}
		client, err := f.client(r, h)
		if err != nil {
			return fmt.Errorf("runner %s: %w", r.Name, err)
		}
		if err := checkModules(r.Modules); err != nil {
			return fmt.Errorf("runner %s: modules: %w", r.Name, err)
		}
		clients[s.name], healths[s.name] = client, h
	}
	for _, s := range steps {
		if s.cancelLoad {
			f.loading[s.name].cancel()
			delete(f.loading, s.name)
		}
		if s.retire {
			f.log.Info("runner retired: finishing its jobs", "runner", s.name)
			f.live[s.name].retire()
			delete(f.live, s.name)
		}
		if s.load {
			ctx, cancel := context.WithCancel(f.bg)
			l := &loading{opts: byName[s.name], health: healths[s.name], cancel: cancel}
			f.loading[s.name] = l
			f.all.Add(1)
			go f.load(ctx, l, clients[s.name])
		}
	}
	return nil
}

// client returns a GitLab client for r whose job requests h watches.
func (f *Fleet) client(r Runner, h *health) (*gitlab.Client, error) {
	base, ok := f.transports[r.TLS]
	if !ok {
		var err error
		if base, err = f.cfg.Transport(r.TLS); err != nil {
			return nil, err
		}
		f.transports[r.TLS] = base
	}
	var rt http.RoundTripper = healthTransport{next: base, h: h}
	if wrap := f.cfg.Observe(r.Name).Transport; wrap != nil {
		rt = wrap(rt)
	}
	return gitlab.New(r.URL, gitlab.WithHTTPClient(&http.Client{Transport: rt}), gitlab.WithLogger(f.log.With("runner", r.Name)),
		gitlab.WithUserAgent(fmt.Sprintf("wasmrunner %s (%s; %s/%s)", f.cfg.Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)))
}

// checkModules checks what can be checked of a modules value at once: an
// oci:// reference parses, a dir exists.
func checkModules(m string) error {
	if ocisource.IsRef(m) {
		_, err := ocisource.ParseRef(m)
		return err
	}
	fi, err := os.Stat(m)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", m)
	}
	return nil
}

// load loads a runner's handlers (for at most its LoadTimeout), then runs
// it until it is drained or aborted, unless it was superseded meanwhile.
func (f *Fleet) load(ctx context.Context, l *loading, client *gitlab.Client) {
	defer f.all.Done()
	defer l.cancel()
	o := l.opts
	obs := f.cfg.Observe(o.Name)
	logger := f.log.With("runner", o.Name)
	if o.LoadTimeout <= 0 {
		o.LoadTimeout = DefaultLoadTimeout
	}
	if o.CompiledDir == "" {
		o.CompiledDir = filepath.Join(f.cfg.CacheDir, "compiled")
	}
	mods, err := f.openModules(ctx, o, obs.Source, logger)
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("runner not started: its modules source failed", "modules", o.Modules, "error", err)
		}
		f.forget(l)
		return
	}
	defer mods.close()
	lctx, cancel := context.WithTimeout(ctx, o.LoadTimeout)
	reg, err := modules.Open(lctx, modules.Config{
		Dir: mods.dir, CacheDir: filepath.Join(o.CompiledDir, CacheName(o.Name)), CacheMaxBytes: o.CacheMax,
		Compiler: f.cfg.Compiler, DefaultHandler: o.DefaultHandler, Handlers: o.Handlers,
		Process: f.cfg.Process, Policy: &o.Policy, Logger: logger, Observer: obs.Modules,
	})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("runner not started: loading its handlers failed", "modules", o.Modules, "error", err)
		}
		f.forget(l)
		return
	}
	logHandlers(logger, reg)
	factory := reg.Factory()
	if len(o.Handlers) > 0 {
		factory = allowHandlers(factory, o.Handlers, o.DefaultHandler)
	}
	runner, err := engine.New(engine.Config{
		Client: client, Token: o.Token, SystemID: f.cfg.SystemID,
		Info:    gitlab.RunnerMeta{Name: "wasmrunner", Version: f.cfg.Version, Executor: "wasm", Features: gitlab.DefaultFeatures()},
		Handler: factory, BuildsDir: filepath.Join(o.BuildsDir, o.Name), Concurrency: o.Concurrency,
		CheckInterval: o.CheckInterval, OutputLimit: o.OutputLimit, Logger: logger, Observer: obs.Jobs,
		UpdateInterval: o.UpdateInterval, MaxUpdateInterval: o.UpdateInterval, KeepAlive: o.UpdateInterval, Process: f.cfg.Process,
		ReportDeadline: o.ReportDeadline, JournalDir: JournalDir(o),
		// An emptied dir renamed costs far less than mkdir and rm -r (see
		// RATIONALE.md, "Build dirs are reused per slot").
		ReuseBuildDirs: true,
	})
	if err != nil {
		logger.Error("runner not started", "error", err)
		reg.Close(f.bg)
		f.forget(l)
		return
	}
	watchCtx, stop := context.WithCancel(f.bg)
	tokenCtx, stopToken := context.WithCancel(watchCtx)
	inst := &instance{opts: l.opts, health: l.health, reg: reg, runner: runner, stop: stop, stopToken: stopToken}
	f.mu.Lock()
	if f.stopping || f.loading[o.Name] != l {
		// Shutting down, or removed or changed while loading.
		f.mu.Unlock()
		stopToken()
		stop()
		reg.Close(f.bg)
		return
	}
	delete(f.loading, o.Name)
	if old := f.live[o.Name]; old != nil {
		logger.Info("runner replaced: the old one finishes its jobs")
		old.retire()
	}
	f.live[o.Name] = inst
	f.mu.Unlock()
	go reg.Watch(watchCtx, f.cfg.ReloadInterval)
	mods.watch(watchCtx, reg)
	go f.keepToken(tokenCtx, inst, client, logger)
	logger.Info("wasmrunner serving", "url", o.URL, "system_id", f.cfg.SystemID,
		"concurrency", o.Concurrency, "builds_dir", o.BuildsDir, "modules", o.Modules)
	_ = runner.Run(f.bg)
	stopToken()
	stop()
	reg.Close(f.bg)
}

// forget drops a load that failed.
func (f *Fleet) forget(l *loading) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loading[l.opts.Name] == l {
		delete(f.loading, l.opts.Name)
	}
}

// Shutdown stops loading runners and drains (drain) or aborts the running
// ones; no runner starts after it. [Fleet.Wait] returns when they have
// stopped.
func (f *Fleet) Shutdown(drain bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopping = true
	for _, l := range f.loading {
		l.cancel()
	}
	for _, i := range f.live {
		i.stopToken()
		if drain {
			i.runner.Drain()
		} else {
			i.runner.Abort()
		}
	}
}

// Running returns the number of jobs the serving runners run (drained
// ones finishing theirs are not counted).
func (f *Fleet) Running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, i := range f.live {
		n += i.runner.Running()
	}
	return n
}

// Serving returns the names of the runners taking jobs, sorted.
func (f *Fleet) Serving() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for name := range f.live {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Entries returns the entries of the serving runners, sorted by name, as
// they are now: a rotated token is there.
func (f *Fleet) Entries() []Runner {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Runner
	for _, name := range sortedKeys(f.live) {
		out = append(out, f.live[name].opts)
	}
	return out
}

// Wait returns when every runner (drained ones included) has stopped.
func (f *Fleet) Wait() { f.all.Wait() }

// CacheName is a runner's cache dir name: its name when that is a plain
// file name, else a sanitized one made unique by a hash.
func CacheName(runner string) string {
	ok := runner != "" && runner != "." && runner != ".." && len(runner) <= 64
	for _, c := range runner {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			ok = false
		}
	}
	if ok {
		return runner
	}
	b := []byte(runner)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	sum := sha256.Sum256([]byte(runner))
	return fmt.Sprintf("%.32s-%x", b, sum[:6])
}

// JournalDir is where a runner keeps its journal of jobs in flight (see
// engine.Config.JournalDir): under its builds dir, in
// .wasmrunner-journal/<name>-<hash of its GitLab URL>. Replicas of the
// runner (processes with the same entry sharing the builds dir) share
// the dir, each in a partition of its own; other runner entries, and the
// same name for another GitLab, have their own. The token is left out:
// it changes when it is rotated, and the jobs journaled before must
// still be found.
func JournalDir(r Runner) string {
	sum := sha256.Sum256([]byte(r.URL))
	return filepath.Join(r.BuildsDir, ".wasmrunner-journal", fmt.Sprintf("%s-%x", CacheName(r.Name), sum[:4]))
}

// allowHandlers limits a runner's jobs to the named handlers.
func allowHandlers(next engine.HandlerFactory, allowed []string, defaultHandler string) engine.HandlerFactory {
	return func(ctx context.Context, job *engine.Job) (engine.Handler, error) {
		name := modules.HandlerName(job.Image())
		if name == "" {
			name = defaultHandler
		}
		if !slices.Contains(allowed, name) {
			return nil, fmt.Errorf("%w: handler %q is not allowed for this runner (allowed: %s)", modules.ErrNoHandler, name, strings.Join(allowed, ", "))
		}
		return next(ctx, job)
	}
}

func logHandlers(logger *slog.Logger, reg *modules.Registry) {
	var names []string
	for _, mi := range reg.Modules() {
		names = append(names, fmt.Sprintf("%s(memory=%s)", mi.Image, units.FormatSize(mi.Limits.Memory)))
	}
	logger.Info("handlers loaded", "handlers", strings.Join(names, " "), "broken", len(reg.Problems()))
	for name, err := range reg.Problems() {
		logger.Error("handler skipped", "module", name, "error", err)
	}
}
