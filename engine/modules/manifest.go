package modules

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/tomlfile"
)

// Manifest is a handler's optional settings, read from NAME.toml beside
// NAME.wasm. Zero values mean the defaults of [DefaultManifest].
type Manifest struct {
	Limits    Limits     `toml:"limits"`
	HTTP      HTTPConfig `toml:"http"`
	Variables VarPolicy  `toml:"variables"`
	Env       EnvConfig  `toml:"env"`
}

// Limits bound what one job's instance of the handler may use.
type Limits struct {
	// Memory caps the guest's linear memory (rounded down to 64 KiB
	// pages). Default 128 MiB.
	Memory tomlfile.Size `toml:"memory"`
	// Timeout caps a job's wall time; the job's own timeout applies too.
	// Default: the job's timeout only.
	Timeout tomlfile.Duration `toml:"timeout"`
	// Log caps the bytes the handler may write to the job log (the
	// runner's output limit applies too). Default: no extra cap.
	Log tomlfile.Size `toml:"log"`
	// Disk caps the bytes the handler may add to the build dir per job
	// (growth of files written through its file system; see
	// sandboxfs.WithQuota). Default 1 GiB.
	Disk tomlfile.Size `toml:"disk"`
	// Files caps the files, directories and links the handler may create
	// in the build dir per job, net of those it removes (see
	// sandboxfs.WithMaxEntries). Default 100000.
	Files int64 `toml:"files"`
	// Instances caps the instances of this handler running at once.
	// Default: the runner's own bound only.
	Instances int `toml:"instances"`
	// CPU is the CPU-time policy: "interrupt" (the default) stops guest
	// code wherever it is when the job's time is up or it is cancelled,
	// at some cost to tight loops; "uninterrupted" leaves out those checks
	// for speed, so a guest stuck in a loop is only stopped when the
	// runner exits: for trusted handlers only.
	CPU string `toml:"cpu"`
}

// CPU-time policies of [Limits].
const (
	CPUInterrupt     = "interrupt"
	CPUUninterrupted = "uninterrupted"
)

// HTTPConfig grants the handler HTTP access through the http_request host
// function. Default: no access.
type HTTPConfig struct {
	// Allow lists the hosts the handler may call: "host", "host:port",
	// "*.domain", an IP address or a CIDR ("10.1.0.0/16"). Names reach
	// public addresses only; an address that is loopback, private,
	// link-local... must be listed itself (see hostfuncs.HTTPOptions).
	Allow []string `toml:"allow"`
	// Timeout bounds one request; default 30 s.
	Timeout tomlfile.Duration `toml:"timeout"`
	// MaxBody is the most bytes of a response, headers included; default
	// 10 MiB.
	MaxBody tomlfile.Size `toml:"max_body"`
}

// VarPolicy says which job variables the handler may see, by name
// patterns (path.Match syntax, e.g. "CI_*"). Default: all of them.
type VarPolicy struct {
	Allow []string `toml:"allow"`
	Deny  []string `toml:"deny"`
}

// EnvConfig is the guest's WASI environment.
type EnvConfig struct {
	// Variables names the visible job variables exported as environment
	// variables (patterns as in VarPolicy). Default: all visible ones.
	Variables []string `toml:"variables"`
	// Set adds fixed environment variables.
	Set map[string]string `toml:"set"`
}

// Default limits.
const (
	DefaultMemory      = 128 << 20
	DefaultDisk        = 1 << 30
	DefaultFiles       = 100000
	DefaultHTTPTimeout = 30 * time.Second
	DefaultHTTPMaxBody = 10 << 20
)

// DefaultManifest returns the settings of a handler without a manifest.
func DefaultManifest() Manifest {
	var m Manifest
	m.setDefaults()
	return m
}

func (m *Manifest) setDefaults() {
	if m.Limits.Memory <= 0 {
		m.Limits.Memory = DefaultMemory
	}
	if m.Limits.Disk <= 0 {
		m.Limits.Disk = DefaultDisk
	}
	if m.Limits.Files <= 0 {
		m.Limits.Files = DefaultFiles
	}
	if m.Limits.CPU == "" {
		m.Limits.CPU = CPUInterrupt
	}
	if m.HTTP.Timeout <= 0 {
		m.HTTP.Timeout = tomlfile.Duration(DefaultHTTPTimeout)
	}
	if m.HTTP.MaxBody <= 0 {
		m.HTTP.MaxBody = DefaultHTTPMaxBody
	}
	if len(m.Variables.Allow) == 0 {
		m.Variables.Allow = []string{"*"}
	}
	if len(m.Env.Variables) == 0 {
		m.Env.Variables = []string{"*"}
	}
}

// loadManifest reads a manifest file; a missing file gives the defaults.
func loadManifest(file string) (Manifest, bool, error) {
	var m Manifest
	err := tomlfile.Decode(file, &m)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return DefaultManifest(), false, nil
	case err != nil:
		return Manifest{}, true, err
	}
	if err := m.validate(file); err != nil {
		return Manifest{}, true, err
	}
	m.setDefaults()
	return m, true, nil
}

func (m *Manifest) validate(file string) error {
	if m.Limits.Memory < 0 || m.Limits.Memory > 4<<30 {
		return fmt.Errorf("%s: limits.memory must be at most 4GiB", file)
	}
	switch m.Limits.CPU {
	case "", CPUInterrupt, CPUUninterrupted:
	default:
		return fmt.Errorf("%s: limits.cpu must be %q or %q, not %q", file, CPUInterrupt, CPUUninterrupted, m.Limits.CPU)
	}
	if m.Limits.Disk < 0 {
		return fmt.Errorf("%s: limits.disk must not be negative", file)
	}
	if m.Limits.Files < 0 {
		return fmt.Errorf("%s: limits.files must not be negative", file)
	}
	if m.Limits.Instances < 0 {
		return fmt.Errorf("%s: limits.instances must not be negative", file)
	}
	for _, list := range [][]string{m.Variables.Allow, m.Variables.Deny, m.Env.Variables} {
		for _, p := range list {
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("%s: bad variable pattern %q: %w", file, p, err)
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

// memoryPages is the page limit for the runtime.
func (m *Manifest) memoryPages() uint32 {
	p := int64(m.Limits.Memory) / 65536
	if p < 1 {
		p = 1
	}
	if p > 65536 {
		p = 65536
	}
	return uint32(p)
}
