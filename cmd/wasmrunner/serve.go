package main

import (
	"context"
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
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine/fleet"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

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

GitLab with a private CA or asking for client certificates: --tls-ca-file,
--tls-cert-file, --tls-key-file (a runner's tls_ca_file, ...); proxies come
from HTTPS_PROXY, HTTP_PROXY and NO_PROXY. A runner token that expires is
replaced when three quarters of its life have passed and saved into the
config file or --token-file (--token-rotation=false where several
processes share a token). /readyz answers 503 while GitLab does not answer
a runner's job requests or refuses its token.

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
			&cli.DurationFlag{Name: "report-deadline", Value: time.Hour, Usage: "how long a job's final update (or the report of a job lost in a crash) is retried while GitLab is unreachable or failing", EnvVars: []string{"WASMRUNNER_REPORT_DEADLINE"}},
			&cli.StringFlag{Name: "listen", Usage: "address for /metrics, /healthz and /readyz (e.g. :9252); empty: none", EnvVars: []string{"WASMRUNNER_LISTEN"}},
			&cli.BoolFlag{Name: "token-rotation", Value: true, Usage: "replace runner tokens that expire before they do, saving the new one (--token-rotation=false where several processes share a token)", EnvVars: []string{"WASMRUNNER_TOKEN_ROTATION"}},
			&cli.BoolFlag{Name: "pprof", Usage: "also serve Go's runtime profiles under /debug/pprof/ on --listen (for profiling the runner; see docs/benchmarks.md)", EnvVars: []string{"WASMRUNNER_PPROF"}},
			&cli.DurationFlag{Name: "reload-interval", Value: 5 * time.Second, Usage: "how often --modules is checked for changes", EnvVars: []string{"WASMRUNNER_RELOAD_INTERVAL"}},
			&cli.StringFlag{Name: "max-module-size", Value: "32MiB", Usage: "largest .wasm file loaded; larger ones are refused unread", EnvVars: []string{"WASMRUNNER_MAX_MODULE_SIZE"}},
			&cli.StringFlag{Name: "compile-memory", Value: "2GiB", Usage: "most memory compiling one module may use (in a child process; one compilation at a time)", EnvVars: []string{"WASMRUNNER_COMPILE_MEMORY"}},
			&cli.DurationFlag{Name: "compile-timeout", Value: resource.DefaultCompileTimeout, Usage: "most time compiling one module may take", EnvVars: []string{"WASMRUNNER_COMPILE_TIMEOUT"}},
			&cli.StringFlag{Name: "compile-cache-size", Value: "1GiB", Usage: "bound of each runner's compilation cache (see below)", EnvVars: []string{"WASMRUNNER_COMPILE_CACHE_SIZE"}},
			&cli.DurationFlag{Name: "load-timeout", Value: fleet.DefaultLoadTimeout, Usage: "how long a runner waits for its handlers to load before it starts; the rest load later", EnvVars: []string{"WASMRUNNER_LOAD_TIMEOUT"}},
		}, append(ociFlags(), tlsFlags()...)...),
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
	// reportDeadline bounds the retries of final updates (engine.Config).
	reportDeadline time.Duration
	outputLimit    int64
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
	// tls says how GitLab's certificate is checked and which client
	// certificate is shown.
	tls gitlab.TLSOptions
	// pprof serves runtime profiles on listen.
	pprof bool
	// tokenObtainedAt and tokenExpiresAt are the token's times, if known;
	// rotateToken replaces a token before it expires.
	tokenObtainedAt, tokenExpiresAt time.Time
	rotateToken                     bool
	// saveToken (of the global options) saves a runner's replaced token.
	saveToken func(runner string, t fleet.Token) error
}

// serveFlags reads the options that do not depend on a runner entry.
func serveFlags(c *cli.Context) (serveOptions, error) {
	o := serveOptions{
		name: "default", url: c.String("url"), modulesDir: c.String("modules"),
		buildsDir: c.String("builds-dir"), defaultHandler: c.String("default-handler"), listen: c.String("listen"),
		concurrency: c.Int("concurrency"), checkInterval: c.Duration("check-interval"),
		shutdownTimeout: c.Duration("shutdown-timeout"), reloadInterval: c.Duration("reload-interval"),
		reportDeadline: c.Duration("report-deadline"),
		pprof:          c.Bool("pprof"), rotateToken: c.Bool("token-rotation"),
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
	if o.reportDeadline <= 0 {
		return o, usageError("--report-deadline must be positive")
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
	if o.tls, err = tlsFlagOptions(c); err != nil {
		return o, err
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
		o.saveToken = tokenFileSaver(c.String("token-file"))
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
		if fc.ReportDeadline > 0 {
			global.reportDeadline = time.Duration(fc.ReportDeadline)
		}
		fc.compileOver(&global)
		global.oci = fc.ociOver(runnerConfig{}, global.oci)
		global.saveToken = func(runner string, t fleet.Token) error { return saveRotatedToken(path, runner, t) }
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
	if ok, need, limit := resource.FilesFor(global.concurrency); !ok {
		logger.Warn("the descriptor limit is low for this concurrency: with every job slot busy, jobs would fail to open files; raise it (ulimit -n, systemd LimitNOFILE, the container runtime's nofile)",
			"concurrency", global.concurrency, "descriptors_needed", need, "limit", limit)
	}
	compiler, err := modules.SelfCompiler()
	if err != nil {
		return fmt.Errorf("finding the compiler (this executable): %w", err)
	}
	f, err := fleet.New(ctx, fleet.Config{
		Logger: logger, Process: proc, Compiler: compiler, SystemID: systemID, Version: version,
		CacheDir: cacheDir(), ReloadInterval: global.reloadInterval, Observe: m.observers(newSourceMetrics(m.reg)),
		TokenRotated: global.saveToken,
		Transport: func(o gitlab.TLSOptions) (http.RoundTripper, error) {
			return gitlab.NewTransport(gitlab.TransportOptions{TLS: o, MaxIdleConnsPerHost: idleConnsPerHost(global.concurrency)})
		},
	})
	if err != nil {
		return err
	}
	m.watchFleet(f)
	if err := f.Apply(runnerEntries(runners)); err != nil {
		f.Shutdown(false)
		f.Wait()
		// What Apply checks (URLs, modules dirs) is the command line's
		// or the config file's.
		return usageError(err.Error())
	}

	if global.listen != "" {
		srv, addr, err := startHTTP(global.listen, m, f.Ready, global.pprof, logger)
		if err != nil {
			f.Shutdown(false)
			f.Wait()
			return err
		}
		defer srv.Close()
		logger.Info("metrics and health endpoints listening", "addr", addr)
	}
	allDone := make(chan struct{})
	var force <-chan time.Time
	stopping := false
	stop := func(drain bool) {
		stopping = true
		force = time.After(global.shutdownTimeout)
		f.Shutdown(drain)
		go func() {
			f.Wait()
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
					err = f.Apply(runnerEntries(runners))
				}
				if err != nil {
					logger.Error("SIGHUP: reloading the configuration failed; keeping the running set", "error", err)
				} else {
					logger.Info("SIGHUP: configuration reloaded", "runners", len(runners))
				}
			case stopping:
				logger.Error("second signal: exiting without waiting for jobs", "signal", sig.String(), "running", f.Running())
				return cli.Exit("", exitForced)
			case sig == syscall.SIGQUIT:
				logger.Info("SIGQUIT: finishing running jobs, taking no new ones", "running", f.Running())
				stop(true)
			default:
				logger.Info("aborting running jobs", "signal", sig.String(), "running", f.Running())
				stop(false)
			}
		case <-force:
			logger.Error("shutdown timeout: exiting without waiting for jobs", "timeout", global.shutdownTimeout, "running", f.Running())
			return cli.Exit("", exitForced)
		}
	}
}

// idleConnsPerHost is how many idle connections to GitLab its clients
// keep: one per job slot. Go's default transport keeps two per host, so
// with dozens of jobs patching their logs most requests would dial (and,
// over HTTPS, handshake) anew.
//
// It is capped: thousands of jobs waiting on hardware send a patch or a
// keep-alive only every few seconds each, so few requests are in flight
// at once, and each idle connection holds two goroutines and their
// buffers (a 10,000-job run kept 2,700 of them).
func idleConnsPerHost(concurrency int) int {
	return min(max(concurrency, runtime.NumCPU())+4, maxIdleConnsPerHost)
}

// maxIdleConnsPerHost caps idleConnsPerHost.
const maxIdleConnsPerHost = 128

// startHTTP serves /metrics, /healthz and /readyz (503 with the reason
// while ready says no), and with pprof Go's profiles under /debug/pprof/.
func startHTTP(addr string, m *metrics, ready func() (bool, string), pprof bool, logger *slog.Logger) (*http.Server, string, error) {
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
		if ok, why := ready(); !ok {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
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

// runnerEntries are the fleet's entries of runners' options.
func runnerEntries(runners []serveOptions) []fleet.Runner {
	out := make([]fleet.Runner, len(runners))
	for i, o := range runners {
		out[i] = o.runner()
	}
	return out
}

// runner is the fleet's entry of o.
func (o serveOptions) runner() fleet.Runner {
	if o.name == "" {
		o.name = "default"
	}
	return fleet.Runner{
		Name: o.name, URL: o.url, Token: o.token, TLS: o.tls, Modules: o.modulesDir,
		TokenObtainedAt: o.tokenObtainedAt, TokenExpiresAt: o.tokenExpiresAt, RotateToken: o.rotateToken,
		Registry: fleet.RegistryOptions{PullInterval: o.oci.pullInterval, Insecure: o.oci.insecure, AuthFile: o.oci.authFile},
		Handlers: o.handlers, DefaultHandler: o.defaultHandler, BuildsDir: o.buildsDir, Concurrency: o.concurrency,
		CheckInterval: o.checkInterval, UpdateInterval: o.updateInterval, OutputLimit: o.outputLimit, ReportDeadline: o.reportDeadline,
		LoadTimeout: o.loadTimeout, CompiledDir: o.compiledDir, CacheMax: o.cacheMax, Policy: o.policy,
	}
}

// tlsFlags say how GitLab's certificate is checked.
func tlsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "tls-ca-file", Usage: "PEM certificates trusted for GitLab besides the system's (a self-signed GitLab)", EnvVars: []string{"WASMRUNNER_TLS_CA_FILE"}},
		&cli.StringFlag{Name: "tls-cert-file", Usage: "PEM client certificate shown to GitLab (with --tls-key-file)", EnvVars: []string{"WASMRUNNER_TLS_CERT_FILE"}},
		&cli.StringFlag{Name: "tls-key-file", Usage: "PEM key of --tls-cert-file", EnvVars: []string{"WASMRUNNER_TLS_KEY_FILE"}},
	}
}

// tlsFlagOptions reads tlsFlags.
func tlsFlagOptions(c *cli.Context) (gitlab.TLSOptions, error) {
	o := gitlab.TLSOptions{CAFile: c.String("tls-ca-file"), CertFile: c.String("tls-cert-file"), KeyFile: c.String("tls-key-file")}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return o, usageError("--tls-cert-file and --tls-key-file go together")
	}
	return o, nil
}

// commandTransport is the GitLab transport of the commands that are not
// serve, with the TLS flags' certificates.
func commandTransport(c *cli.Context) (http.RoundTripper, error) {
	o, err := tlsFlagOptions(c)
	if err != nil {
		return nil, err
	}
	rt, err := gitlab.NewTransport(gitlab.TransportOptions{TLS: o})
	if err != nil {
		return nil, usageError(err.Error())
	}
	return rt, nil
}
