package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	ref  ref
	name string // ref.String(): the handler version, as images name it
	path string
	// manifestPath is its manifest's path, "" without one; sha256 the
	// hex sha256 of the module file as read (image digests match it).
	manifestPath string
	sha256       string
	toolchain    toolchain
	// problems are what `modules check` says of a module that loads.
	problems []Problem
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

	// start: the module was loaded without its data segments; its
	// instances start from its snapshot, or are initialized each (see
	// snapshot.go). nil: instantiation initializes them.
	start *startState

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

// loadModule reads, checks and compiles one version of a handler (STEM.wasm
// with STEM.toml) from the modules dir root. version names the module's
// compilation cache directory ("" when it has none or was not reached), for
// eviction. ls is the dir's listing, for the manifest's name.
func (r *Registry) loadModule(ctx context.Context, root *os.Root, id ref, stamp fileStamp, ls *listing) (m *module, version string, err error) {
	stem := id.stem()
	if !ls.tomls[stem] {
		if other := ls.tomlCase(stem); other != "" {
			msg := fmt.Sprintf("there is no %s.toml, but %s.toml differs from it only by case: rename it %s.toml (a manifest's name must be its module's exactly; the module is not loaded without the manifest meant for it)", stem, other, stem)
			return nil, "", &loadError{err: errors.New(msg), public: msg, code: CodeManifestNameCase}
		}
	}
	man, hasToml, err := readManifest(root, stem)
	if err != nil {
		return nil, "", err
	}
	bin, err := readFile(root, stem+".wasm", r.proc.Compile.MaxModuleSize)
	if err != nil {
		return nil, "", err
	}
	size := int64(len(bin))
	sum := sha256.Sum256(bin)
	// Refuse what cannot be bounded before wazero allocates by it, and
	// cap tables declared without a maximum (table.grow past the cap
	// fails): what is compiled is Check's output.
	bin, info, err := wasmbin.Check(bin, wasmbin.Limits{})
	if err != nil {
		return nil, "", checkError(err)
	}
	tc := toolchainOf(bin)
	if p, refused := tc.goCommand(); refused {
		// Known without compiling it.
		return nil, "", &loadError{err: fmt.Errorf("%w: %s", ErrInvalidModule, p.Message), public: p.Message, code: p.Code}
	}
	asked := man.Asked()
	limits, cuts := r.policy.Apply(id.Name, asked)
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
		msg := fmt.Sprintf("its tables may grow to %d elements (%s), more than its memory limit of %s (%s)",
			tableElems, units.HumanSize(tableBytes), units.FormatSize(limits.Memory), memoryLimitSource(hasToml, asked.Memory, limits.Memory))
		return nil, "", &loadError{err: fmt.Errorf("%w: %s", ErrInvalidModule, msg), public: msg, code: CodeMemory}
	}
	if limits.CPU != resource.CPUUninterrupted {
		// Checks whether the call must end, on loops and function
		// entries, that cost a few instructions but once every 16,384
		// units (wazero's own, off, exit to Go at every loop iteration
		// and never check code without loops).
		if bin, err = wasmbin.Interruptible(bin); err != nil {
			return nil, "", checkError(err)
		}
	}
	if r.cacheRoot != "" {
		version = versionOf(bin, limits.CPU != resource.CPUUninterrupted)
	}
	// A Go reactor is compiled without its data segments, to start its
	// jobs from a snapshot (snapshot.go); the cache version stays the
	// module's.
	compile := bin
	var layout *wasmbin.Snapshot
	eligible, noSnapshot := snapshotEligible(tc, man, limits)
	dataImage := !eligible && dataImageEligible(tc, man)
	if eligible || dataImage {
		out, l, err := wasmbin.Snapshottable(bin, info, globalExportPrefix)
		switch {
		case err != nil && eligible:
			noSnapshot = err.Error()
		case err != nil:
			r.log.Debug("jobs copy the data segments: no image of them", "module", id.String(), "reason", err)
		case dataImage && len(l.Data) == 0:
			// Nothing to share.
		default:
			compile, layout = out, l
		}
	}
	c, err := r.compile(ctx, compile, limits, version)
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
	if _, err := instantiateInterruptCheck(ctx, c.rt); err != nil {
		return nil, version, fmt.Errorf("instantiating the interruption check: %w", err)
	}
	m = &module{
		ref: id, name: id.String(), path: filepath.Join(r.cfg.Dir, stem+".wasm"), stamp: stamp, manifest: man, hasToml: hasToml, size: size,
		sha256: hex.EncodeToString(sum[:]), toolchain: tc,
		limits: limits, cuts: cuts, tableBytes: tableElems * 8, tablesCapped: capped, growsCapped: growsCapped,
		runtime: c.rt, compiled: c.mod, cache: c.cache, cacheLock: c.lock, version: c.version,
		compileDur: c.dur, compileRSS: c.childRSS, fromCache: c.cached,
	}
	if hasToml {
		m.manifestPath = filepath.Join(r.cfg.Dir, stem+".toml")
	}
	if errs, warnings := m.validate(c.rt); len(errs) > 0 {
		return nil, version, &loadError{err: fmt.Errorf("%w: %w", ErrInvalidModule, errs), public: errs.Error()}
	} else {
		m.problems = warnings
	}
	if err := m.checkMemory(asked.Memory); err != nil {
		return nil, version, &loadError{err: err, public: err.Error(), code: CodeMemory}
	}
	if len(asked.HTTP.Allow) > 0 && len(limits.HTTP.Allow) == 0 {
		m.problems = append(m.problems, Problem{Code: CodeHTTPAllowDropped, Message: fmt.Sprintf(
			"the operator's policy drops every entry of its [http] allow (%s): its jobs get no HTTP at all; ask the operator to add them to http_allow, or list hosts inside it",
			strings.Join(asked.HTTP.Allow, ", "))})
	}
	switch {
	case layout != nil && dataImage:
		m.start = &startState{layout: layout, dataOnly: true}
		if err := takeDataImage(m); err != nil {
			m.start.why = err.Error()
			r.log.Debug("jobs copy the data segments: no image of them", "module", m.name, "reason", m.start.why)
		}
	case layout != nil:
		m.start = &startState{layout: layout}
		if err := r.takeSnapshot(ctx, m); err != nil {
			m.start.why = err.Error()
		}
		noSnapshot = m.start.why
	}
	switch {
	case m.start != nil && m.start.dataOnly && m.start.snap != nil:
		r.log.Debug("jobs map the data segments from an image", "module", m.name, "bytes", m.start.snap.image.size)
	case m.start != nil && m.start.snap != nil:
		r.log.Debug("jobs start from a snapshot", "module", m.name, "bytes", m.start.snap.image.size, "took", m.start.snap.took)
	case noSnapshot != "":
		r.log.Info("jobs of a Go handler run its initialization each: no snapshot", "module", m.name, "reason", noSnapshot)
	}
	if n := limits.Instances; n > 0 {
		m.slots = resource.NewSlots(fmt.Sprintf("handler %s's instance slots", m.name), n)
	}
	if len(asked.HTTP.Allow) > 0 {
		// Also when the policy dropped every entry: its denials say so.
		m.http = hostfuncs.NewHTTPPolicy(hostfuncs.HTTPOptions{
			AllowedHosts: limits.HTTP.Allow,
			Dropped:      droppedHosts(asked.HTTP.Allow, limits.HTTP.Allow),
			Timeout:      limits.HTTP.Timeout,
			MaxResponse:  limits.HTTP.MaxResponse,
		})
	}
	ok = true
	return m, version, nil
}

// droppedHosts returns the entries of asked that are not in kept.
func droppedHosts(asked, kept []string) []string {
	var out []string
	for _, a := range asked {
		if !slices.Contains(kept, a) {
			out = append(out, a)
		}
	}
	return out
}

// memoryLimitSource says where a module's memory limit (got) comes from,
// for messages: the manifest (asked, 0 unset), cut or not, or the default.
func memoryLimitSource(hasToml bool, asked, got int64) string {
	switch {
	case asked > got:
		return fmt.Sprintf("its manifest's limits.memory = %q, cut to the operator's policy, memory = %q", units.FormatSize(asked), units.FormatSize(got))
	case asked > 0:
		return fmt.Sprintf("limits.memory = %q in its manifest", units.FormatSize(asked))
	case hasToml:
		return "the default: its manifest sets no limits.memory"
	}
	return "the default: it has no manifest to set limits.memory"
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
		return Manifest{}, true, &loadError{err: fmt.Errorf("manifest: %w", err), public: "manifest: " + manifestPublic(err), code: CodeManifest}
	}
	return man, true, nil
}

// manifestPublic says what is wrong with a manifest without quoting the
// file (it could be something else than a manifest, and its values, env.set,
// secrets): where (file, line, key), and what a key takes when that quotes
// nothing of the file (tomlfile.Error.Public).
func manifestPublic(err error) string {
	var me *manifestError
	if errors.As(err, &me) {
		return me.file + ": " + me.key + " is not valid (`wasmrunner modules check` says why)"
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var msgs []string
	quoted := true
	for _, e := range errs {
		var te *tomlfile.Error
		if errors.As(e, &te) {
			msg, full := te.Public()
			msgs = append(msgs, msg)
			quoted = quoted && full
		}
	}
	switch {
	case len(msgs) == 0:
		return "not valid (`wasmrunner modules check` says why)"
	case quoted:
		return strings.Join(msgs, "; ")
	}
	return strings.Join(msgs, "; ") + " (`wasmrunner modules check` says why)"
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
// memory limit leaves room for, beside its tables. asked is what its
// manifest asks for (0: nothing).
func (m *module) checkMemory(asked int64) error {
	for _, def := range m.compiled.ExportedMemories() {
		start := int64(def.Min()) * 65536
		if need := start + m.tableBytes; need > m.limits.Memory {
			tables := ""
			if m.tableBytes > 0 {
				tables = fmt.Sprintf(" and its tables take %s", units.HumanSize(m.tableBytes))
			}
			fix := fmt.Sprintf(`; it needs at least limits.memory = %q`, units.FormatSize(roundUpMiB(need)))
			if asked > m.limits.Memory {
				fix = fmt.Sprintf("; it needs the operator's policy to allow at least memory = %q", units.FormatSize(roundUpMiB(need)))
			}
			return fmt.Errorf("%w: its memory starts at %s%s, more than its memory limit of %s (%s)%s",
				ErrInvalidModule, units.HumanSize(start), tables, units.FormatSize(m.limits.Memory), memoryLimitSource(m.hasToml, asked, m.limits.Memory), fix)
		}
	}
	return nil
}

// roundUpMiB rounds n up to whole MiB.
func roundUpMiB(n int64) int64 { return (n + 1<<20 - 1) &^ (1<<20 - 1) }

// validate checks the module's imports and exports against the ABI: errs
// keep it from loading; warnings do not, but its jobs may run into them.
func (m *module) validate(rt wazero.Runtime) (errs, warnings problems) {
	bad := func(code, format string, args ...any) {
		errs = append(errs, Problem{Code: code, Message: fmt.Sprintf(format, args...)})
	}
	for _, imp := range m.compiled.ImportedFunctions() {
		modName, fn, _ := imp.Import()
		host := rt.Module(modName)
		if host == nil {
			bad(CodeImport, "imports from unknown module %q (only %s and %s exist)%s", modName, abi.ModuleName, wasi_snapshot_preview1.ModuleName, importHint(modName))
			continue
		}
		def, ok := host.ExportedFunctionDefinitions()[fn]
		if !ok {
			bad(CodeImport, "imports unknown function %s.%s", modName, fn)
			continue
		}
		if !slices.Equal(def.ParamTypes(), imp.ParamTypes()) || !slices.Equal(def.ResultTypes(), imp.ResultTypes()) {
			bad(CodeImport, "imports %s.%s with signature %s, want %s", modName, fn, signature(imp), signature(def))
		}
	}
	if len(m.compiled.ImportedMemories()) > 0 {
		bad(CodeImport, "imports a memory; it must export its own")
	}
	if _, ok := m.compiled.ExportedMemories()[abi.ExportMemory]; !ok {
		bad(CodeExport, `exports no memory named "memory"`)
	}
	exports := m.compiled.ExportedFunctions()
	_, hasInit := exports[abi.ExportInitialize]
	start, hasStart := exports[abi.ExportStart]
	if step, ok := exports[abi.ExportStep]; ok {
		m.reactor = true
		if !slices.Equal(step.ParamTypes(), []api.ValueType{api.ValueTypeI32}) || !slices.Equal(step.ResultTypes(), []api.ValueType{api.ValueTypeI32}) {
			bad(CodeExport, "exports %s with signature %s, want (i32) -> i32", abi.ExportStep, signature(step))
		}
		if c, ok := exports[abi.ExportCleanup]; ok {
			m.hasCleanup = true
			if len(c.ParamTypes()) != 0 || len(c.ResultTypes()) != 0 {
				bad(CodeExport, "exports %s with signature %s, want () -> ()", abi.ExportCleanup, signature(c))
			}
		}
		switch {
		case hasInit:
		case m.toolchain.goRuntime && hasStart:
			errs = append(errs, goCommandProblem)
		case m.toolchain.goRuntime:
			bad(CodeNoInitialize, "it is a Go module that exports no _initialize: Go's runtime would never start; build with -buildmode=c-shared")
		case hasStart:
			warnings = append(warnings, Problem{Code: CodeCommandWithStep, Message: "it exports wasmrunner_step and _start but no _initialize: it was linked as a command, " +
				"and wasmrunner never calls _start of a module that has wasmrunner_step, so only a per-export wrapper of its linker (wasi-libc's runs the constructors before each call and the destructors after it) can initialize it; " +
				"link it as a reactor, which exports _initialize (clang -mexec-model=reactor; Rust: crate-type = [\"cdylib\"]; Go: -buildmode=c-shared)"})
		case m.toolchain.ctors:
			warnings = append(warnings, Problem{Code: CodeNoInitialize, Message: "it has constructors (__wasm_call_ctors) but exports no _initialize to run them: its C library and static constructors are never initialized; " +
				"link it as a reactor (clang -mexec-model=reactor), which exports _initialize"})
		}
	} else if hasStart {
		if len(start.ParamTypes()) != 0 || len(start.ResultTypes()) != 0 {
			bad(CodeExport, "exports %s with signature %s, want () -> ()", abi.ExportStart, signature(start))
		}
	} else {
		hint := ""
		if hasInit {
			hint = " (it exports _initialize: a reactor that exports no wasmrunner_step; with the Go SDK, call wasmrunner.Handle in an init function)"
		}
		bad(CodeExport, "exports neither %s (reactor) nor %s (command)%s", abi.ExportStep, abi.ExportStart, hint)
	}
	return errs, warnings
}

// goCommandProblem refuses a Go module built without -buildmode=c-shared
// that exports wasmrunner_step.
var goCommandProblem = Problem{Code: CodeGoCommand, Message: "it is a Go command module (it exports wasmrunner_step and _start, no _initialize): " +
	"Go's runtime starts only in _start, which runs main and exits, so its wasmrunner_step cannot be called " +
	`(every job would fail with "wasmexport function called before runtime initialization"); ` +
	"build with -buildmode=c-shared: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared"}

// goCommand reports a Go command module that exports wasmrunner_step, as
// its export section says before it is compiled.
func (tc toolchain) goCommand() (Problem, bool) {
	if tc.goRuntime && tc.exports[abi.ExportStep] && tc.exports[abi.ExportStart] && !tc.exports[abi.ExportInitialize] {
		return goCommandProblem, true
	}
	return Problem{}, false
}

// importHint guesses why a module imports from an unknown module.
func importHint(modName string) string {
	switch {
	case modName == "env":
		return `: "env" is where a linker puts the functions it found no definition for (a missing library at link time?)`
	case modName == "gojs" || modName == "go":
		return ": it was built with GOOS=js; build with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared"
	case strings.HasPrefix(modName, "wasi:") || modName == "wasi_snapshot_preview2" || modName == "wasi_unstable":
		return ": only WASI preview 1 (wasi_snapshot_preview1) is supported; build for wasm32-wasip1"
	}
	return ""
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
	m.start.close()
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
