package modules

import (
	"context"
	"errors"
	"fmt"
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

	runtime    wazero.Runtime
	compiled   wazero.CompiledModule
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

// fileStamp identifies a version of a module and its manifest on disk.
type fileStamp struct {
	wasmSize, tomlSize int64
	wasmTime, tomlTime time.Time
}

func stampOf(wasmPath, tomlPath string) (fileStamp, error) {
	fi, err := os.Stat(wasmPath)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{wasmSize: fi.Size(), wasmTime: fi.ModTime()}
	if ti, err := os.Stat(tomlPath); err == nil {
		st.tomlSize, st.tomlTime = ti.Size(), ti.ModTime()
	}
	return st, nil
}

// maxModuleSize bounds the .wasm files the registry reads.
const maxModuleSize = 256 << 20

// loadModule reads, validates and compiles NAME.wasm with NAME.toml.
func loadModule(ctx context.Context, dir, name string, cache wazero.CompilationCache, policy *resource.Policy) (*module, error) {
	wasmPath := filepath.Join(dir, name+".wasm")
	tomlPath := filepath.Join(dir, name+".toml")
	stamp, err := stampOf(wasmPath, tomlPath)
	if err != nil {
		return nil, err
	}
	if stamp.wasmSize > maxModuleSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidModule, stamp.wasmSize, maxModuleSize)
	}
	man, hasToml, err := loadManifest(tomlPath)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	bin, err := os.ReadFile(wasmPath)
	if err != nil {
		return nil, err
	}
	limits, cuts := policy.Apply(name, man.Asked())

	rc := wazero.NewRuntimeConfigCompiler().
		WithMemoryLimitPages(memoryPages(limits.Memory)).
		WithCloseOnContextDone(limits.CPU != resource.CPUUninterrupted)
	if cache != nil {
		rc = rc.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	ok := false
	defer func() {
		if !ok {
			rt.Close(ctx)
		}
	}()
	if _, err := hostfuncs.InstantiateWASI(ctx, rt); err != nil {
		return nil, fmt.Errorf("instantiating WASI: %w", err)
	}
	if _, err := hostfuncs.Instantiate(ctx, rt); err != nil {
		return nil, fmt.Errorf("instantiating host functions: %w", err)
	}
	start := time.Now()
	compiled, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidModule, err)
	}
	m := &module{
		name: name, path: wasmPath, stamp: stamp, manifest: man, hasToml: hasToml, size: stamp.wasmSize,
		limits: limits, cuts: cuts, runtime: rt, compiled: compiled, compileDur: time.Since(start),
	}
	if err := m.validate(rt); err != nil {
		return nil, err
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
	return m, nil
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
	m.http.CloseIdleConnections()
}

// retire stops new jobs from using the module; running jobs keep it.
func (m *module) retire() {
	m.mu.Lock()
	m.retired = true
	closeNow := m.refs == 0
	m.mu.Unlock()
	if closeNow {
		m.close()
	}
}
