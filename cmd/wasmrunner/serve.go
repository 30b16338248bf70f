package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
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

Exit codes: 0 after a clean shutdown, 1 on a start-up error, 2 on a usage
error, 3 when a second signal or the shutdown timeout cut jobs short.

Examples:
   wasmrunner serve --url https://gitlab.example.com --token-file /etc/wasmrunner/token --modules ./handlers
   WASMRUNNER_TOKEN=glrt-... wasmrunner serve --url https://gitlab.example.com --modules ./handlers --listen :9252`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Usage: "GitLab URL", EnvVars: []string{"WASMRUNNER_URL"}},
			&cli.StringFlag{Name: "token", Usage: "runner authentication token (glrt-...)", EnvVars: []string{"WASMRUNNER_TOKEN"}},
			&cli.StringFlag{Name: "token-file", Usage: "read the runner token from this file", EnvVars: []string{"WASMRUNNER_TOKEN_FILE"}},
			&cli.StringFlag{Name: "modules", Usage: "directory of handler modules (NAME.wasm + optional NAME.toml)", EnvVars: []string{"WASMRUNNER_MODULES"}},
			&cli.IntFlag{Name: "concurrency", Usage: "most jobs at once (default: number of CPUs)", EnvVars: []string{"WASMRUNNER_CONCURRENCY"}},
			&cli.StringFlag{Name: "builds-dir", Usage: "where job build dirs live (default: under the user cache dir)", EnvVars: []string{"WASMRUNNER_BUILDS_DIR"}},
			&cli.DurationFlag{Name: "check-interval", Value: 3 * time.Second, Usage: "wait between job requests while GitLab has none", EnvVars: []string{"WASMRUNNER_CHECK_INTERVAL"}},
			&cli.StringFlag{Name: "default-handler", Usage: "handler for jobs without an image", EnvVars: []string{"WASMRUNNER_DEFAULT_HANDLER"}},
			&cli.StringFlag{Name: "output-limit", Value: "4MiB", Usage: "most bytes of each job's log", EnvVars: []string{"WASMRUNNER_OUTPUT_LIMIT"}},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "after a signal, how long to wait for jobs before exiting", EnvVars: []string{"WASMRUNNER_SHUTDOWN_TIMEOUT"}},
			&cli.StringFlag{Name: "listen", Usage: "address for /metrics, /healthz and /readyz (e.g. :9252); empty: none", EnvVars: []string{"WASMRUNNER_LISTEN"}},
			&cli.DurationFlag{Name: "reload-interval", Value: 5 * time.Second, Usage: "how often --modules is checked for changes", EnvVars: []string{"WASMRUNNER_RELOAD_INTERVAL"}},
		},
		Action: runServe,
	}
}

// serveOptions are serve's settings after flags, environment and files.
type serveOptions struct {
	url, token, modulesDir, buildsDir, defaultHandler, listen string
	concurrency                                               int
	checkInterval, shutdownTimeout, reloadInterval            time.Duration
	outputLimit                                               int64
	// updateInterval is for tests: 0 leaves the engine's default.
	updateInterval time.Duration
}

func serveOptionsFrom(c *cli.Context) (serveOptions, error) {
	o := serveOptions{
		url: c.String("url"), modulesDir: c.String("modules"),
		buildsDir: c.String("builds-dir"), defaultHandler: c.String("default-handler"), listen: c.String("listen"),
		concurrency: c.Int("concurrency"), checkInterval: c.Duration("check-interval"),
		shutdownTimeout: c.Duration("shutdown-timeout"), reloadInterval: c.Duration("reload-interval"),
	}
	if o.url == "" {
		return o, usageError("--url (or WASMRUNNER_URL) is required")
	}
	token, err := tokenFrom(c.String("token"), c.String("token-file"))
	if err != nil {
		return o, err
	}
	o.token = token
	if o.modulesDir == "" {
		return o, usageError("--modules (or WASMRUNNER_MODULES) is required")
	}
	n, err := units.ParseSize(c.String("output-limit"))
	if err != nil || n <= 0 {
		return o, usageError(fmt.Sprintf("invalid --output-limit %q", c.String("output-limit")))
	}
	o.outputLimit = n
	if o.concurrency <= 0 {
		o.concurrency = runtime.NumCPU()
	}
	if o.buildsDir == "" {
		o.buildsDir = filepath.Join(cacheDir(), "builds")
	}
	return o, nil
}

func usageError(msg string) error { return cli.Exit(msg, exitUsage) }

// cacheDir is wasmrunner's directory under the user cache dir.
func cacheDir() string {
	d, err := os.UserCacheDir()
	if err != nil {
		d = os.TempDir()
	}
	return filepath.Join(d, "wasmrunner")
}

func runServe(c *cli.Context) error {
	o, err := serveOptionsFrom(c)
	if err != nil {
		return err
	}
	logger, err := loggerFor(c)
	if err != nil {
		return err
	}
	// Signals arrive here; the context main gives is only a fallback.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	return serve(c.Context, o, logger, sigs)
}

// serve runs one runner until a signal (or ctx) stops it.
func serve(ctx context.Context, o serveOptions, logger *slog.Logger, sigs <-chan os.Signal) error {
	m := newMetrics(o.concurrency)
	hc := &http.Client{Transport: countingTransport{next: http.DefaultTransport, m: m}}
	client, err := gitlab.New(o.url, gitlab.WithHTTPClient(hc), gitlab.WithLogger(logger),
		gitlab.WithUserAgent(fmt.Sprintf("wasmrunner %s (%s; %s/%s)", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)))
	if err != nil {
		return cli.Exit(err.Error(), exitUsage)
	}
	systemID, err := gitlab.SystemID(gitlab.DefaultMachineIDFile, filepath.Join(cacheDir(), ".runner_system_id"))
	if err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	reg, err := modules.Open(bg, modules.Config{
		Dir: o.modulesDir, CacheDir: filepath.Join(cacheDir(), "compiled"), DefaultHandler: o.defaultHandler,
		MaxInstances: 2 * o.concurrency, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer reg.Close(bg)
	logHandlers(logger, reg)

	runner, err := engine.New(engine.Config{
		Client: client, Token: o.token, SystemID: systemID,
		Info:    gitlab.RunnerMeta{Name: "wasmrunner", Version: version, Executor: "wasm", Features: gitlab.DefaultFeatures()},
		Handler: reg.Factory(), BuildsDir: o.buildsDir, Concurrency: o.concurrency,
		CheckInterval: o.checkInterval, OutputLimit: o.outputLimit, Logger: logger, Observer: m,
		UpdateInterval: o.updateInterval, MaxUpdateInterval: o.updateInterval,
	})
	if err != nil {
		return err
	}

	watchCtx, stopWatch := context.WithCancel(bg)
	defer stopWatch()
	go reg.Watch(watchCtx, o.reloadInterval)

	var ready atomic.Bool
	if o.listen != "" {
		srv, addr, err := startHTTP(o.listen, m, &ready, logger)
		if err != nil {
			return err
		}
		defer srv.Close()
		logger.Info("metrics and health endpoints listening", "addr", addr)
	}

	done := make(chan error, 1)
	go func() { done <- runner.Run(bg) }()
	ready.Store(true)
	logger.Info("wasmrunner serving", "url", client.BaseURL(), "system_id", systemID,
		"concurrency", o.concurrency, "builds_dir", o.buildsDir, "modules", o.modulesDir)

	var force <-chan time.Time
	stopping := false
	for {
		select {
		case err := <-done:
			logger.Info("wasmrunner stopped")
			return err
		case <-ctx.Done():
			if !stopping {
				logger.Warn("context ended: aborting running jobs")
				stopping = true
				ready.Store(false)
				runner.Abort()
				force = time.After(o.shutdownTimeout)
			}
		case sig := <-sigs:
			if stopping {
				logger.Error("second signal: exiting without waiting for jobs", "signal", sig.String(), "running", runner.Running())
				return cli.Exit("", exitForced)
			}
			stopping = true
			ready.Store(false)
			force = time.After(o.shutdownTimeout)
			if sig == syscall.SIGQUIT {
				logger.Info("SIGQUIT: finishing running jobs, taking no new ones", "running", runner.Running())
				runner.Drain()
			} else {
				logger.Info("aborting running jobs", "signal", sig.String(), "running", runner.Running())
				runner.Abort()
			}
		case <-force:
			logger.Error("shutdown timeout: exiting without waiting for jobs", "timeout", o.shutdownTimeout, "running", runner.Running())
			return cli.Exit("", exitForced)
		}
	}
}

func logHandlers(logger *slog.Logger, reg *modules.Registry) {
	var names []string
	for _, mi := range reg.Modules() {
		names = append(names, fmt.Sprintf("%s(memory=%s)", mi.Name, units.FormatSize(int64(mi.Manifest.Limits.Memory))))
	}
	logger.Info("handlers loaded", "handlers", strings.Join(names, " "), "broken", len(reg.Problems()))
	for name, err := range reg.Problems() {
		logger.Error("handler skipped", "module", name, "error", err)
	}
}

// startHTTP serves /metrics, /healthz and /readyz.
func startHTTP(addr string, m *metrics, ready *atomic.Bool, logger *slog.Logger) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("--listen: %w", err)
	}
	mux := http.NewServeMux()
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
