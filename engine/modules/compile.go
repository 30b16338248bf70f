package modules

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

// Compiling a module. wazero's optimizing compiler needs memory that grows
// with the module, and faster than linearly with the size of its largest
// function. Measured (wazero v1.12, Go 1.26, amd64, 2 cores): peak
// resident memory of the compiler child (RunCompiler, non-race build),
// whose runtime alone takes 14.4 MB, and the size of the compiled code it
// writes to the cache:
//
//	module                                     size     peak RSS  over 14.4 MB  per MB   time    cached
//	C guest (testdata/guests/cmd.wasm)         0.04 MB   24 MB       10 MB       -      0.07 s  0.17 MB
//	Rust shell (examples/modules/shell.wasm)   0.19 MB   24 MB       10 MB     ~50 MB*  0.11 s  0.73 MB
//	Go reactor (examples/go-handler/labsubmit) 3.9 MB    91 MB       77 MB     ~20 MB   1.4 s   15.2 MB
//
// (* fixed costs dominate small modules.) Generated modules, compiled in
// process: 300 functions of 10 KB (3 MB) need 18 MB; one function of
// 1.1 MB 293 MB (1.3 s), of 2.3 MB 658 MB (4 s, ~290 MB per MB); one
// branchy 1 MB function 719 MB and 62 s. So real toolchains' output costs
// ~20 MB per MB and the compiled code ~4x the module on disk, but a
// hostile module hundreds of times its size: the registry compiles in a
// child process (Config.Compiler) held to resource.CompileLimits (memory
// and time; the child dies, not the runner), one at a time
// (resource.Process.Compiles). The child writes the compiled code to the
// version's cache directory; the registry then loads it from there with
// CompileModule, which is a cache hit: entryPath names the file wazero
// looks for, and the registry refuses rather than compile in-process when
// it is not there.

// CompilerCommand is the hidden subcommand that runs [RunCompiler]: a
// program that sets Config.Compiler to itself with this argument must
// call RunCompiler when started with it (before anything else).
const CompilerCommand = "__compile"

// SelfCompiler returns the Config.Compiler that re-runs this executable
// as the compiler child: its main must dispatch [CompilerCommand] to
// [RunCompiler]. On Linux the executable is /proc/self/exe (the running
// program even if its file was replaced since), so the command must be
// run directly, not through another program.
func SelfCompiler() ([]string, error) {
	exe, err := selfExecutable()
	if err != nil {
		return nil, err
	}
	return []string{exe, CompilerCommand}, nil
}

// runtimeConfig is the wazero configuration of a module's runtime. The
// compiler child builds the same: the memory limit decides what decodes.
// wazero's own interruption (close-on-context-done, an exit to Go at every
// loop iteration) is off: an interruptible module's bytes carry cheaper
// checks, on loops and function entries (wasmbin.Interruptible), which call
// interruptCheck.
// runtimePages is wazero's memory page limit of every runtime: the most a
// 32-bit guest can address. The handler's limits.memory is enforced by the
// instance's memory pool instead (memory.go), which can say in the job log
// that it refused a growth; wazero would refuse it silently.
const runtimePages = 65536

func runtimeConfig(memoryPages uint32) wazero.RuntimeConfig {
	return wazero.NewRuntimeConfigCompiler().
		WithMemoryLimitPages(memoryPages).
		WithCloseOnContextDone(false)
}

// warmWazero makes wazero cache its version string once, before
// registries loading at once create runtimes and caches: wazero v1.12
// caches it in a variable without synchronization (a data race the first
// time two goroutines create one).
var warmWazero = sync.OnceFunc(func() {
	ctx := context.Background()
	wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler()).Close(ctx)
})

// loadError is why a module did not load. Error tells the operator (the
// log, Problems, modules check) everything; public is a short reason for
// the jobs routed to the module, quoting nothing of the dir's files but
// names and numbers.
type loadError struct {
	err    error
	public string
	// transient: not this version's fault (loading was cancelled or cut
	// short); it is tried again at the next reload.
	transient bool
	// code is its Problem's code; "": by what err is (see problemsOf).
	code string
}

func (e *loadError) Error() string { return e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// publicReason is what a job routed to a module that failed with err may
// be told.
func publicReason(err error) string {
	var le *loadError
	if errors.As(err, &le) && le.public != "" {
		return le.public
	}
	var fe *fileError
	if errors.As(err, &fe) {
		return fe.msg
	}
	return "see the runner's log or `wasmrunner modules check`"
}

// isTransient reports whether a load failed for a reason that is not the
// module's.
func isTransient(err error) bool {
	var le *loadError
	return errors.As(err, &le) && le.transient
}

// compiled is a compiled module with its runtime.
type compiled struct {
	rt       wazero.Runtime
	mod      wazero.CompiledModule
	cache    wazero.CompilationCache // the version's, or nil
	lock     *os.File                // the version's cache lock, shared; or nil
	version  string                  // the cache directory's name, or ""
	dur      time.Duration
	childRSS int64 // the compiler child's peak resident memory; 0: no child ran
	cached   bool  // loaded from the cache: no compiler ran
}

func (c *compiled) close(ctx context.Context) {
	if c.rt != nil {
		c.rt.Close(ctx)
	}
	if c.cache != nil {
		c.cache.Close(ctx)
	}
	if c.lock != nil {
		c.lock.Close()
	}
}

// compile compiles bin (checked by wasmbin) for a module of limits: in the
// compiler child when the registry has one, else in this process; one
// compilation at a time either way. With a cache, a version compiled
// before is loaded from it without compiling.
func (r *Registry) compile(ctx context.Context, bin []byte, limits resource.Limits, version string) (_ *compiled, err error) {
	warmWazero()
	interrupt := limits.CPU != resource.CPUUninterrupted
	rc := runtimeConfig(runtimePages)
	start := time.Now()
	c := &compiled{}
	defer func() {
		if err != nil {
			c.close(ctx)
		}
	}()
	if r.cacheRoot == "" {
		if err := r.acquireCompile(ctx); err != nil {
			return nil, err
		}
		defer r.proc.Compiles.Release()
		c.rt = wazero.NewRuntimeWithConfig(ctx, rc)
		if c.mod, err = c.rt.CompileModule(ctx, bin); err != nil {
			return nil, invalidModule(err)
		}
		c.dur = time.Since(start)
		return c, nil
	}

	c.version = version
	dir := filepath.Join(r.cacheRoot, c.version)
	if c.lock, err = lockVersion(ctx, dir); err != nil {
		return nil, &loadError{err: fmt.Errorf("compilation cache: %w", err), public: "the runner's compilation cache failed", transient: ctx.Err() != nil}
	}
	entry := entryPath(dir, bin)
	before, cached := cachedEntry(entry)
	c.cached = cached
	if c.cache, err = wazero.NewCompilationCacheWithDir(dir); err != nil {
		return nil, &loadError{err: fmt.Errorf("compilation cache: %w", err), public: "the runner's compilation cache failed"}
	}
	c.rt = wazero.NewRuntimeWithConfig(ctx, rc.WithCompilationCache(c.cache))
	if !cached && r.compiler == nil {
		// Library use: compile here, into the cache.
		if err := r.acquireCompile(ctx); err != nil {
			return nil, err
		}
		defer r.proc.Compiles.Release()
		if c.mod, err = c.rt.CompileModule(ctx, bin); err != nil {
			return nil, invalidModule(err)
		}
		c.dur = time.Since(start)
		return c, nil
	}
	if !cached {
		if err := r.acquireCompile(ctx); err != nil {
			return nil, err
		}
		c.childRSS, err = r.runCompiler(ctx, dir, bin, runtimePages, interrupt)
		r.proc.Compiles.Release()
		if err != nil {
			return nil, err
		}
		if before, cached = cachedEntry(entry); !cached {
			return nil, &loadError{err: fmt.Errorf("the compiler child wrote no compiled module at %s", entry), public: "the runner's compiler failed"}
		}
	}
	// A cache hit: wazero decodes and validates bin, and maps the compiled
	// code from entry.
	if c.mod, err = c.rt.CompileModule(ctx, bin); err != nil {
		return nil, invalidModule(err)
	}
	if after, ok := cachedEntry(entry); !ok || after != before {
		// wazero compiled it again: entryPath no longer matches wazero's key.
		return nil, &loadError{err: fmt.Errorf("loading %s from the compilation cache compiled it in this process instead (wazero's cache key changed?)", entry), public: "the runner's compiler failed"}
	}
	c.dur = time.Since(start)
	return c, nil
}

func invalidModule(err error) error {
	return &loadError{err: fmt.Errorf("%w: %v", ErrInvalidModule, err),
		public: "it is not a valid WebAssembly module (`wasmrunner modules check` says why)"}
}

// acquireCompile waits for the process's compilation slot.
func (r *Registry) acquireCompile(ctx context.Context) error {
	if err := r.proc.Compiles.Acquire(ctx); err != nil {
		return &loadError{err: err, public: "it was still waiting for the compiler; it is loaded at a later reload", transient: true}
	}
	return nil
}

// runCompiler compiles bin into the cache directory dir in the compiler
// child, held to the process's compile limits. It returns the child's peak
// resident memory.
func (r *Registry) runCompiler(ctx context.Context, dir string, bin []byte, pages uint32, interrupt bool) (int64, error) {
	lim := r.proc.Compile
	cctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	args := append(slices.Clone(r.compiler[1:]),
		"-cache", dir,
		"-memory-pages", strconv.FormatUint(uint64(pages), 10),
		"-cpu", cpuPolicyName(interrupt),
		"-memory", strconv.FormatInt(lim.Memory, 10),
		"-max-output", strconv.FormatInt(r.cacheMax, 10),
		"-size", strconv.Itoa(len(bin)),
		"-wazero", wazeroVersion(),
	)
	cmd := exec.CommandContext(cctx, r.compiler[0], args...)
	cmd.Stdin = bytes.NewReader(bin)
	stdout, stderr := &headBuffer{max: 4096}, &headBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.Env = compilerEnv()
	cmd.WaitDelay = 5 * time.Second
	limitChild(cmd)
	runErr := cmd.Run()
	out := strings.TrimSpace(stdout.String())
	var rss int64
	if peak, ok := strings.CutPrefix(out, "ok "); ok {
		rss, _ = strconv.ParseInt(peak, 10, 64)
		out = "ok"
	}
	errOut := strings.TrimSpace(stderr.String())
	memory := fmt.Sprintf("compiling needs more than %s of memory", units.FormatSize(lim.Memory))
	switch {
	case ctx.Err() != nil:
		return rss, &loadError{err: fmt.Errorf("compiling was cut short: %w", context.Cause(ctx)), public: "loading it was cut short; it is loaded at a later reload", transient: true}
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		msg := fmt.Sprintf("compiling took longer than %s", shortDuration(lim.Timeout))
		return rss, &loadError{err: errors.New(msg), public: msg, code: CodeCompile}
	case runErr == nil && out == "ok":
		return rss, nil
	}
	reason, isError := strings.CutPrefix(firstLine(out), "error: ")
	switch {
	case outOfMemory(errOut) || outOfMemory(reason):
		return rss, &loadError{err: errors.New(memory), public: memory, code: CodeCompile}
	case strings.Contains(reason, "file too large"):
		msg := fmt.Sprintf("its compiled code is larger than the compilation cache's limit of %s", units.FormatSize(r.cacheMax))
		return rss, &loadError{err: errors.New(msg), public: msg, code: CodeCompile}
	case isError && cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == exitCompileError:
		return rss, invalidModule(errors.New(reason))
	}
	if ws, ok := processStatus(cmd); ok && ws.Signaled() {
		msg := fmt.Sprintf("the compiler was killed by %v", ws.Signal())
		if ws.Signal() == syscall.SIGKILL {
			msg += " (out of memory?)"
		}
		return rss, &loadError{err: errors.New(msg), public: msg, code: CodeCompile}
	}
	detail := firstLine(errOut)
	if detail == "" {
		detail = firstLine(out)
	}
	return rss, &loadError{err: fmt.Errorf("the compiler failed (%v): %s", runErr, detail), public: "the runner's compiler failed"}
}

// compilerEnv is the compiler child's environment: the Go runtime's
// settings only (not the runner's, which may hold its token), and no
// traceback, so that a child out of memory says so in one line.
func compilerEnv() []string {
	env := []string{"GOTRACEBACK=none"}
	for _, k := range []string{"GODEBUG", "GOMAXPROCS", "GORACE", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func processStatus(cmd *exec.Cmd) (syscall.WaitStatus, bool) {
	if cmd.ProcessState == nil {
		return 0, false
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws, ok
}

// outOfMemory reports whether a child's output says it ran out of memory:
// the Go runtime's "fatal error: out of memory", a failed mmap or thread,
// the race detector's "failed to allocate".
func outOfMemory(s string) bool {
	for _, m := range []string{"out of memory", "cannot allocate memory", "failed to create new OS thread", "failed to allocate"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// shortDuration formats whole seconds as "60s", others as Go does.
func shortDuration(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return d.String()
}

// headBuffer keeps the first max bytes written to it and discards the
// rest (so a child that writes much neither blocks nor grows the parent).
type headBuffer struct {
	max int
	buf bytes.Buffer
}

func (b *headBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *headBuffer) String() string { return b.buf.String() }

// Exit codes of RunCompiler.
const (
	exitCompileOK    = 0
	exitCompileError = 1 // the module does not compile; stdout says why
	exitCompileUsage = 3 // (2 is the Go runtime's fatal errors)
)

// RunCompiler is the compiler child: started as `PROGRAM __compile FLAGS`
// with the module's bytes on stdin, it limits its own memory (address
// space and Go heap) and output file size, compiles the module with the
// runtime configuration its parent uses into the cache directory, and
// exits 0 after printing "ok PEAK" (its peak resident memory in bytes, 0
// if unknown), or 1 after printing "error: REASON" (one line). Running
// out of memory ends it with the Go runtime's "fatal error: out of
// memory" on stderr; its parent kills it at the time limit. It returns
// the exit code.
func RunCompiler(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(CompilerCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cacheDir := fs.String("cache", "", "the version's compilation cache directory")
	pages := fs.Uint("memory-pages", 0, "the module's memory limit in 64 KiB pages")
	cpu := fs.String("cpu", "interrupt", "the module's CPU policy: interrupt or uninterrupted")
	budget := fs.Int64("memory", resource.DefaultCompileMemory, "the most memory compiling may use")
	maxOutput := fs.Int64("max-output", DefaultCacheMaxBytes, "the most bytes of the compiled module's file")
	size := fs.Int64("size", -1, "the module's size in bytes, read from stdin")
	wz := fs.String("wazero", "", "the parent's wazero version")
	if err := fs.Parse(args); err != nil {
		return exitCompileUsage
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stdout, "error: %s\n", strings.ReplaceAll(fmt.Sprintf(format, a...), "\n", "; "))
		return exitCompileError
	}
	switch {
	case *cacheDir == "" || *size < 0 || *pages == 0 || *pages > 65536 || (*cpu != "interrupt" && *cpu != "uninterrupted"):
		fmt.Fprintln(stderr, "usage: __compile -cache DIR -memory-pages N -cpu interrupt|uninterrupted -size BYTES [-memory BYTES] [-max-output BYTES] < module.wasm")
		return exitCompileUsage
	case *wz != wazeroVersion():
		return fail("the compiler has wazero %s, its parent %s", wazeroVersion(), *wz)
	}
	if err := limitSelf(*budget, *maxOutput); err != nil {
		return fail("limiting the compiler: %v", err)
	}
	bin := make([]byte, *size)
	if _, err := io.ReadFull(stdin, bin); err != nil {
		return fail("reading the module: %v", err)
	}
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(*cacheDir)
	if err != nil {
		return fail("compilation cache: %v", err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, runtimeConfig(uint32(*pages)).WithCompilationCache(cache))
	if _, err := rt.CompileModule(ctx, bin); err != nil {
		return fail("%v", err)
	}
	fmt.Fprintln(stdout, "ok", peakRSS())
	return exitCompileOK
}
