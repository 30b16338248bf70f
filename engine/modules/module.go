package modules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/tomlfile"
	"github.com/wasmrunner/wasmrunner/internal/units"
	"github.com/wasmrunner/wasmrunner/internal/wasmbin"
)

// ErrInvalidModule reports a module that does not fit the ABI.
var ErrInvalidModule = errors.New("invalid module")

// module is one compiled handler with its own runtime (memory limits and
// interruption are runtime settings).
type module struct {
	name     string
	path     string
	stamp    fileStamp
	manifest Manifest
	hasToml  bool
	size     int64
	// limits are the manifest's asked limits cut to the operator's
	// policy; cuts says what was cut.
	limits resource.Limits
	cuts   []resource.Cut
	// tableBytes is what the module's tables can hold at most (elements
	// of 8 bytes), charged to each instance's memory.
	tableBytes int64
	// tablesCapped counts the tables declared without a maximum, given
	// their minimum as maximum (table.grow past it fails with -1).
	tablesCapped int
	// growsCapped names the capped tables its code may grow: their growth
	// past the cap is refused (table.grow returns -1), which the job log
	// says.
	growsCapped []string

	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	// cache is the version's compilation cache (closed with the runtime),
	// cacheLock its lock, held while the module is loaded (not retired),
	// version its directory's name; nil, nil, "" without a cache.
	cache     wazero.CompilationCache
	cacheLock *os.File
	version   string
	// compileRSS is the compiler child's peak memory (0: no child ran);
	// fromCache: the compiled code was in the cache already.
	compileRSS int64
	fromCache  bool

	reactor    bool // exports wasmrunner_step
	hasCleanup bool
	compileDur time.Duration
	slots      *resource.Slots // per-module instance bound, or nil
	// outlived counts this module's guests still running after their job
	// ended (possible with the uninterrupted CPU policy only).
	outlived atomic.Int64
	http     *hostfuncs.HTTPPolicy // nil without [http] allow; its connections are this version's alone

	mu      sync.Mutex
	refs    int
	retired bool
}

// loadModule reads, checks and compiles NAME.wasm with NAME.toml from the
// modules dir root. version names the module's compilation cache directory
// ("" when it has none or was not reached), for eviction.
func (r *Registry) loadModule(ctx context.Context, root *os.Root, name string, stamp fileStamp) (m *module, version string, err error) {
	man, hasToml, err := readManifest(root, name)
	if err != nil {
		return nil, "", err
	}
	bin, err := readFile(root, name+".wasm", r.proc.Compile.MaxModuleSize)
	if err != nil {
		return nil, "", err
	}
	size := int64(len(bin))
	// Refuse what cannot be bounded before wazero allocates by it, and
	// cap tables declared without a maximum (table.grow past the cap
	// fails): what is compiled is Check's output.
	bin, info, err := wasmbin.Check(bin, wasmbin.Limits{})
	if err != nil {
		return nil, "", checkError(err)
	}
	limits, cuts := r.policy.Apply(name, man.Asked())
	var tableElems int64
	capped := 0
	var growsCapped []string
	for i, t := range info.Tables {
		tableElems += int64(t.Max)
		if t.Capped {
			capped++
			if t.Grows {
				growsCapped = append(growsCapped, fmt.Sprintf("table %d (%d elements)", i, t.Max))
			}
		}
	}
	if tableBytes := tableElems * 8; tableBytes > limits.Memory {
		msg := fmt.Sprintf("its tables may grow to %d elements (%s), more than its memory limit of %s (limits.memory)",
			tableElems, units.HumanSize(tableBytes), units.FormatSize(limits.Memory))
		return nil, "", &loadError{err: fmt.Errorf("%w: %s", ErrInvalidModule, msg), public: msg}
	}
	if r.cacheRoot != "" {
		version = versionOf(bin, limits.CPU != resource.CPUUninterrupted)
	}
	c, err := r.compile(ctx, bin, limits, version)
	if err != nil {
		return nil, version, err
	}
	ok := false
	defer func() {
		if !ok {
			c.close(ctx)
		}
	}()
	if _, err := hostfuncs.InstantiateWASI(ctx, c.rt); err != nil {
		return nil, version, fmt.Errorf("instantiating WASI: %w", err)
	}
	if _, err := hostfuncs.Instantiate(ctx, c.rt); err != nil {
		return nil, version, fmt.Errorf("instantiating host functions: %w", err)
	}
	m = &module{
		name: name, path: filepath.Join(r.cfg.Dir, name+".wasm"), stamp: stamp, manifest: man, hasToml: hasToml, size: size,
		limits: limits, cuts: cuts, tableBytes: tableElems * 8, tablesCapped: capped, growsCapped: growsCapped,
		runtime: c.rt, compiled: c.mod, cache: c.cache, cacheLock: c.lock, version: c.version,
		compileDur: c.dur, compileRSS: c.childRSS, fromCache: c.cached,
	}
	if err := m.validate(c.rt); err != nil {
		return nil, version, &loadError{err: err, public: err.Error()}
	}
	if err := m.checkMemory(); err != nil {
		return nil, version, &loadError{err: err, public: err.Error()}
	}
	if n := limits.Instances; n > 0 {
		m.slots = resource.NewSlots(fmt.Sprintf("handler %s's instance slots", name), n)
	}
	if len(limits.HTTP.Allow) > 0 {
		m.http = hostfuncs.NewHTTPPolicy(hostfuncs.HTTPOptions{
			AllowedHosts: limits.HTTP.Allow,
			Timeout:      limits.HTTP.Timeout,
			MaxResponse:  limits.HTTP.MaxResponse,
		})
	}
	ok = true
	return m, version, nil
}

// readManifest reads NAME.toml, if there is one.
func readManifest(root *os.Root, name string) (Manifest, bool, error) {
	file := name + ".toml"
	if _, err := root.Lstat(file); errors.Is(err, fs.ErrNotExist) {
		return DefaultManifest(), false, nil
	}
	data, err := readFile(root, file, maxManifestSize)
	if err != nil {
		return Manifest{}, true, &loadError{err: fmt.Errorf("manifest: %w", err), public: "manifest: " + publicReason(err)}
	}
	man, err := parseManifest(file, data)
	if err != nil {
		return Manifest{}, true, &loadError{err: fmt.Errorf("manifest: %w", err), public: "manifest: " + manifestWhere(err) + " (`wasmrunner modules check` says why)"}
	}
	return man, true, nil
}

// manifestWhere says where a manifest error is (file, line, key) without
// quoting the file: it could be something else than a manifest, and its
// values (env.set) secrets.
func manifestWhere(err error) string {
	var where []string
	var me *manifestError
	if errors.As(err, &me) {
		return me.file + ": " + me.key + " is not valid"
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var te *tomlfile.Error
		if errors.As(e, &te) {
			where = append(where, te.Where())
		}
	}
	if len(where) == 0 {
		return "not valid"
	}
	return strings.Join(where, "; ") + ": not valid"
}

// checkError explains a module wasmbin refused.
func checkError(err error) error {
	var le *wasmbin.LimitError
	switch {
	case errors.As(err, &le):
		return &loadError{err: fmt.Errorf("%w: %v", ErrInvalidModule, err), public: le.Error()}
	case errors.Is(err, wasmbin.ErrUnsupported):
		return &loadError{err: fmt.Errorf("%w: %v", ErrInvalidModule, err), public: "it uses WebAssembly this runner refuses (`wasmrunner modules check` says what)"}
	}
	return &loadError{err: fmt.Errorf("%w: %v", ErrInvalidModule, err), public: "it is not a valid WebAssembly binary (`wasmrunner modules check` says why)"}
}

// checkMemory refuses a module whose memory starts larger than its
// memory limit leaves room for, beside its tables.
func (m *module) checkMemory() error {
	for _, def := range m.compiled.ExportedMemories() {
		if need := int64(def.Min())*65536 + m.tableBytes; need > m.limits.Memory {
			return fmt.Errorf("%w: its memory starts at %s (and its tables take %s), more than limits.memory = %s",
				ErrInvalidModule, units.HumanSize(int64(def.Min())*65536), units.HumanSize(m.tableBytes), units.FormatSize(m.limits.Memory))
		}
	}
	return nil
}

// validate checks the module's imports and exports against the ABI.
func (m *module) validate(rt wazero.Runtime) error {
	var problems []string
	for _, imp := range m.compiled.ImportedFunctions() {
		modName, fn, _ := imp.Import()
		host := rt.Module(modName)
		if host == nil {
			problems = append(problems, fmt.Sprintf("imports from unknown module %q (only %s and %s exist)", modName, abi.ModuleName, wasi_snapshot_preview1.ModuleName))
			continue
		}
		def, ok := host.ExportedFunctionDefinitions()[fn]
		if !ok {
			problems = append(problems, fmt.Sprintf("imports unknown function %s.%s", modName, fn))
			continue
		}
		if !slices.Equal(def.ParamTypes(), imp.ParamTypes()) || !slices.Equal(def.ResultTypes(), imp.ResultTypes()) {
			problems = append(problems, fmt.Sprintf("imports %s.%s with signature %s, want %s", modName, fn, signature(imp), signature(def)))
		}
	}
	if len(m.compiled.ImportedMemories()) > 0 {
		problems = append(problems, "imports a memory; it must export its own")
	}
	if _, ok := m.compiled.ExportedMemories()[abi.ExportMemory]; !ok {
		problems = append(problems, `exports no memory named "memory"`)
	}
	exports := m.compiled.ExportedFunctions()
	if step, ok := exports[abi.ExportStep]; ok {
		m.reactor = true
		if !slices.Equal(step.ParamTypes(), []api.ValueType{api.ValueTypeI32}) || !slices.Equal(step.ResultTypes(), []api.ValueType{api.ValueTypeI32}) {
			problems = append(problems, fmt.Sprintf("exports %s with signature %s, want (i32) -> i32", abi.ExportStep, signature(step)))
		}
		if c, ok := exports[abi.ExportCleanup]; ok {
			m.hasCleanup = true
			if len(c.ParamTypes()) != 0 || len(c.ResultTypes()) != 0 {
				problems = append(problems, fmt.Sprintf("exports %s with signature %s, want () -> ()", abi.ExportCleanup, signature(c)))
			}
		}
	} else if s, ok := exports[abi.ExportStart]; ok {
		if len(s.ParamTypes()) != 0 || len(s.ResultTypes()) != 0 {
			problems = append(problems, fmt.Sprintf("exports %s with signature %s, want () -> ()", abi.ExportStart, signature(s)))
		}
	} else {
		problems = append(problems, fmt.Sprintf("exports neither %s (reactor) nor %s (command)", abi.ExportStep, abi.ExportStart))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidModule, strings.Join(problems, "; "))
	}
	return nil
}

func signature(d api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("(%s) -> (%s)", names(d.ParamTypes()), names(d.ResultTypes()))
}

// acquire takes a reference for a job; it fails once the module is retired.
func (m *module) acquire() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.retired {
		return false
	}
	m.refs++
	return true
}

// release drops a job's reference, closing a retired module's runtime
// when the last job is done with it.
func (m *module) release() {
	m.mu.Lock()
	m.refs--
	closeNow := m.retired && m.refs == 0
	m.mu.Unlock()
	if closeNow {
		m.close()
	}
}

// close releases the module once no job uses it.
func (m *module) close() {
	m.runtime.Close(context.Background())
	if m.cache != nil {
		m.cache.Close(context.Background())
	}
	m.http.CloseIdleConnections()
}

// retire stops new jobs from using the module; running jobs keep it.
func (m *module) retire() {
	m.mu.Lock()
	if m.retired {
		m.mu.Unlock()
		return
	}
	m.retired = true
	closeNow := m.refs == 0
	lock := m.cacheLock
	m.cacheLock = nil
	m.mu.Unlock()
	if lock != nil {
		lock.Close() // the version may be evicted: running jobs need no file
	}
	if closeNow {
		m.close()
	}
}
