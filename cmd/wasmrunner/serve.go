package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

// defaultLoadTimeout is how long a runner waits for its handlers to load
// before it starts with those loaded by then.
const defaultLoadTimeout = 30 * time.Second

// Exit code of serve when a second signal or the shutdown timeout ends
// it before every job was reported.
const exitForced = 3

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "take jobs from GitLab and run them with the WebAssembly handlers of a directory",
		Description: `serve is a GitLab runner: it polls GitLab for jobs, runs each in a fresh
sandboxed instance of the handler its image names (image: shell -> shell.wasm),
streams the job log, uploads artifacts and reports the result.

Signals: SIGQUIT stops taking jobs and exits once the running ones finish;
SIGTERM or SIGINT abort the running jobs (reported failed) and exit; a second
signal, or --shutdown-timeout after the first, exits at once. Handlers added,
replaced or removed in --modules are picked up while running.

Handlers are untrusted input: files in --modules are read only if they are
regular files inside it (links that lead out, FIFOs and devices are refused)
and at most --max-module-size (manifests: 64KiB). Each module is compiled in a
child process (the same executable) held to --compile-memory and
--compile-timeout, one compilation at a time; each runner entry's handlers
load on their own, so a slow or broken modules dir delays no other runner
(a runner starts after at most --load-timeout with the handlers loaded by
then; the rest load at the next reload).

Compiled modules are cached in $XDG_CACHE_HOME/wasmrunner/compiled/<runner>/
(~/.cache/wasmrunner/compiled/<runner>/ by default; "default" without
--config), one directory per module version, at most --compile-cache-size
per runner: versions no longer loaded are evicted, oldest first. To clear it,
stop wasmrunner and remove the directory (modules are compiled anew at the
next start).

--config FILE serves several runners ([[runners]] entries); SIGHUP reads it
again. GitLab Runner's config.toml names of the same settings are taken
too (concurrent, listen_address, log_level, log_format, check_interval and
shutdown_timeout in seconds, a runner's limit, output_limit in KiB); unknown
keys, handler names no module provides and a runner's concurrency above the
global one are errors. The README lists every key.

Exit codes: 0 after a clean shutdown, 1 on a start-up error, 2 on a usage
error (flags, arguments, the config file), 3 when a second signal or the
shutdown timeout cut jobs short.

Examples:
   wasmrunner serve --url https://gitlab.example.com --token-file /etc/wasmrunner/token --modules ./handlers
   WASMRUNNER_TOKEN=glrt-... wasmrunner serve --url https://gitlab.example.com --modules ./handlers --listen :9252`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "TOML file with several [[runners]] (reloaded on SIGHUP); flags give defaults", EnvVars: []string{"WASMRUNNER_CONFIG"}},
			&cli.StringFlag{Name: "url", Usage: "GitLab URL", EnvVars: []string{"WASMRUNNER_URL"}},
			&cli.StringFlag{Name: "token", Usage: "runner authentication token (glrt-...)", EnvVars: []string{"WASMRUNNER_TOKEN"}},
			&cli.StringFlag{Name: "token-file", Usage: "read the runner token from this file", EnvVars: []string{"WASMRUNNER_TOKEN_FILE"}},
			&cli.StringFlag{Name: "modules", Usage: "directory of handler modules (NAME.wasm + optional NAME.toml), or an OCI artifact of them: oci://REGISTRY/REPO:TAG or @sha256:...", EnvVars: []string{"WASMRUNNER_MODULES"}},
			&cli.IntFlag{Name: "concurrency", Usage: "most jobs at once, all runners together (0: the number of CPUs)", EnvVars: []string{"WASMRUNNER_CONCURRENCY"}},
			&cli.StringFlag{Name: "builds-dir", Usage: "where job build dirs live (default: under the user cache dir)", EnvVars: []string{"WASMRUNNER_BUILDS_DIR"}},
			&cli.DurationFlag{Name: "check-interval", Value: 3 * time.Second, Usage: "wait between job requests while GitLab has none", EnvVars: []string{"WASMRUNNER_CHECK_INTERVAL"}},
			&cli.StringFlag{Name: "default-handler", Usage: "handler for jobs without an image", EnvVars: []string{"WASMRUNNER_DEFAULT_HANDLER"}},
			&cli.StringFlag{Name: "output-limit", Value: "4MiB", Usage: "most bytes of each job's log: a size with a unit (4MiB), or a plain number of KiB as GitLab Runner's (4096)", EnvVars: []string{"WASMRUNNER_OUTPUT_LIMIT"}},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "after a signal, how long to wait for jobs before exiting", EnvVars: []string{"WASMRUNNER_SHUTDOWN_TIMEOUT"}},
			&cli.StringFlag{Name: "listen", Usage: "address for /metrics, /healthz and /readyz (e.g. :9252); empty: none", EnvVars: []string{"WASMRUNNER_LISTEN"}},
			&cli.BoolFlag{Name: "pprof", Usage: "also serve Go's runtime profiles under /debug/pprof/ on --listen (for profiling the runner; see docs/benchmarks.md)", EnvVars: []string{"WASMRUNNER_PPROF"}},
			&cli.DurationFlag{Name: "reload-interval", Value: 5 * time.Second, Usage: "how often --modules is checked for changes", EnvVars: []string{"WASMRUNNER_RELOAD_INTERVAL"}},
			&cli.StringFlag{Name: "max-module-size", Value: "32MiB", Usage: "largest .wasm file loaded; larger ones are refused unread", EnvVars: []string{"WASMRUNNER_MAX_MODULE_SIZE"}},
			&cli.StringFlag{Name: "compile-memory", Value: "2GiB", Usage: "most memory compiling one module may use (in a child process; one compilation at a time)", EnvVars: []string{"WASMRUNNER_COMPILE_MEMORY"}},
			&cli.DurationFlag{Name: "compile-timeout", Value: resource.DefaultCompileTimeout, Usage: "most time compiling one module may take", EnvVars: []string{"WASMRUNNER_COMPILE_TIMEOUT"}},
			&cli.StringFlag{Name: "compile-cache-size", Value: "1GiB", Usage: "bound of each runner's compilation cache (see below)", EnvVars: []string{"WASMRUNNER_COMPILE_CACHE_SIZE"}},
			&cli.DurationFlag{Name: "load-timeout", Value: defaultLoadTimeout, Usage: "how long a runner waits for its handlers to load before it starts; the rest load later", EnvVars: []string{"WASMRUNNER_LOAD_TIMEOUT"}},
		}, ociFlags()...),
		Action: runServe,
	}
}

// serveOptions are one runner's settings after flags, environment and
// config file.
type serveOptions struct {
	name                                                      string
	url, token, modulesDir, buildsDir, defaultHandler, listen string
	handlers                                                  []string // allowed handler names; empty: all
	concurrency                                               int
	checkInterval, shutdownTimeout, reloadInterval            time.Duration
	outputLimit                                               int64
	// compile bounds module sizes and compilations (process-wide);
	// cacheMax bounds each runner's compilation cache; loadTimeout is
	// how long a runner waits for its handlers before it starts.
	compile     resource.CompileLimits
	cacheMax    int64
	loadTimeout time.Duration
	// compiledDir holds the runners' compilation caches, one dir each.
	compiledDir string
	// policy is the operator's ceiling over handler manifests.
	policy resource.Policy
	// updateInterval is for tests: 0 leaves the engine's default.
	updateInterval time.Duration
	// oci says how oci:// modules are pulled.
	oci ociOptions
	// pprof serves runtime profiles on listen.
	pprof bool
}

// serveFlags reads the options that do not depend on a runner entry.
func serveFlags(c *cli.Context) (serveOptions, error) {
	o := serveOptions{
		name: "default", url: c.String("url"), modulesDir: c.String("modules"),
		buildsDir: c.String("builds-dir"), defaultHandler: c.String("default-handler"), listen: c.String("listen"),
		concurrency: c.Int("concurrency"), checkInterval: c.Duration("check-interval"),
		shutdownTimeout: c.Duration("shutdown-timeout"), reloadInterval: c.Duration("reload-interval"),
		pprof: c.Bool("pprof"),
	}
	if o.concurrency < 0 {
		return o, usageError(fmt.Sprintf("invalid --concurrency %d: it must be positive, or 0 for the number of CPUs", o.concurrency))
	}
	n, err := parseOutputLimit(c.String("output-limit"))
	if err != nil {
		return o, err
	}
	o.outputLimit = n
	for _, f := range []struct {
		flag string
		dst  *int64
	}{{"max-module-size", &o.compile.MaxModuleSize}, {"compile-memory", &o.compile.Memory}, {"compile-cache-size", &o.cacheMax}} {
		n, err := units.ParseSize(c.String(f.flag))
		if err != nil || n <= 0 {
			return o, usageError(fmt.Sprintf("invalid --%s %q", f.flag, c.String(f.flag)))
		}
		*f.dst = n
	}
	o.compile.Timeout = c.Duration("compile-timeout")
	o.loadTimeout = c.Duration("load-timeout")
	if o.compile.Timeout <= 0 || o.loadTimeout <= 0 {
		return o, usageError("--compile-timeout and --load-timeout must be positive")
	}
	o.compiledDir = filepath.Join(cacheDir(), "compiled")
	if o.oci = ociFlagOptions(c); o.oci.pullInterval <= 0 {
		return o, usageError("--pull-interval must be positive")
	}
	if o.concurrency <= 0 {
		o.concurrency = runtime.NumCPU()
	}
	if o.pprof && o.listen == "" && c.String("config") == "" {
		return o, usageError("--pprof serves on --listen: give --listen too")
	}
	if o.buildsDir == "" {
		o.buildsDir = filepath.Join(cacheDir(), "builds")
	}
	return o, nil
}

// serveOptionsFrom reads a single runner's options from flags.
func serveOptionsFrom(c *cli.Context) (serveOptions, error) {
	o, err := serveFlags(c)
	if err != nil {
		return o, err
	}
	if o.url == "" {
		return o, usageError("--url (or WASMRUNNER_URL) is required, or --config")
	}
	token, err := tokenFrom(c.String("token"), c.String("token-file"))
	if err != nil {
		return o, err
	}
	o.token = token
	if o.modulesDir == "" {
		return o, usageError("--modules (or WASMRUNNER_MODULES) is required")
	}
	if err := checkModulesValue(o.modulesDir); err != nil {
		return o, usageError("--modules: " + err.Error())
	}
	if missing := missingHandlers(o.modulesDir, []string{o.defaultHandler}); o.defaultHandler != "" && len(missing) > 0 {
		return o, usageError(fmt.Sprintf("--default-handler %q: no module in %s provides it (%s.wasm or %s@TAG.wasm)", o.defaultHandler, o.modulesDir, o.defaultHandler, o.defaultHandler))
	}
	return o, nil
}

// parseOutputLimit reads an --output-limit: a size with a unit, or a plain
// number of KiB as GitLab Runner's --output-limit and output_limit have it.
func parseOutputLimit(s string) (int64, error) {
	n, err := parseKiBSize(s)
	if err != nil || n <= 0 {
		return 0, usageError(fmt.Sprintf("invalid --output-limit %q: a size with a unit (4MiB), or a number of KiB (4096)", s))
	}
	return n, nil
}

// cacheDir is wasmrunner's directory under the user cache dir.
func cacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "wasmrunner")
}

// runnerSet returns the runners to serve: from the config file when one is
// given (read anew on SIGHUP), else the one the flags describe.
type runnerSet func() (global serveOptions, runners []serveOptions, err error)

func runServe(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	var (
		set    runnerSet
		logger *slog.Logger
		err    error
	)
	if path := c.String("config"); path != "" {
		base, err := serveFlags(c)
		if err != nil {
			return err
		}
		fc, err := loadConfig(path)
		if err != nil {
			return usageError(err.Error())
		}
		// The global flags (and their environment variables) win over the
		// file's log_level and log_format, as in GitLab Runner; the
		// file's log_level applies again on SIGHUP.
		level := new(slog.LevelVar)
		given := func(flag string) bool { return c.IsSet(flag) && c.String(flag) != "" }
		levelFromFile := !given("log-level") && fc.LogLevel != ""
		levelName, format := c.String("log-level"), c.String("log-format")
		if levelFromFile {
			levelName = fc.LogLevel
		}
		if !given("log-format") && fc.LogFormat != "" {
			format = fc.LogFormat
		}
		lv, err := parseLogLevel(levelName)
		if err != nil {
			return usageError(err.Error())
		}
		level.Set(lv)
		if logger, err = newLogger(c.App.ErrWriter, level, format); err != nil {
			return err
		}
		if !levelFromFile {
			level = nil
		}
		flagConcurrency := c.Int("concurrency") // 0: not given, or the CPU count
		set = configSetWith(path, base, flagConcurrency, level)
	} else {
		if logger, err = loggerFor(c); err != nil {
			return err
		}
		o, err := serveOptionsFrom(c)
		if err != nil {
			return err
		}
		set = func() (serveOptions, []serveOptions, error) { return o, []serveOptions{o}, nil }
	}
	// Signals arrive here; the context main gives is only a fallback.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	return serveSet(c.Context, set, logger, sigs)
}

// configSet reads the runners of a config file, with base (the flags) as
// defaults.
func configSet(path string, base serveOptions) runnerSet {
	return configSetWith(path, base, 0, nil)
}

// configSetWith is configSet; flagConcurrency is --concurrency when it
// was given (else 0): a runner's concurrency above it, when the file sets
// none, is an error. level, when not nil, is set to the file's log_level
// at each reading.
func configSetWith(path string, base serveOptions, flagConcurrency int, level *slog.LevelVar) runnerSet {
	return func() (serveOptions, []serveOptions, error) {
		fc, err := loadConfig(path)
		if err != nil {
			return base, nil, err
		}
		global := base
		if n := deref(fc.Concurrency); n > 0 {
			global.concurrency = n
		} else if flagConcurrency > 0 {
			var errs []error
			for i, r := range fc.Runners {
				if n := deref(r.Concurrency); n > flagConcurrency {
					errs = append(errs, fmt.Errorf("%s: runners[%d] (%s): %s = %d is more than --concurrency %d, which bounds all runners' jobs together", path, i, r.Name, r.concurrencyKey, n, flagConcurrency))
				}
			}
			if len(errs) > 0 {
				return base, nil, errors.Join(errs...)
			}
		}
		if fc.Listen != nil {
			global.listen = *fc.Listen
		}
		if fc.ShutdownTimeout.d > 0 {
			global.shutdownTimeout = fc.ShutdownTimeout.d
		}
		if fc.ReloadInterval > 0 {
			global.reloadInterval = time.Duration(fc.ReloadInterval)
		}
		fc.compileOver(&global)
		global.oci = fc.ociOver(runnerConfig{}, global.oci)
		if level != nil && fc.LogLevel != "" {
			if lv, err := parseLogLevel(fc.LogLevel); err == nil {
				level.Set(lv)
			}
		}
		var rs []serveOptions
		var errs []error
		for i, r := range fc.Runners {
			o := r.options(fc, global)
			if r.DefaultHandler == "" && o.defaultHandler != "" && len(missingHandlers(o.modulesDir, []string{o.defaultHandler})) > 0 {
				errs = append(errs, fmt.Errorf("%s: runners[%d] (%s): --default-handler %q: no module in %s provides it", path, i, r.Name, o.defaultHandler, o.modulesDir))
			}
			rs = append(rs, o)
		}
		if len(errs) > 0 {
			return base, nil, errors.Join(errs...)
		}
		return global, rs, nil
	}
}

// serve runs one runner until a signal (or ctx) stops it.
func serve(ctx context.Context, o serveOptions, logger *slog.Logger, sigs <-chan os.Signal) error {
	return serveSet(ctx, func() (serveOptions, []serveOptions, error) { return o, []serveOptions{o}, nil }, logger, sigs)
}

// serveSet runs a set of runners until a signal (or ctx) stops them;
// SIGHUP reads the set again.
func serveSet(ctx context.Context, set runnerSet, logger *slog.Logger, sigs <-chan os.Signal) error {
	global, runners, err := set()
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	if global.pprof && global.listen == "" {
		return usageError("--pprof serves on the listen address: give --listen (or listen_address in the config file)")
	}
	m := newMetrics(global.concurrency)
	systemID, err := gitlab.SystemID(gitlab.DefaultMachineIDFile, filepath.Join(cacheDir(), ".runner_system_id"))
	if err != nil {
		return err
	}
	proc := resource.NewProcess(resource.ProcessConfig{Jobs: global.concurrency, Compile: global.compile})
	m.watchProcess(proc)
	compiler, err := modules.SelfCompiler()
	if err != nil {
		return fmt.Errorf("finding the compiler (this executable): %w", err)
	}
	f := &fleet{
		bg: context.WithoutCancel(ctx), log: logger, m: m, systemID: systemID,
		hc:   &http.Client{Transport: countingTransport{next: gitlabTransport(global.concurrency), m: m}},
		proc: proc, compiler: compiler, live: map[string]*instance{}, loading: map[string]*loading{},
		reloadInterval: global.reloadInterval, sources: newSourceMetrics(m.reg),
	}
	if err := f.apply(runners); err != nil {
		f.shutdown(false)
		f.wait()
		// What apply checks (URLs, modules dirs) is the command line's
		// or the config file's.
		return usageError(err.Error())
	}

	var ready atomic.Bool
	if global.listen != "" {
		srv, addr, err := startHTTP(global.listen, m, &ready, global.pprof, logger)
		if err != nil {
			f.shutdown(false)
			f.wait()
			return err
		}
		defer srv.Close()
		logger.Info("metrics and health endpoints listening", "addr", addr)
	}
	ready.Store(true)

	allDone := make(chan struct{})
	var force <-chan time.Time
	stopping := false
	stop := func(drain bool) {
		stopping = true
		ready.Store(false)
		force = time.After(global.shutdownTimeout)
		f.shutdown(drain)
		go func() {
			f.wait()
			close(allDone)
		}()
	}
	for {
		select {
		case <-allDone:
			logger.Info("wasmrunner stopped")
			return nil
		case <-ctx.Done():
			if !stopping {
				logger.Warn("context ended: aborting running jobs")
				stop(false)
			}
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP:
				if stopping {
					continue
				}
				_, runners, err := set()
				if err == nil {
					err = f.apply(runners)
				}
				if err != nil {
					logger.Error("SIGHUP: reloading the configuration failed; keeping the running set", "error", err)
				} else {
					logger.Info("SIGHUP: configuration reloaded", "runners", len(runners))
				}
			case stopping:
				logger.Error("second signal: exiting without waiting for jobs", "signal", sig.String(), "running", f.running())
				return cli.Exit("", exitForced)
			case sig == syscall.SIGQUIT:
				logger.Info("SIGQUIT: finishing running jobs, taking no new ones", "running", f.running())
				stop(true)
			default:
				logger.Info("aborting running jobs", "signal", sig.String(), "running", f.running())
				stop(false)
			}
		case <-force:
			logger.Error("shutdown timeout: exiting without waiting for jobs", "timeout", global.shutdownTimeout, "running", f.running())
			return cli.Exit("", exitForced)
		}
	}
}

// fleet is the set of runners one process serves. Each runner's handlers
// load in their own goroutine, bounded by its loadTimeout: a modules dir
// that is slow to load (a large module, many of them) delays no other
// runner, and no lock is held while loading.
type fleet struct {
	bg             context.Context
	log            *slog.Logger
	m              *metrics
	hc             *http.Client
	systemID       string
	proc           *resource.Process
	compiler       []string
	reloadInterval time.Duration
	sources        *sourceMetrics // of oci:// modules

	mu       sync.Mutex
	live     map[string]*instance
	loading  map[string]*loading
	stopping bool
	all      sync.WaitGroup // runners and loads
}

// instance is one running runner with its handlers.
type instance struct {
	opts   serveOptions
	reg    *modules.Registry
	runner *engine.Runner
	stop   context.CancelFunc // stops watching the modules dir
}

// loading is a runner whose handlers are loading.
type loading struct {
	opts   serveOptions
	cancel context.CancelFunc
}

// apply makes the runners those of runners: new ones load their handlers
// and start, changed ones load anew and replace the old one when ready
// (the old one drains: its jobs finish), removed ones drain. What can be
// checked at once (URLs, modules dirs) is: on error nothing is changed.
func (f *fleet) apply(runners []serveOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping {
		return errors.New("shutting down")
	}
	want := map[string]serveOptions{}
	for _, o := range runners {
		want[o.name] = o
	}
	clients := map[string]*gitlab.Client{}
	for name, o := range want {
		if old, ok := f.live[name]; ok && fmt.Sprint(old.opts) == fmt.Sprint(o) {
			continue
		}
		if l, ok := f.loading[name]; ok && fmt.Sprint(l.opts) == fmt.Sprint(o) {
			continue
		}
		client, err := gitlab.New(o.url, gitlab.WithHTTPClient(f.hc), gitlab.WithLogger(f.log),
			gitlab.WithUserAgent(fmt.Sprintf("wasmrunner %s (%s; %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)))
		if err != nil {
			return fmt.Errorf("runner %s: %w", name, err)
		}
		if err := checkModulesValue(o.modulesDir); err != nil {
			return fmt.Errorf("runner %s: modules: %w", name, err)
		} else if isOCI(o.modulesDir) {
			// Pulled when the runner loads.
		} else if fi, err := os.Stat(o.modulesDir); err != nil {
			return fmt.Errorf("runner %s: modules: %w", name, err)
		} else if !fi.IsDir() {
			return fmt.Errorf("runner %s: modules: %s is not a directory", name, o.modulesDir)
		}
		clients[name] = client
	}
	for name, l := range f.loading {
		if _, keep := want[name]; !keep || clients[name] != nil {
			l.cancel()
			delete(f.loading, name)
		}
	}
	for name, old := range f.live {
		if _, keep := want[name]; !keep {
			f.log.Info("runner retired: finishing its jobs", "runner", name)
			old.retire()
			delete(f.live, name)
		}
	}
	for name, client := range clients {
		ctx, cancel := context.WithCancel(f.bg)
		l := &loading{opts: want[name], cancel: cancel}
		f.loading[name] = l
		f.all.Add(1)
		go f.load(ctx, l, client)
	}
	return nil
}

// load loads a runner's handlers (for at most its loadTimeout), then runs
// it until it is drained or aborted, unless it was superseded meanwhile.
func (f *fleet) load(ctx context.Context, l *loading, client *gitlab.Client) {
	defer f.all.Done()
	defer l.cancel()
	o := l.opts
	logger := f.log.With("runner", o.name)
	if o.loadTimeout <= 0 {
		o.loadTimeout = defaultLoadTimeout
	}
	if o.compiledDir == "" {
		o.compiledDir = filepath.Join(cacheDir(), "compiled")
	}
	mods, err := f.openModules(ctx, o, logger)
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("runner not started: its modules source failed", "modules", o.modulesDir, "error", err)
		}
		f.forget(l)
		return
	}
	defer mods.close()
	lctx, cancel := context.WithTimeout(ctx, o.loadTimeout)
	reg, err := modules.Open(lctx, modules.Config{
		Dir: mods.dir, CacheDir: filepath.Join(o.compiledDir, cacheName(o.name)), CacheMaxBytes: o.cacheMax,
		Compiler: f.compiler, DefaultHandler: o.defaultHandler, Handlers: o.handlers,
		Process: f.proc, Policy: &o.policy, Logger: logger, Observer: f.m.forRunner(o.name),
	})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			logger.Error("runner not started: loading its handlers failed", "modules", o.modulesDir, "error", err)
		}
		f.forget(l)
		return
	}
	logHandlers(logger, reg)
	factory := reg.Factory()
	if len(o.handlers) > 0 {
		factory = allowHandlers(factory, o.handlers, o.defaultHandler)
	}
	runner, err := engine.New(engine.Config{
		Client: client, Token: o.token, SystemID: f.systemID,
		Info:    gitlab.RunnerMeta{Name: "wasmrunner", Version: version, Executor: "wasm", Features: gitlab.DefaultFeatures()},
		Handler: factory, BuildsDir: filepath.Join(o.buildsDir, o.name), Concurrency: o.concurrency,
		CheckInterval: o.checkInterval, OutputLimit: o.outputLimit, Logger: logger, Observer: f.m,
		UpdateInterval: o.updateInterval, MaxUpdateInterval: o.updateInterval, KeepAlive: o.updateInterval, Process: f.proc,
	})
	if err != nil {
		logger.Error("runner not started", "error", err)
		reg.Close(f.bg)
		f.forget(l)
		return
	}
	watchCtx, stop := context.WithCancel(f.bg)
	inst := &instance{opts: o, reg: reg, runner: runner, stop: stop}
	f.mu.Lock()
	if f.stopping || f.loading[o.name] != l {
		// Shutting down, or removed or changed while loading.
		f.mu.Unlock()
		stop()
		reg.Close(f.bg)
		return
	}
	delete(f.loading, o.name)
	if old := f.live[o.name]; old != nil {
		logger.Info("runner replaced: the old one finishes its jobs")
		old.retire()
	}
	f.live[o.name] = inst
	f.mu.Unlock()
	go reg.Watch(watchCtx, f.reloadInterval)
	mods.watch(watchCtx, reg)
	logger.Info("wasmrunner serving", "url", o.url, "system_id", f.systemID,
		"concurrency", o.concurrency, "builds_dir", o.buildsDir, "modules", o.modulesDir)
	_ = runner.Run(f.bg)
	stop()
	reg.Close(f.bg)
}

// forget drops a load that failed.
func (f *fleet) forget(l *loading) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.loading[l.opts.name] == l {
		delete(f.loading, l.opts.name)
	}
}

// cacheName is a runner's compilation cache dir name: its name when that
// is a plain file name, else a sanitized one made unique by a hash.
func cacheName(runner string) string {
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

// retire drains a running runner; its goroutine closes it when its jobs
// are done.
func (i *instance) retire() {
	i.runner.Drain()
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

// shutdown stops loading runners and drains (drain) or aborts the running
// ones; no runner starts after it.
func (f *fleet) shutdown(drain bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopping = true
	for _, l := range f.loading {
		l.cancel()
	}
	for _, i := range f.live {
		if drain {
			i.runner.Drain()
		} else {
			i.runner.Abort()
		}
	}
}

func (f *fleet) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, i := range f.live {
		n += i.runner.Running()
	}
	return n
}

// wait returns when every runner has stopped.
func (f *fleet) wait() { f.all.Wait() }

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

// gitlabTransport is the HTTP transport of the GitLab clients: Go's
// default one, but keeping enough idle connections to GitLab for every
// job slot. The default keeps two per host, so with dozens of jobs
// patching their logs most requests would dial (and, over HTTPS,
// handshake) anew.
func gitlabTransport(concurrency int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(concurrency, runtime.NumCPU()) + 4
	t.MaxIdleConns = max(t.MaxIdleConns, 2*t.MaxIdleConnsPerHost)
	return t
}

// startHTTP serves /metrics, /healthz and /readyz, and with pprof Go's
// profiles under /debug/pprof/.
func startHTTP(addr string, m *metrics, ready *atomic.Bool, pprof bool, logger *slog.Logger) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--listen: %w", err)
	}
	mux := http.NewServeMux()
	if pprof {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	mux.Handle("/metrics", m.handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server failed", "error", err)
		}
	}()
	return srv, ln.Addr().String(), nil
}
