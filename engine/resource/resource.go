// Package resource is the one place that bounds what jobs and their
// WebAssembly handlers may consume.
//
//   - [Limits] are one job's bounds: what its handler's manifest asks for,
//     cut to the operator's [Policy] ([Policy.Apply]).
//   - [Process] holds the budgets every job of the process draws from:
//     jobs, instances and compilations at once ([Slots]); guest memory,
//     open descriptors and guests that outlived their job ([Pool]).
//   - [Stop] says how a step that must end is ended.
//
// A job's bytes, entries and descriptors are [Pool]s whose parent is the
// process's pool, so a take is refused when either bound would be passed
// and the refusal names the bound that did it. docs/security.md lists
// every resource a guest can reach with its per-job and per-process bound,
// where it is enforced, and the test that proves it.
package resource

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/units"
)

// CPUPolicy is how a guest's CPU time is bounded.
type CPUPolicy string

// CPU policies.
const (
	// CPUInterrupt stops guest code wherever it is when its job's time is
	// up or it is cancelled, at a small cost (a few instructions a loop
	// iteration and function call). The default.
	CPUInterrupt CPUPolicy = "interrupt"
	// CPUUninterrupted leaves out those checks for speed; a guest stuck in
	// a loop cannot be stopped until the process exits. Only handlers the
	// operator marks trusted get it ([Policy.Trusted]).
	CPUUninterrupted CPUPolicy = "uninterrupted"
)

// Limits bound one job of a handler. A zero field means "no bound of this
// kind beyond the others" only where its comment says so.
type Limits struct {
	// Memory bounds the guest's linear memory, in bytes (whole 64 KiB
	// pages).
	Memory int64
	// Timeout bounds the job's wall time on top of the job's own timeout;
	// 0: the job's timeout only.
	Timeout time.Duration
	// Log bounds the bytes the handler writes to the job log (after
	// masking), on top of the runner's output limit; 0: that limit only.
	Log int64
	// Disk bounds the bytes a job adds to its build dir: what its guest
	// writes, the artifacts it adds, and the dependency artifacts
	// extracted for it.
	Disk int64
	// Files bounds the files, directories and links a job adds to its
	// build dir, counted like Disk.
	Files int64
	// OpenFiles bounds the descriptors the guest holds at once.
	OpenFiles int64
	// Instances bounds the instances of the handler at once; 0: the
	// process's bound only.
	Instances int
	// CPU is the CPU-time policy.
	CPU CPUPolicy
	// HTTP is the handler's network access.
	HTTP HTTPLimits
}

// HTTPLimits is a handler's HTTP access (through the http_request host
// function; guests have no sockets).
type HTTPLimits struct {
	// Allow lists the hosts requests may go to ("host", "host:port",
	// "*.domain", an IP address or a CIDR prefix); empty: no HTTP.
	Allow []string
	// Timeout bounds one request.
	Timeout time.Duration
	// MaxResponse bounds one response as the guest receives it, headers
	// included.
	MaxResponse int64
}

// Defaults of a handler without a manifest; they are also the ceilings of
// a [Policy] that sets none, so a manifest can narrow them but never widen
// them unless the operator allows it.
const (
	DefaultMemory          = 128 << 20
	DefaultDisk            = 1 << 30
	DefaultFiles           = 100000
	DefaultOpenFiles       = 256
	DefaultHTTPTimeout     = 30 * time.Second
	DefaultHTTPMaxResponse = 10 << 20

	// MaxMemory is the most linear memory a 32-bit guest can address.
	MaxMemory = 4 << 30
)

// DefaultLimits returns the limits of a handler without a manifest.
func DefaultLimits() Limits {
	return Limits{
		Memory:    DefaultMemory,
		Disk:      DefaultDisk,
		Files:     DefaultFiles,
		OpenFiles: DefaultOpenFiles,
		CPU:       CPUInterrupt,
		HTTP:      HTTPLimits{Timeout: DefaultHTTPTimeout, MaxResponse: DefaultHTTPMaxResponse},
	}
}

// HiddenVariables are the job variables no handler sees unless the
// operator's policy exposes them ([Policy.Expose]): credentials that act as
// the job (its token, and the repository URL that embeds it) are worth
// more to an attacker than to a handler.
var HiddenVariables = []string{
	"CI_JOB_TOKEN", "CI_BUILD_TOKEN", "CI_REPOSITORY_URL",
	"CI_REGISTRY_PASSWORD", "CI_DEPENDENCY_PROXY_PASSWORD",
	"CI_JOB_JWT", "CI_JOB_JWT_V1", "CI_JOB_JWT_V2",
}

// Policy is the operator's ceiling over what handlers' manifests ask for,
// for the whole process or one runner entry (a tenant).
type Policy struct {
	// Max holds the ceilings; a zero field takes the default ceiling
	// ([DefaultLimits]'s value; none for Timeout, Log and Instances).
	// Max.CPU and Max.HTTP.Allow are not used: see Trusted and
	// HTTPAllow.
	Max Limits
	// Trusted names the handlers that may run with CPUUninterrupted.
	Trusted []string
	// HTTPAllow is the ceiling of manifests' [http] allow lists: an entry
	// is kept only if it falls inside one of these ("*.example.com" holds
	// "api.example.com", "10.0.0.0/8" holds "10.1.2.3"). Nil: any host or
	// address but "*" and link-local addresses (cloud metadata). "*"
	// here lets manifests allow any host.
	HTTPAllow []string
	// Expose names the [HiddenVariables] (patterns) handlers may see.
	Expose []string
	// Hide adds variables (patterns) no handler sees.
	Hide []string
	// MaxOutlived is how many guests of one handler may still be running
	// after their jobs ended before the handler is refused new jobs
	// (default 2).
	MaxOutlived int
}

// DefaultMaxOutlived is the default of [Policy.MaxOutlived].
const DefaultMaxOutlived = 2

// Cut is one thing a manifest asked for that the policy did not grant.
type Cut struct {
	// Key is the manifest key ("limits.memory", "http.allow").
	Key string
	// Asked and Got are what the manifest asked for and what it got, as
	// an operator writes them.
	Asked, Got string
}

func (c Cut) String() string { return fmt.Sprintf("%s %s -> %s", c.Key, c.Asked, c.Got) }

// Apply returns the limits a handler named handler gets when its manifest
// asks for asked: each at most the policy's ceiling. It also returns what
// was cut.
func (p *Policy) Apply(handler string, asked Limits) (Limits, []Cut) {
	def := DefaultLimits()
	eff := asked
	var cuts []Cut
	// bound sets *v, 0 meaning unset, to at most ceiling (def when
	// unset), and unset to min(def, ceiling).
	bound := func(key string, v *int64, ceiling, def int64, format func(int64) string) {
		if ceiling <= 0 {
			ceiling = def
		}
		switch {
		case *v <= 0:
			*v = min(def, ceiling)
		case *v > ceiling:
			cuts = append(cuts, Cut{key, format(*v), format(ceiling)})
			*v = ceiling
		}
	}
	size := func(key string, v *int64, ceiling, def int64) { bound(key, v, ceiling, def, units.FormatSize) }
	count := func(key string, v *int64, ceiling, def int64) {
		bound(key, v, ceiling, def, func(n int64) string { return fmt.Sprint(n) })
	}
	size("limits.memory", &eff.Memory, p.Max.Memory, def.Memory)
	size("limits.disk", &eff.Disk, p.Max.Disk, def.Disk)
	count("limits.files", &eff.Files, p.Max.Files, def.Files)
	count("limits.open_files", &eff.OpenFiles, p.Max.OpenFiles, def.OpenFiles)
	size("http.max_body", &eff.HTTP.MaxResponse, p.Max.HTTP.MaxResponse, def.HTTP.MaxResponse)
	if c := p.Max.Log; c > 0 && (eff.Log <= 0 || eff.Log > c) {
		if eff.Log > c {
			cuts = append(cuts, Cut{"limits.log", units.FormatSize(eff.Log), units.FormatSize(c)})
		}
		eff.Log = c
	}
	if c := p.Max.Timeout; c > 0 && (eff.Timeout <= 0 || eff.Timeout > c) {
		if eff.Timeout > c {
			cuts = append(cuts, Cut{"limits.timeout", eff.Timeout.String(), c.String()})
		}
		eff.Timeout = c
	}
	if c := cmp.Or(p.Max.HTTP.Timeout, def.HTTP.Timeout); eff.HTTP.Timeout <= 0 || eff.HTTP.Timeout > c {
		if eff.HTTP.Timeout > c {
			cuts = append(cuts, Cut{"http.timeout", eff.HTTP.Timeout.String(), c.String()})
		}
		eff.HTTP.Timeout = c
	}
	if c := p.Max.Instances; c > 0 && (eff.Instances <= 0 || eff.Instances > c) {
		if eff.Instances > c {
			cuts = append(cuts, Cut{"limits.instances", fmt.Sprint(eff.Instances), fmt.Sprint(c)})
		}
		eff.Instances = c
	}
	if eff.CPU == "" {
		eff.CPU = CPUInterrupt
	}
	if eff.CPU == CPUUninterrupted && !slices.Contains(p.Trusted, handler) {
		cuts = append(cuts, Cut{"limits.cpu", string(CPUUninterrupted), string(CPUInterrupt) + " (the handler is not trusted)"})
		eff.CPU = CPUInterrupt
	}
	var kept, dropped []string
	for _, e := range asked.HTTP.Allow {
		if p.httpAllows(e) {
			kept = append(kept, e)
		} else {
			dropped = append(dropped, e)
		}
	}
	eff.HTTP.Allow = kept
	if len(dropped) > 0 {
		got := "[" + strings.Join(kept, ", ") + "]"
		cuts = append(cuts, Cut{"http.allow", "[" + strings.Join(asked.HTTP.Allow, ", ") + "]", got + " (outside the operator's allow-list: " + strings.Join(dropped, ", ") + ")"})
	}
	return eff, cuts
}

// httpAllows reports whether a manifest's allow entry falls inside the
// policy's HTTP ceiling.
func (p *Policy) httpAllows(entry string) bool {
	e, err := ParseHostPattern(entry)
	if err != nil {
		return false
	}
	if p.HTTPAllow == nil {
		return !e.Any() && !e.LinkLocal()
	}
	for _, c := range p.HTTPAllow {
		ce, err := ParseHostPattern(c)
		if err == nil && ce.Contains(e) {
			return true
		}
	}
	return false
}

// VariableHidden reports whether the policy keeps a variable from every
// handler.
func (p *Policy) VariableHidden(name string) bool {
	if matchAny(p.Hide, name) {
		return true
	}
	return slices.Contains(HiddenVariables, name) && !matchAny(p.Expose, name)
}

// Outlived returns the policy's MaxOutlived or its default.
func (p *Policy) Outlived() int {
	if p.MaxOutlived > 0 {
		return p.MaxOutlived
	}
	return DefaultMaxOutlived
}

// Stop is how a step that must end (timeout, cancel, shutdown) is ended.
type Stop struct {
	// Interrupt is how long a guest may run on after its step's context
	// ends, to notice (is_canceled, sleeps return early) and finish,
	// before it is interrupted wherever it is. Default 1 s.
	Interrupt time.Duration
	// Abandon is how long the engine waits for a handler to return after
	// its step's context ended before it reports the job without it.
	// Default 10 s; it must be longer than Interrupt.
	Abandon time.Duration
}

// Defaults of [Stop].
const (
	DefaultInterrupt = time.Second
	DefaultAbandon   = 10 * time.Second
)

// WithDefaults returns s with zero fields set to their defaults.
func (s Stop) WithDefaults() Stop {
	if s.Interrupt <= 0 {
		s.Interrupt = DefaultInterrupt
	}
	if s.Abandon <= 0 {
		s.Abandon = DefaultAbandon
	}
	return s
}
