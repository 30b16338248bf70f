package fleet

import (
	"slices"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
)

// Runner is one runner entry: a runner token of a GitLab instance, the
// handlers its jobs run in and its bounds. Two entries of the same Name
// that are [Runner.Equal] are the same runner: a reload keeps it running.
type Runner struct {
	// Name identifies the entry in the fleet, its logs and metrics.
	Name string
	// URL is GitLab's; Token the runner authentication token (glrt-...).
	URL, Token string
	// TokenObtainedAt and TokenExpiresAt are when Token was made and when
	// it expires, as far as known (the config file's token_obtained_at and
	// token_expires_at); a zero TokenExpiresAt is asked of GitLab. A token
	// that expires is replaced when three quarters of its life have
	// passed (see [RotateAt]).
	TokenObtainedAt, TokenExpiresAt time.Time
	// RotateToken replaces a token that expires before it does. Several
	// processes that share one token must not: the first reset makes the
	// others' token invalid (see docs/deploy.md).
	RotateToken bool
	// TLS says how GitLab's certificate is checked and which client
	// certificate is shown.
	TLS gitlab.TLSOptions
	// Modules is a modules dir, or an oci:// reference of an artifact of
	// them.
	Modules string
	// Registry says how an oci:// Modules is pulled.
	Registry RegistryOptions
	// Handlers, when not empty, are the only handlers the runner's jobs
	// may use; DefaultHandler runs jobs without an image.
	Handlers       []string
	DefaultHandler string
	// BuildsDir holds the runner's jobs' build dirs, under BuildsDir/Name,
	// and its journal of jobs in flight, under [JournalDir].
	BuildsDir string
	// Concurrency bounds the runner's jobs (the process's job slots bound
	// all runners together).
	Concurrency int
	// CheckInterval is the wait between job requests while GitLab has
	// none; UpdateInterval, when not 0, the job log update interval (and
	// its cap, and the keep-alive interval of silent jobs).
	CheckInterval, UpdateInterval time.Duration
	// OutputLimit bounds each job's log in bytes.
	OutputLimit int64
	// ReportDeadline is how long a job's final update is retried while
	// GitLab is unreachable or failing (see engine.Config); 0: the
	// engine's default.
	ReportDeadline time.Duration
	// LoadTimeout is how long the runner waits for its handlers to load
	// before it starts with those loaded by then (default 30 s).
	LoadTimeout time.Duration
	// CompiledDir holds the compilation caches, one dir per runner
	// (default: Config.CacheDir/compiled); CacheMax bounds each.
	CompiledDir string
	CacheMax    int64
	// Policy is the operator's ceiling over the handlers' manifests.
	Policy resource.Policy
}

// RegistryOptions say how an oci:// modules reference is pulled.
type RegistryOptions struct {
	// PullInterval is how often a tag is re-resolved.
	PullInterval time.Duration
	// Insecure registries are reached over plain HTTP.
	Insecure []string
	// AuthFile is a docker config.json with credentials ("": the usual
	// places).
	AuthFile string
}

// Equal reports whether r and o are the same runner entry, every setting
// alike. Lists are equal when they hold the same entries in the same
// order; a nil list differs from an empty one where the two mean
// different things (Policy.HTTPAllow: nil is the default ceiling, empty
// allows no host).
func (r Runner) Equal(o Runner) bool {
	return r.Name == o.Name && r.URL == o.URL && r.Token == o.Token && r.TLS == o.TLS &&
		r.TokenObtainedAt.Equal(o.TokenObtainedAt) && r.TokenExpiresAt.Equal(o.TokenExpiresAt) && r.RotateToken == o.RotateToken &&
		r.Modules == o.Modules && r.Registry.equal(o.Registry) &&
		slices.Equal(r.Handlers, o.Handlers) && r.DefaultHandler == o.DefaultHandler &&
		r.BuildsDir == o.BuildsDir && r.Concurrency == o.Concurrency &&
		r.CheckInterval == o.CheckInterval && r.UpdateInterval == o.UpdateInterval &&
		r.OutputLimit == o.OutputLimit && r.ReportDeadline == o.ReportDeadline && r.LoadTimeout == o.LoadTimeout &&
		r.CompiledDir == o.CompiledDir && r.CacheMax == o.CacheMax &&
		policyEqual(r.Policy, o.Policy)
}

func (a RegistryOptions) equal(b RegistryOptions) bool {
	return a.PullInterval == b.PullInterval && slices.Equal(a.Insecure, b.Insecure) && a.AuthFile == b.AuthFile
}

// policyEqual compares two policies.
func policyEqual(a, b resource.Policy) bool {
	return limitsEqual(a.Max, b.Max) && slices.Equal(a.Trusted, b.Trusted) &&
		nilEqual(a.HTTPAllow, b.HTTPAllow) && slices.Equal(a.Expose, b.Expose) &&
		slices.Equal(a.Hide, b.Hide) && a.MaxOutlived == b.MaxOutlived
}

func limitsEqual(a, b resource.Limits) bool {
	return a.Memory == b.Memory && a.Timeout == b.Timeout && a.Log == b.Log && a.Disk == b.Disk &&
		a.Files == b.Files && a.OpenFiles == b.OpenFiles && a.Instances == b.Instances && a.CPU == b.CPU &&
		nilEqual(a.HTTP.Allow, b.HTTP.Allow) && a.HTTP.Timeout == b.HTTP.Timeout && a.HTTP.MaxResponse == b.HTTP.MaxResponse
}

// nilEqual is slices.Equal, but a nil list differs from an empty one.
func nilEqual(a, b []string) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}

// decision is what Apply does about one runner name.
type decision struct {
	name string
	// cancelLoad stops the load in progress (the entry was removed or
	// changed again).
	cancelLoad bool
	// load starts loading the entry: a new runner, or a changed one that
	// replaces the running one when ready.
	load bool
	// retire drains the running runner now (its entry was removed).
	retire bool
}

// plan decides what to do to go from the running (live) and loading
// entries to want; names that need nothing are left out. The result is
// sorted by name.
func plan(live, loading map[string]Runner, want []Runner) []decision {
	var out []decision
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.Name] = true
		l, isLoading := loading[w.Name]
		cur, isLive := live[w.Name]
		switch {
		case isLoading && l.Equal(w):
			// Already on its way.
		case isLive && cur.Equal(w):
			if isLoading { // changed, then changed back
				out = append(out, decision{name: w.Name, cancelLoad: true})
			}
		default:
			out = append(out, decision{name: w.Name, cancelLoad: isLoading, load: true})
		}
	}
	for name := range loading {
		if !wanted[name] {
			_, isLive := live[name]
			out = append(out, decision{name: name, cancelLoad: true, retire: isLive})
		}
	}
	for name := range live {
		if _, isLoading := loading[name]; !wanted[name] && !isLoading {
			out = append(out, decision{name: name, retire: true})
		}
	}
	slices.SortFunc(out, func(a, b decision) int {
		switch {
		case a.name < b.name:
			return -1
		case a.name > b.name:
			return 1
		}
		return 0
	})
	return out
}
