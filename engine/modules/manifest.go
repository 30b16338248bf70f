package modules

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/internal/tomlfile"
)

// Manifest is a handler's optional settings, read from NAME.toml beside
// NAME.wasm. Zero values mean the defaults of [DefaultManifest].
type Manifest struct {
	Limits    Limits     `toml:"limits"`
	HTTP      HTTPConfig `toml:"http"`
	Variables VarPolicy  `toml:"variables"`
	Env       EnvConfig  `toml:"env"`
	Sources   Sources    `toml:"sources"`
	Start     Start      `toml:"start"`
}

// Start says how the handler's instances start.
type Start struct {
	// Snapshot: a Go handler built on the SDK (a reactor) is initialized
	// once, when it is loaded, and each job's instance starts from a
	// copy-on-write snapshot of it instead of running Go's runtime start
	// and the program's init functions again. Default true; false runs
	// _initialize in each job's instance. Other handlers always run it,
	// in a memory that maps their data segments copy-on-write from an
	// image of them (shared by the instances); false copies them into each
	// instance's memory instead.
	Snapshot *bool `toml:"snapshot" example:"false"`
}

// Sources says whether the handler's jobs start with their sources.
type Sources struct {
	// Checkout makes the runner fetch each job's commit (git_info and the
	// GIT_* variables: GIT_STRATEGY, GIT_DEPTH, GIT_CHECKOUT,
	// GIT_CLEAN_FLAGS, GIT_SUBMODULE_STRATEGY...) into its build dir
	// before the first step, as GitLab Runner's get_sources stage does,
	// within limits.disk and limits.files. Default false: the build dir
	// starts empty, and the job costs no git traffic.
	Checkout bool `toml:"checkout"`
}

// Limits bound what one job's instance of the handler may use. Each is
// cut to the operator's ceiling ([resource.Policy]); unset ones take the
// defaults of [resource.DefaultLimits], which are also the ceilings when
// the operator sets none.
type Limits struct {
	// Memory caps the guest's linear memory and tables (whole 64 KiB
	// pages). Default 128 MiB.
	Memory tomlfile.Size `toml:"memory"`
	// Timeout caps a job's wall time; the job's own timeout applies too.
	// Default: the job's timeout only.
	Timeout tomlfile.Duration `toml:"timeout"`
	// Log caps the bytes the handler may write to the job log (the
	// runner's output limit applies too). Default: no extra cap.
	Log tomlfile.Size `toml:"log"`
	// Disk caps the bytes a job may add to its build dir: what the guest
	// writes, the artifacts it adds and the dependency artifacts extracted
	// for it. Default 1 GiB.
	Disk tomlfile.Size `toml:"disk"`
	// Files caps the files, directories and links a job may add to its
	// build dir, net of those it removes. Default 100000.
	Files int64 `toml:"files"`
	// OpenFiles caps the descriptors the guest holds at once. Default
	// 256.
	OpenFiles int64 `toml:"open_files"`
	// Instances caps the instances of this handler running at once.
	// Default: the runner's own bound only.
	Instances int `toml:"instances"`
	// CPU is the CPU-time policy: "interrupt" (the default) stops guest
	// code wherever it is when the job's time is up or it is cancelled,
	// at a small cost (a few instructions a loop iteration and function
	// call); "uninterrupted" leaves out those checks, so a guest stuck in
	// a loop cannot be stopped: only for handlers the operator marks
	// trusted.
	CPU string `toml:"cpu" example:"\"interrupt\""`
}

// CPU-time policies of [Limits].
const (
	CPUInterrupt     = string(resource.CPUInterrupt)
	CPUUninterrupted = string(resource.CPUUninterrupted)
)

// HTTPConfig grants the handler HTTP access through the http_request host
// function. Default: no access.
type HTTPConfig struct {
	// Allow lists the hosts the handler may call: "host", "host:port",
	// "*.domain", an IP address or a CIDR ("10.1.0.0/16"). Names reach
	// public addresses only; an address that is loopback, private,
	// link-local... must be listed itself (see hostfuncs.HTTPOptions).
	Allow []string `toml:"allow" example:"[\"example.com\"]"`
	// Timeout bounds one request; default 30 s.
	Timeout tomlfile.Duration `toml:"timeout"`
	// MaxBody is the most bytes of a response, headers included; default
	// 10 MiB.
	MaxBody tomlfile.Size `toml:"max_body"`
}

// VarPolicy says which job variables the handler may see, by name
// patterns (path.Match syntax, e.g. "CI_*"). Default: all of them.
type VarPolicy struct {
	Allow []string `toml:"allow" example:"[\"CI_*\"]"`
	Deny  []string `toml:"deny" example:"[\"DEPLOY_*\"]"`
}

// EnvConfig is the guest's WASI environment.
type EnvConfig struct {
	// Variables names the visible job variables exported as environment
	// variables (patterns as in VarPolicy). Default: all visible ones.
	Variables []string `toml:"variables" example:"[\"CI_*\", \"GREETING\"]"`
	// Set adds fixed environment variables.
	Set map[string]string `toml:"set" example:"{ LANG = \"C.UTF-8\" }"`
}

// DefaultManifest returns the settings of a handler without a manifest.
func DefaultManifest() Manifest {
	var m Manifest
	m.setDefaults()
	return m
}

// setDefaults fills in the settings that are not limits (those are the
// policy's to fill in: see [Manifest.Asked]).
func (m *Manifest) setDefaults() {
	if len(m.Variables.Allow) == 0 {
		m.Variables.Allow = []string{"*"}
	}
	if len(m.Env.Variables) == 0 {
		m.Env.Variables = []string{"*"}
	}
}

// Asked returns the limits the manifest asks for, unset ones zero.
func (m *Manifest) Asked() resource.Limits {
	return resource.Limits{
		Memory:    int64(m.Limits.Memory),
		Timeout:   time.Duration(m.Limits.Timeout),
		Log:       int64(m.Limits.Log),
		Disk:      int64(m.Limits.Disk),
		Files:     m.Limits.Files,
		OpenFiles: m.Limits.OpenFiles,
		Instances: m.Limits.Instances,
		CPU:       resource.CPUPolicy(m.Limits.CPU),
		HTTP: resource.HTTPLimits{
			Allow:       m.HTTP.Allow,
			Timeout:     time.Duration(m.HTTP.Timeout),
			MaxResponse: int64(m.HTTP.MaxBody),
		},
	}
}

// parseManifest decodes and checks the manifest data read from file (a
// name for messages).
func parseManifest(file string, data []byte) (Manifest, error) {
	var m Manifest
	if err := tomlfile.DecodeBytes(file, data, &m); err != nil {
		return Manifest{}, err
	}
	if err := m.validate(file); err != nil {
		return Manifest{}, err
	}
	m.setDefaults()
	return m, nil
}

// manifestError is a manifest setting that is not valid.
type manifestError struct {
	file, key, msg string
	err            error // the cause, if any
}

func (e *manifestError) Error() string { return e.file + ": " + e.msg }
func (e *manifestError) Unwrap() error { return e.err }

func (m *Manifest) validate(file string) error {
	bad := func(key, format string, args ...any) error {
		return &manifestError{file: file, key: key, msg: fmt.Sprintf(format, args...)}
	}
	if m.Limits.Memory < 0 || m.Limits.Memory > resource.MaxMemory {
		return bad("limits.memory", "limits.memory must be at most 4GiB")
	}
	if m.Limits.OpenFiles < 0 {
		return bad("limits.open_files", "limits.open_files must not be negative")
	}
	for _, e := range m.HTTP.Allow {
		if u, err := url.Parse(strings.TrimSpace(e)); err == nil && u.Scheme != "" && u.Host != "" {
			return bad("http.allow", "http.allow: %q is a URL; list its host instead: allow = [%q]", e, u.Host)
		}
		if _, err := resource.ParseHostPattern(e); err != nil {
			e := bad("http.allow", "http.allow: %v", err).(*manifestError)
			e.err = err
			return e
		}
	}
	switch m.Limits.CPU {
	case "", CPUInterrupt, CPUUninterrupted:
	default:
		return bad("limits.cpu", "limits.cpu must be %q or %q, not %q", CPUInterrupt, CPUUninterrupted, m.Limits.CPU)
	}
	if m.Limits.Disk < 0 {
		return bad("limits.disk", "limits.disk must not be negative")
	}
	if m.Limits.Files < 0 {
		return bad("limits.files", "limits.files must not be negative")
	}
	if m.Limits.Instances < 0 {
		return bad("limits.instances", "limits.instances must not be negative")
	}
	for _, list := range []struct {
		key      string
		patterns []string
	}{{"variables.allow", m.Variables.Allow}, {"variables.deny", m.Variables.Deny}, {"env.variables", m.Env.Variables}} {
		for _, p := range list.patterns {
			if _, err := path.Match(p, ""); err != nil {
				return bad(list.key, "bad variable pattern %q: %v", p, err)
			}
		}
	}
	return nil
}

// matchAny reports whether name matches one of the patterns.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// varVisible reports whether the handler may see a variable.
func (m *Manifest) varVisible(name string) bool {
	return matchAny(m.Variables.Allow, name) && !matchAny(m.Variables.Deny, name)
}
