package handlertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// Runner is an engine running one handler (or a modules dir) against a
// fake GitLab, until the test that made it ends. Its methods are safe for
// concurrent use.
type Runner struct {
	image string // the default image of jobs
	srv   *gitlabtest.Server
	reg   *modules.Registry
	eng   *engine.Runner

	closeOnce sync.Once
	cleanups  []func() error // in the order to undo them backwards
}

// Option changes how a Runner is set up.
type Option func(*config)

type config struct {
	name      string
	manifest  *string
	policy    *resource.Policy
	cacheDir  *string
	configure []func(*modules.Config, *engine.Config)
	lenient   bool // modules that fail to load are no error
}

// Name sets the handler's name, which is the image of the jobs that run
// it; default the file's name without ".wasm" ([Load]) or "handler"
// ([New]). With [LoadDir] it is the image of jobs that name none.
func Name(name string) Option { return func(c *config) { c.name = name } }

// Manifest sets the handler's manifest (the TOML of NAME.toml, see the
// README's "Handler manifests"), replacing the one beside the file that
// [Load] would use. "" runs the handler without a manifest.
func Manifest(toml string) Option { return func(c *config) { c.manifest = &toml } }

// Policy sets the operator's policy, the ceiling over the manifest (the
// config file's [policy]); default none, as in `wasmrunner serve` without
// one.
func Policy(p *resource.Policy) Option { return func(c *config) { c.policy = p } }

// CacheDir sets the directory keeping compiled modules; "" compiles
// every Runner's modules anew. The default is shared by the test
// processes of the user: wasmrunner/handlertest under [os.UserCacheDir].
func CacheDir(dir string) Option { return func(c *config) { c.cacheDir = &dir } }

// Configure edits the registry's and the engine's configurations after
// the kit's defaults are set and before they are used: the escape hatch
// for what the other options do not cover (concurrency, output limit,
// stop timings through Process, loggers...).
func Configure(fn func(*modules.Config, *engine.Config)) Option {
	return func(c *config) { c.configure = append(c.configure, fn) }
}

// New runs the handler wasm (a module's bytes) until the test ends.
func New(t testing.TB, wasm []byte, opts ...Option) *Runner {
	t.Helper()
	cfg := options(opts)
	if cfg.name == "" {
		cfg.name = "handler"
	}
	return mustStart(t, cfg, func(dir string) (string, error) { return writeModule(dir, cfg, wasm) })
}

// Load runs the handler in the file path (NAME.wasm) until the test ends,
// with the manifest NAME.toml beside it if there is one (see [Manifest]).
// When the file is missing the test is skipped (the handler is not
// built), or failed if the environment variable CI is set.
func Load(t testing.TB, path string, opts ...Option) *Runner {
	t.Helper()
	cfg := options(opts)
	wasm, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if os.Getenv("CI") != "" {
			t.Fatalf("handlertest: %s is missing: build the handler before the tests", path)
		}
		t.Skipf("handlertest: %s is missing: build the handler first (with CI set, this fails)", path)
	}
	if err != nil {
		t.Fatalf("handlertest: %v", err)
	}
	if cfg.name == "" {
		cfg.name = strings.TrimSuffix(filepath.Base(path), ".wasm")
	}
	if cfg.manifest == nil {
		b, err := os.ReadFile(strings.TrimSuffix(path, ".wasm") + ".toml")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("handlertest: %v", err)
		}
		m := string(b)
		cfg.manifest = &m
	}
	return mustStart(t, cfg, func(dir string) (string, error) { return writeModule(dir, cfg, wasm) })
}

// LoadDir runs the handlers of a modules dir (each NAME.wasm with its
// NAME.toml), as `wasmrunner serve --modules dir` does, until the test
// ends: jobs choose one by their Image. Unlike [New] and [Load] it does
// not fail when a module does not load: see Registry().Problems().
func LoadDir(t testing.TB, dir string, opts ...Option) *Runner {
	t.Helper()
	cfg := options(opts)
	if cfg.manifest != nil {
		t.Fatal("handlertest: LoadDir takes the manifests of the dir, not Manifest")
	}
	cfg.lenient = true
	return mustStart(t, cfg, func(string) (string, error) { return dir, nil })
}

// Open runs the handler wasm like [New], outside a test (in TestMain, to
// share one Runner between a package's tests, or in an example): Close
// stops it. The operator log is discarded unless [Configure] sets a
// logger.
func Open(ctx context.Context, wasm []byte, opts ...Option) (*Runner, error) {
	cfg := options(opts)
	if cfg.name == "" {
		cfg.name = "handler"
	}
	return start(ctx, cfg, nil, func(dir string) (string, error) { return writeModule(dir, cfg, wasm) })
}

// Close stops the engine (jobs still running are cancelled), the
// registry and the fake GitLab, and removes the Runner's temporary files.
// A Runner made with New, Load or LoadDir is closed when its test ends.
func (r *Runner) Close() error {
	var err error
	r.closeOnce.Do(func() { err = r.close() })
	return err
}

func options(opts []Option) *config {
	cfg := &config{}
	for _, o := range opts {
		o(cfg)
	}
	return cfg
}

// mustStart is start for a test: the operator log goes to the test's log,
// and the Runner is closed when the test ends.
func mustStart(t testing.TB, cfg *config, modulesDir func(tmp string) (string, error)) *Runner {
	t.Helper()
	r, err := start(context.Background(), cfg, logWriter{t}, modulesDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("handlertest: %v", err)
		}
	})
	return r
}

// writeModule writes NAME.wasm and its manifest into dir.
func writeModule(dir string, cfg *config, wasm []byte) (string, error) {
	if err := os.WriteFile(filepath.Join(dir, cfg.name+".wasm"), wasm, 0o644); err != nil {
		return "", err
	}
	if cfg.manifest != nil && *cfg.manifest != "" {
		if err := os.WriteFile(filepath.Join(dir, cfg.name+".toml"), []byte(*cfg.manifest), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// defaultCacheDir is the compilation cache Runners share by default, or
// "" when there is no user cache dir.
func defaultCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	dir := filepath.Join(base, "wasmrunner", "handlertest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ""
	}
	return dir
}

// The kit's engine settings: short intervals, so that jobs start and
// traces arrive within milliseconds; the production stop timings, but
// abandoning a handler that does not return after 5 s.
const (
	concurrency   = 4
	checkInterval = 20 * time.Millisecond
	abandonAfter  = 5 * time.Second
)

// start runs an engine with the modules of the dir modulesDir returns
// (given a temporary dir it may write to) against a new fake GitLab.
// The operator log goes to log (nil: nowhere).
func start(ctx context.Context, cfg *config, log io.Writer, modulesDir func(tmp string) (string, error)) (_ *Runner, err error) {
	r := &Runner{image: cfg.name}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	tmp, err := os.MkdirTemp("", "handlertest-")
	if err != nil {
		return nil, fmt.Errorf("handlertest: %w", err)
	}
	r.cleanups = append(r.cleanups, func() error { return os.RemoveAll(tmp) })
	modDir, buildsDir := filepath.Join(tmp, "modules"), filepath.Join(tmp, "builds")
	for _, d := range []string{modDir, buildsDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("handlertest: %w", err)
		}
	}
	dir, err := modulesDir(modDir)
	if err != nil {
		return nil, fmt.Errorf("handlertest: %w", err)
	}

	logger := slog.New(slog.DiscardHandler)
	if log != nil {
		logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	r.srv = gitlabtest.NewServer()
	r.cleanups = append(r.cleanups, func() error { r.srv.Close(); return nil })
	client, err := gitlab.New(r.srv.URL, gitlab.WithRetryPolicy(gitlab.RetryPolicy{
		MaxAttempts: 5, MaxElapsed: 10 * time.Second, InitialInterval: time.Millisecond,
		MaxInterval: 20 * time.Millisecond, AttemptTimeout: 10 * time.Second,
	}))
	if err != nil {
		return nil, fmt.Errorf("handlertest: %w", err)
	}
	mcfg := modules.Config{Dir: dir, Logger: logger, Policy: cfg.policy, DefaultHandler: cfg.name}
	if cfg.cacheDir != nil {
		mcfg.CacheDir = *cfg.cacheDir
	} else {
		mcfg.CacheDir = defaultCacheDir()
	}
	ecfg := engine.Config{
		Client: client, Token: r.srv.RunnerToken, BuildsDir: buildsDir, Concurrency: concurrency,
		CheckInterval: checkInterval, UpdateInterval: checkInterval,
		MaxUpdateInterval: 50 * time.Millisecond, KeepAlive: 50 * time.Millisecond, Logger: logger,
	}
	for _, fn := range cfg.configure {
		fn(&mcfg, &ecfg)
	}
	// One process's budgets for both, unless configured.
	if ecfg.Process == nil {
		ecfg.Process = resource.NewProcess(resource.ProcessConfig{
			Jobs: ecfg.Concurrency, Stop: resource.Stop{Abandon: abandonAfter},
		})
	}
	if mcfg.Process == nil {
		mcfg.Process = ecfg.Process
	}
	r.reg, err = modules.Open(ctx, mcfg)
	if err != nil {
		return nil, fmt.Errorf("handlertest: %w", err)
	}
	r.cleanups = append(r.cleanups, func() error { return r.reg.Close(context.Background()) })
	if p := r.reg.Problems(); !cfg.lenient && len(p) > 0 {
		var errs []error
		for _, name := range slices.Sorted(maps.Keys(p)) {
			errs = append(errs, fmt.Errorf("handlertest: %s does not load: %w", name, p[name]))
		}
		return nil, errors.Join(errs...)
	}
	ecfg.Handler = r.reg.Factory()
	r.eng, err = engine.New(ecfg)
	if err != nil {
		return nil, fmt.Errorf("handlertest: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- r.eng.Run(context.Background()) }()
	r.cleanups = append(r.cleanups, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := r.eng.Shutdown(sctx)
		<-done
		if err != nil {
			return fmt.Errorf("handlertest: shutdown: %w", err)
		}
		return nil
	})
	return r, nil
}

// close runs the cleanups in reverse order.
func (r *Runner) close() error {
	var errs []error
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		errs = append(errs, r.cleanups[i]())
	}
	r.cleanups = nil
	return errors.Join(errs...)
}

// Server returns the fake GitLab, for what Job does not cover: faults,
// several runners, other jobs.
func (r *Runner) Server() *gitlabtest.Server { return r.srv }

// Registry returns the modules registry (loaded modules, their limits and
// problems).
func (r *Runner) Registry() *modules.Registry { return r.reg }

// Engine returns the engine (jobs running, shutdown).
func (r *Runner) Engine() *engine.Runner { return r.eng }

// logWriter sends the operator log to the test's log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
