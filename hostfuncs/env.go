package hostfuncs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

// ModuleName is the name of the host module guests import.
const ModuleName = abi.ModuleName

// Env is one job step as the guest sees it. The engine fills it before
// the step and attaches it to the context of the guest calls with
// [WithEnv]; host functions only read its fields. An Env must not be
// copied after first use.
type Env struct {
	// Log is the job log (masked downstream); log_write and log_line write
	// here, and so does the line explaining an ErrIO. It must be safe for
	// concurrent use if anything else writes to it during the step. Nil
	// discards the output.
	Log io.Writer
	// Sections opens and closes collapsible sections of the job log. Nil
	// ignores section_start and section_end.
	Sections SectionWriter
	// Job describes the job.
	Job JobInfo
	// Phase is the phase of the running step.
	Phase abi.Phase
	// Script holds the script lines of the running step.
	Script []string
	// Vars are the variables the handler may see, in the job's order: the
	// last entry of a name wins.
	Vars []Var
	// Hidden, if set, says why the job's variable name is hidden from the
	// handler (naming the manifest or policy key that hides it), or ""
	// when the job has no such variable or it is not hidden. var_get of a
	// hidden variable is ErrNotFound, as for one the job does not have,
	// and the job log says why, once per name.
	Hidden func(name string) string
	// Environ is the guest's WASI environment during the step ("KEY=value"
	// entries; see [InstantiateWASI]).
	Environ []string
	// Deps are the jobs whose artifacts this job depends on.
	Deps []Dependency
	// Artifacts receives the job's extra artifacts. Nil denies
	// artifact_add_file and artifact_add_data (ErrDenied).
	Artifacts ArtifactSink
	// Stop ends when the step should stop (cancel or timeout). sleep_ms
	// and is_canceled watch it, and blocking calls (HTTP, dependency
	// downloads) are cancelled by it; all of them watch the context of
	// the guest call as well. Nil never ends.
	Stop context.Context
	// HTTP is the handler's network policy. Nil denies http_request
	// (ErrDenied).
	HTTP *HTTPPolicy
	// Logger is the operator log (never the job log). It receives the
	// panics host functions recover from. Nil discards them.
	Logger *slog.Logger
	// Idle, if set, is told that the guest is about to wait for d without
	// running (sleep_ms), before the wait begins, so that the engine can
	// give back memory a waiting job does not need. It must return soon
	// and must not call back into the guest.
	Idle func(d time.Duration)

	mu           sync.Mutex
	line         []byte          // scratch for log_line, guarded by mu
	lastResponse []byte          // the last encoded HTTP response, guarded by mu
	saidHidden   map[string]bool // hidden variables the job log was told of, guarded by mu
}

// JobInfo holds the fields of a job a guest can read.
type JobInfo struct {
	// ID and ProjectID are the ids of the job and its project.
	ID, ProjectID int64
	// Name, Stage, ProjectName and Image (the image's name, or "") are the
	// job's text fields ([abi.Field]).
	Name, Stage, ProjectName, Image string
	// Timeout is the job's timeout; guests see it in whole seconds.
	Timeout time.Duration
}

// Var is a job variable.
type Var struct {
	Name, Value string
	// Masked reports whether the value is masked in the job log.
	Masked bool
}

// SectionWriter opens and closes collapsible sections of the job log.
type SectionWriter interface {
	// StartSection opens the section name with a header line.
	StartSection(name, header string)
	// EndSection closes the section name.
	EndSection(name string)
}

// Dependency is a job whose artifacts this job depends on. Files and Open
// may download the artifacts the first time; they must return soon after
// ctx ends. Errors that wrap [io/fs.ErrNotExist] mean that the dependency
// has no artifacts or no such file.
type Dependency interface {
	// ID returns the dependency's job id.
	ID() int64
	// Name returns the dependency's job name.
	Name() string
	// Files returns the paths of the files in the dependency's artifacts.
	Files(ctx context.Context) ([]string, error)
	// Open returns the content and size of a file of the dependency's
	// artifacts. The reader stays owned by the Dependency: host functions
	// use it during the call only and never close it.
	Open(ctx context.Context, name string) (io.ReaderAt, int64, error)
}

// ArtifactSink receives the files a guest adds to the job's artifacts.
// Errors that wrap [io/fs.ErrInvalid] (a path outside the build dir, a bad
// name) reach the guest as ErrInvalid, those that wrap [io/fs.ErrNotExist]
// as ErrNotFound, those that wrap [ErrLimit] as ErrTooLarge, others as
// ErrIO; the job log gets a line for the last two.
type ArtifactSink interface {
	// AddFile adds a file of the build dir (a relative path) to the
	// artifacts.
	AddFile(rel string) error
	// AddData writes data to name (relative to the build dir) and adds it
	// to the artifacts. data is a view of the guest's memory: it must not
	// be kept or used after AddData returns.
	AddData(name string, data []byte) error
}

// HTTPPolicy is what a handler may do over HTTP, and the format of
// http_request and http_response. Build one with [NewHTTPPolicy]; the zero
// HTTPPolicy, like a nil one, denies every request. A policy is safe for
// concurrent use by the jobs of its handler, and owns the connections it
// opens: they are never shared with another policy.
//
// A request is "METHOD URL\r\n", then zero or more header lines
// "Name: value\r\n", then an empty line "\r\n", then the body: all the
// remaining bytes (possibly none). METHOD is an HTTP token (GET, POST...);
// URL is absolute, http or https, with a host (and a port, if any, from 1
// to 65535). A header name is an HTTP token; spaces and tabs around a value
// are dropped; a value may not contain control characters other than tab.
// Repeated names add values. The Host header is not accepted (ErrInvalid):
// the host comes from the URL. A request that does not follow this format
// is ErrInvalid; one larger than [abi.MaxHTTPRequest] is ErrTooLarge.
//
// A URL whose scheme is not http or https, or whose host and port are not
// allowed by the policy's AllowedHosts ([HTTPOptions]), is ErrDenied
// before any connection is made; so is a redirect to such a URL
// (redirects are followed, at most 10). Every connection (redirects
// included) goes to an address checked first: the host is resolved once,
// and if any of its addresses is not on the public internet (unspecified,
// loopback, private, link-local such as the cloud metadata service
// 169.254.169.254, CGNAT, multicast, broadcast, or another range IANA
// marks as not globally reachable: documentation, benchmarking, reserved,
// IPv6 outside 2000::/3...; IPv4-mapped, NAT64 and 6to4 forms are judged
// by the IPv4 address they carry) and is not listed in AllowedHosts as an
// IP or CIDR, the request is ErrDenied without a connection; otherwise the
// connection goes to the checked addresses, never to the answer of a
// second lookup. Each denial writes one line to the job log saying what
// was refused and why.
//
// The response is "STATUS\r\n" (the status code in decimal, e.g. "200"),
// then one line "Name: value\r\n" per header value, names in canonical
// form and sorted, values of a name in the order received, then "\r\n",
// then the body. A response larger than MaxResponse, encoded so and
// headers included, is ErrTooLarge (with a line in the job log), and so
// are response headers of more than min(MaxResponse, 256 KiB) on the
// wire. A request that takes longer than Timeout is ErrIO; one cut short
// because the step stops is ErrCanceled.
//
// http_request returns the length of the encoded response and writes it
// to the guest's buffer if it fits; http_response returns the same
// response again until the next http_request, which forgets it first (so
// after a failed request http_response is ErrNotFound).
type HTTPPolicy struct {
	allow       []resource.HostPattern
	dropped     []resource.HostPattern // listed by the manifest, dropped by the operator's policy
	timeout     time.Duration
	maxResponse int64
	resolve     func(ctx context.Context, host string) ([]netip.Addr, error)
	dial        func(ctx context.Context, network, address string) (net.Conn, error)
	transport   *http.Transport // nil: the zero HTTPPolicy, which denies all
}

// HTTPOptions configures an [HTTPPolicy].
type HTTPOptions struct {
	// AllowedHosts lists where requests may go. An entry is:
	//   - "host" (any port) or "host:port": that name, compared
	//     case-insensitively, a trailing dot ignored;
	//   - "*.example.com", optionally with ":port": any subdomain of
	//     example.com, at any depth, but not example.com itself;
	//   - an IP address ("10.0.0.7", "::1", "[::1]:8080", "10.0.0.7:443") or a
	//     CIDR ("10.1.0.0/16", "fd00::/8", "[fd00::/8]:443",
	//     "10.1.0.0/16:443"): URLs whose host is an IP literal in it, and
	//     those very addresses when an allowed name resolves to them, even
	//     if they are not on the public internet.
	// An allowed name reaches the public internet only: an address that is
	// loopback, private, link-local and so on must be listed as an IP or
	// CIDR too. An entry that fits none of these forms never matches. An
	// empty list allows nothing.
	AllowedHosts []string
	// Dropped lists the entries of the handler's manifest that the
	// operator's policy dropped: nothing goes there, and a denial of a
	// host one of them matches says that the policy, not the manifest,
	// keeps it out.
	Dropped []string
	// Timeout bounds each request, redirects and body included; zero means
	// 30 s. Resolving and connecting get at most 30 s of it per connection.
	Timeout time.Duration
	// MaxResponse is the most bytes of a response, headers included, as
	// handed to the guest; zero means 10 MiB. Headers are also cut off on
	// the wire at min(MaxResponse, 256 KiB).
	MaxResponse int64
	// Resolve returns the addresses of a host name; nil uses
	// net.DefaultResolver.LookupNetIP. It is called once per connection
	// (never for an IP literal), and its answer is what is checked and
	// connected to.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Dial connects to an address that passed the checks ("ip:port", never
	// a name); nil uses a net.Dialer. Tests use it to watch connections.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// ErrLimit marks an error of a host service (an [ArtifactSink]) refused by
// one of the job's limits; the guest gets ErrTooLarge and the job log says
// which limit.
var ErrLimit = errors.New("limit reached")

type envKey struct{}

// WithEnv returns a copy of ctx that carries env: host functions reached
// by guest calls made with it act on env.
func WithEnv(ctx context.Context, env *Env) context.Context {
	return context.WithValue(ctx, envKey{}, env)
}

// initKey carries an *InitCalls: the module is being initialized outside
// any job (see WithInit).
type initKey struct{}

// InitCalls records what a module's initialization outside any job asked
// of the host.
type InitCalls struct {
	environ []string
	calls   atomic.Int64
}

// WithInit returns a copy of ctx for initializing a module outside any
// job (to take a snapshot of it): WASI's environment is environ, and the
// runner's host functions fail with [abi.ErrPhase], counted in the
// returned InitCalls.
func WithInit(ctx context.Context, environ []string) (context.Context, *InitCalls) {
	c := &InitCalls{environ: environ}
	return context.WithValue(ctx, initKey{}, c), c
}

// HostCalls is how many calls of the runner's host functions were made.
func (c *InitCalls) HostCalls() int64 { return c.calls.Load() }

func envFrom(ctx context.Context) *Env {
	e, _ := ctx.Value(envKey{}).(*Env)
	return e
}
