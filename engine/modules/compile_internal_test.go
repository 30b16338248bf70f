package modules

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/internal/wasmbin"
)

// realGuests are built guests of the repository that load through the
// compiler child; missing ones are skipped.
var realGuests = map[string]string{
	"probe":     "../../testdata/guests/probe.wasm",
	"cmd":       "../../testdata/guests/cmd.wasm",
	"shell":     "../../examples/modules/shell.wasm",
	"labsubmit": "../../examples/go-handler/labsubmit.wasm",
}

// TestCompileInChild: the guests compile in the compiler child and load
// from the cache dir (a cache hit: the parent compiles nothing); a second
// registry on the same cache loads them without any child.
func TestCompileInChild(t *testing.T) {
	mods := map[string][]byte{"gen": handlerModule(3, -1, "gen")}
	for name, path := range realGuests {
		if name == "labsubmit" && raceEnabled {
			continue // 16 s in a child built with -race (1.4 s without)
		}
		if bin, err := os.ReadFile(path); err == nil {
			mods[name] = bin
		} else {
			t.Logf("%s: %v (skipped)", name, err)
		}
	}
	dir := writeModules(t, mods)
	cfg := childConfig(t, dir, resource.CompileLimits{})
	var log logBuffer
	cfg.Logger = log.logger()
	r := openTimed(t, cfg, 2*time.Minute)
	if p := r.Problems(); len(p) > 0 {
		t.Fatalf("problems: %v", p)
	}
	entries := map[string]fileID{}
	for name, m := range r.modules {
		if m.compileRSS <= 0 || m.fromCache {
			t.Errorf("%s: compiled by a child %v (peak %d bytes), from the cache %v", name, m.compileRSS > 0, m.compileRSS, m.fromCache)
		}
		entry := entryPath(filepath.Join(cfg.CacheDir, m.version), compiledBytes(t, m, mods[name]))
		id, ok := cachedEntry(entry)
		if !ok {
			t.Errorf("%s: no compiled module at %s", name, entry)
		}
		entries[name] = id
		t.Logf("%s: %d bytes, compiled in %v, child peak RSS %.1f MB", name, m.size, m.compileDur.Round(time.Millisecond), float64(m.compileRSS)/1e6)
	}
	// The generated module runs from the compiled code the child wrote.
	ctx := context.Background()
	gen := r.modules["gen"]
	if gen.tableBytes != 3*8 || gen.tablesCapped != 1 {
		t.Errorf("tableBytes %d, %d tables capped; want 24 and 1 (a table capped at its minimum)", gen.tableBytes, gen.tablesCapped)
	}
	inst, err := gen.runtime.InstantiateModule(ctx, gen.compiled, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := inst.ExportedFunction("wasmrunner_step").Call(ctx, 0); err != nil || res[0] != 0 {
		t.Errorf("step: %v %v", res, err)
	}
	inst.Close(ctx)

	// A new process would find them all in the cache.
	cfg2 := cfg
	cfg2.Process = resource.NewProcess(resource.ProcessConfig{})
	r2 := openTimed(t, cfg2, time.Minute)
	for name, m := range r2.modules {
		if !m.fromCache || m.compileRSS != 0 {
			t.Errorf("%s: not loaded from the cache (child peak %d)", name, m.compileRSS)
		}
	}
	if len(r2.modules) != len(mods) {
		t.Errorf("second registry: %v", r2.Problems())
	}
	for name := range mods {
		m := r.modules[name]
		id, _ := cachedEntry(entryPath(filepath.Join(cfg.CacheDir, m.version), compiledBytes(t, m, mods[name])))
		if id != entries[name] {
			t.Errorf("%s: the compiled module was written again", name)
		}
	}
	if !strings.Contains(log.String(), "compile_memory=") {
		t.Errorf("the log does not say what compiling took:\n%s", log.String())
	}
}

// mustCheck is bin as the registry compiles it.
// compiledBytes is what the registry compiled of bin for m: what Check
// returned, rewritten by wasmbin.Snapshottable for a module that starts
// from a snapshot.
func compiledBytes(t *testing.T, m *module, bin []byte) []byte {
	t.Helper()
	out, info, err := wasmbin.Check(bin, wasmbin.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if m.limits.CPU != resource.CPUUninterrupted {
		if out, err = wasmbin.Interruptible(out); err != nil {
			t.Fatal(err)
		}
	}
	if m.start == nil {
		return out
	}
	if out, _, err = wasmbin.Snapshottable(out, info, globalExportPrefix); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompileMemoryBudget: a module that needs more memory to compile
// than the budget is refused with that reason; the process and the other
// modules are fine.
func TestCompileMemoryBudget(t *testing.T) {
	if raceEnabled {
		// The compiler child is this test binary; the race detector's
		// runtime cannot start under an address-space limit at all.
		// scripts/test runs the compile tests without -race as well.
		t.Skip("the race detector cannot run under RLIMIT_AS")
	}
	hog := memoryHog(2_000_000)
	dir := writeModules(t, map[string][]byte{"hog": hog, "good": handlerModule(-1, -1, "good")})
	cfg := childConfig(t, dir, resource.CompileLimits{Memory: 300 << 20})
	start := time.Now()
	r := openTimed(t, cfg, time.Minute)
	t.Logf("%d-byte module refused after %v", len(hog), time.Since(start).Round(time.Millisecond))
	const want = "compiling needs more than 300MiB of memory"
	if p := r.Problems()["hog"]; p == nil || p.Error() != want {
		t.Errorf("problem: %v; want %q", p, want)
	}
	if _, err := r.route("hog"); err == nil || !strings.Contains(err.Error(), "hog.wasm failed to load: "+want) {
		t.Errorf("job error: %v", err)
	}
	if r.modules["good"] == nil {
		t.Errorf("good: %v", r.Problems())
	}
	// The refused version left nothing in the cache.
	vs, _ := scanCache(cfg.CacheDir)
	if len(vs) != 1 {
		t.Errorf("cache versions: %+v", vs)
	}
}

// TestCompileTimeout: a module that takes longer to compile than the time
// limit is refused with that reason, and Open returns after it.
func TestCompileTimeout(t *testing.T) {
	dir := writeModules(t, map[string][]byte{"slow": slowToCompile(1 << 20), "good": handlerModule(-1, -1, "good")})
	// The good module compiles in well under 5s (1s in a child built
	// with -race); the slow one would take a minute.
	cfg := childConfig(t, dir, resource.CompileLimits{Timeout: 5 * time.Second})
	r := openTimed(t, cfg, 20*time.Second)
	const want = "compiling took longer than 5s"
	if p := r.Problems()["slow"]; p == nil || p.Error() != want {
		t.Errorf("problem: %v; want %q", p, want)
	}
	if r.modules["good"] == nil {
		t.Errorf("good: %v", r.Problems())
	}
}

// TestOpenDeadline: modules not loaded when Open's context ends (here:
// waiting for the one compilation slot) are left for the next reload,
// which loads them.
func TestOpenDeadline(t *testing.T) {
	dir := writeModules(t, map[string][]byte{"a": handlerModule(-1, -1, "a"), "b": handlerModule(-1, -1, "b")})
	proc := resource.NewProcess(resource.ProcessConfig{})
	if !proc.Compiles.TryAcquire() { // another registry compiling
		t.Fatal("compile slot taken")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	r, err := Open(ctx, Config{Dir: dir, Process: proc})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if d := time.Since(start); d > time.Minute {
		t.Errorf("Open took %v (its context ended after 300ms)", d)
	}
	if len(r.modules) != 0 || len(r.Problems()) != 2 || len(r.failed) != 0 {
		t.Errorf("modules %v problems %v failed %v", r.modules, r.Problems(), r.failed)
	}
	if _, err := r.route("a"); err == nil || !strings.Contains(err.Error(), "a.wasm failed to load: it was still waiting for the compiler") {
		t.Errorf("job error: %v", err)
	}
	proc.Compiles.Release()
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(r.modules) != 2 || len(r.Problems()) != 0 {
		t.Errorf("after reload: modules %v problems %v", r.modules, r.Problems())
	}
}

// TestTables: tables count against the memory limit; a module whose
// tables alone exceed it is refused.
func TestTables(t *testing.T) {
	dir := writeModules(t, map[string][]byte{"big": handlerModule(10, 100_000, "big"), "ok": handlerModule(10, 1000, "ok"), "nomax": handlerModule(50, -1, "nomax")})
	for _, name := range []string{"big", "ok", "nomax"} {
		os.WriteFile(filepath.Join(dir, name+".toml"), []byte("[limits]\nmemory = \"512KiB\"\n"), 0o644)
	}
	r := openTimed(t, Config{Dir: dir}, 10*time.Second)
	const want = "its tables may grow to 100000 elements (781.2KiB), more than its memory limit of 512KiB (limits.memory = \"512KiB\" in its manifest)"
	if p := r.Problems()["big"]; p == nil || !strings.Contains(p.Error(), want) {
		t.Errorf("problem: %v", p)
	}
	if m := r.modules["ok"]; m == nil || m.tableBytes != 8000 {
		t.Errorf("ok: %+v %v", m, r.Problems())
	}
	if m := r.modules["nomax"]; m == nil || m.tableBytes != 400 {
		t.Errorf("nomax: %+v %v", m, r.Problems())
	}
}

// TestCacheEntryPath: entryPath is where wazero writes a module's compiled
// code (it repeats wazero's cache key; a wazero upgrade that changes the
// key fails here, and the registry would refuse every module).
func TestCacheEntryPath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, runtimeConfig(10).WithCompilationCache(cache))
	bin := handlerModule(-1, -1, "key")
	if _, err := rt.CompileModule(ctx, bin); err != nil {
		t.Fatal(err)
	}
	rt.Close(ctx)
	cache.Close(ctx)
	if _, ok := cachedEntry(entryPath(dir, bin)); !ok {
		files, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
		t.Errorf("no entry at %s; wazero wrote %v", entryPath(dir, bin), files)
	}
}

// TestCacheEvictsReplacedVersions: after a reload, the version a module
// no longer uses is evicted; the size goes to the observer.
func TestCacheEvictsReplacedVersions(t *testing.T) {
	dir := writeModules(t, map[string][]byte{"h": handlerModule(-1, -1, "v1"), "same": handlerModule(-1, -1, "shared")})
	obs := &testObserver{}
	cache := t.TempDir()
	r := openTimed(t, Config{Dir: dir, CacheDir: cache, Observer: obs}, 10*time.Second)
	v1 := r.modules["h"].version
	if size, n := obs.last(); n != 1 || size <= 0 || size != cacheBytes(t, cache) {
		t.Errorf("observed %d bytes (%d calls), cache holds %d", size, n, cacheBytes(t, cache))
	}
	// A second module with the same bytes shares the version.
	os.WriteFile(filepath.Join(dir, "twin.wasm"), handlerModule(-1, -1, "shared"), 0o644)
	os.WriteFile(filepath.Join(dir, "h.wasm"), handlerModule(-1, -1, "v2"), 0o644)
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	v2 := r.modules["h"].version
	if v1 == v2 || exists(filepath.Join(cache, v1)) || !exists(filepath.Join(cache, v2)) {
		t.Errorf("v1 %s kept %v, v2 %s kept %v", v1, exists(filepath.Join(cache, v1)), v2, exists(filepath.Join(cache, v2)))
	}
	// Removing one of two modules of a version keeps it.
	shared := r.modules["same"].version
	os.Remove(filepath.Join(dir, "same.wasm"))
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(cache, shared)) {
		t.Error("a version in use by another module was evicted")
	}
	if size, n := obs.last(); n != 3 || size != cacheBytes(t, cache) {
		t.Errorf("observed %d bytes (%d calls), cache holds %d", size, n, cacheBytes(t, cache))
	}
	// A reload that changes nothing evicts nothing and reports nothing new.
	if err := r.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, n := obs.last(); n != 3 {
		t.Errorf("%d observations after an idle reload", n)
	}
}

// TestCacheByteBound: past its bound the cache evicts the least recently
// loaded versions that no registry holds, never one in use (by this
// registry or another).
func TestCacheByteBound(t *testing.T) {
	cache := t.TempDir()
	// A previous process loaded a, b and c.
	old := writeModules(t, map[string][]byte{"a": handlerModule(-1, -1, "a"), "b": handlerModule(-1, -1, "b"), "c": handlerModule(-1, -1, "c")})
	r0 := openTimed(t, Config{Dir: old, CacheDir: cache}, 10*time.Second)
	va, vb, vc := r0.modules["a"].version, r0.modules["b"].version, r0.modules["c"].version
	r0.Close(context.Background())
	touch(t, filepath.Join(cache, va, lockFileName), time.Now().Add(-3*time.Hour))
	touch(t, filepath.Join(cache, vb, lockFileName), time.Now().Add(-2*time.Hour))
	touch(t, filepath.Join(cache, vc, lockFileName), time.Now().Add(-1*time.Hour))
	one := cacheBytes(t, cache) / 3

	// Another registry holds c.
	other := openTimed(t, Config{Dir: writeModules(t, map[string][]byte{"c": handlerModule(-1, -1, "c")}), CacheDir: cache}, 10*time.Second)
	_ = other

	// This one loads d, with room for about three versions.
	obs := &testObserver{}
	r := openTimed(t, Config{Dir: writeModules(t, map[string][]byte{"d": handlerModule(-1, -1, "d")}), CacheDir: cache, CacheMaxBytes: 3*one + one/2, Observer: obs}, 10*time.Second)
	vd := r.modules["d"].version
	if exists(filepath.Join(cache, va)) || !exists(filepath.Join(cache, vb)) || !exists(filepath.Join(cache, vc)) || !exists(filepath.Join(cache, vd)) {
		t.Errorf("after bounding to 3.5 versions: a %v b %v c %v d %v", exists(filepath.Join(cache, va)), exists(filepath.Join(cache, vb)), exists(filepath.Join(cache, vc)), exists(filepath.Join(cache, vd)))
	}
	// A bound smaller than what is in use evicts all the rest only.
	r2 := openTimed(t, Config{Dir: writeModules(t, map[string][]byte{"d": handlerModule(-1, -1, "d")}), CacheDir: cache, CacheMaxBytes: 1}, 10*time.Second)
	_ = r2
	if exists(filepath.Join(cache, vb)) || !exists(filepath.Join(cache, vc)) || !exists(filepath.Join(cache, vd)) {
		t.Errorf("after bounding to 1 byte: b %v c %v d %v", exists(filepath.Join(cache, vb)), exists(filepath.Join(cache, vc)), exists(filepath.Join(cache, vd)))
	}
	if size, _ := obs.last(); size <= 0 {
		t.Errorf("observed size %d", size)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func touch(t *testing.T, path string, when time.Time) {
	t.Helper()
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func cacheBytes(t *testing.T, root string) int64 {
	t.Helper()
	vs, err := scanCache(root)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, v := range vs {
		n += v.size
	}
	return n
}

// TestCompilerEnv: the compiler child does not inherit the runner's
// environment (its token), only the Go runtime's settings.
func TestCompilerEnv(t *testing.T) {
	t.Setenv("WASMRUNNER_TOKEN", "glrt-secret")
	t.Setenv("GOMAXPROCS", "2")
	env := strings.Join(compilerEnv(), "\n")
	if strings.Contains(env, "glrt-secret") || !strings.Contains(env, "GOMAXPROCS=2") || !strings.Contains(env, "GOTRACEBACK=none") {
		t.Errorf("env:\n%s", env)
	}
}

// TestCompileUnderInheritedLimit: a runner started under an address-space
// limit (ulimit -v) passes it to its compiler child, which cannot raise
// it: the child keeps it rather than failing.
func TestCompileUnderInheritedLimit(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector does not start under a 3 GB address-space limit")
	}
	dir := writeModules(t, map[string][]byte{"h": handlerModule(-1, -1, "h")})
	cfg := childConfig(t, dir, resource.CompileLimits{})
	exe, err := os.Executable() // not /proc/self/exe: that would be the shell
	if err != nil {
		t.Fatal(err)
	}
	cfg.Compiler = []string{"/bin/sh", "-c", `ulimit -v 3000000 && exec "$0" "$@"`, exe, CompilerCommand}
	r := openTimed(t, cfg, time.Minute)
	if m := r.modules["h"]; m == nil || m.compileRSS == 0 {
		t.Errorf("not compiled in the child: %v", r.Problems())
	}
}
