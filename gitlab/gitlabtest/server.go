package gitlabtest

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// Endpoint names one call of the runner API, for fault injection and the
// request log.
type Endpoint string

// The runner API endpoints the fake serves.
const (
	EndpointRequestJob   Endpoint = "request_job"        // POST /api/v4/jobs/request
	EndpointTrace        Endpoint = "trace"              // PATCH /api/v4/jobs/:id/trace
	EndpointUpdate       Endpoint = "update"             // PUT /api/v4/jobs/:id
	EndpointUpload       Endpoint = "upload_artifacts"   // POST /api/v4/jobs/:id/artifacts
	EndpointDownload     Endpoint = "download_artifacts" // GET /api/v4/jobs/:id/artifacts
	EndpointVerify       Endpoint = "verify_runner"      // POST /api/v4/runners/verify
	EndpointRegister     Endpoint = "register_runner"    // POST /api/v4/runners
	EndpointCreateRunner Endpoint = "create_runner"      // POST /api/v4/user/runners
	EndpointResetToken   Endpoint = "reset_token"        // POST /api/v4/runners/reset_authentication_token
	EndpointUnregister   Endpoint = "unregister_runner"  // DELETE /api/v4/runners
)

// Request is one entry of the request log: an HTTP request the server
// received and how it was answered.
type Request struct {
	Time     time.Time // when the request arrived
	Method   string
	Path     string
	RawQuery string
	// Endpoint is the runner API call the request was routed to, or ""
	// for requests to unknown paths and to the fake object storage.
	Endpoint Endpoint
	// Status is the reply's status code; 0 while the request is being
	// handled or when the connection was reset without a reply.
	Status int
	// Fault describes the fault injected into this request, or "".
	Fault string
}

// config holds what the Options set.
type config struct {
	traceInterval     time.Duration
	longPoll          time.Duration
	registrationToken string
	accessToken       string
	maxArtifactSize   int64
	artifactRedirect  bool
	tokenLifetime     time.Duration
	now               func() time.Time
}

// Option configures a Server created by NewServer.
type Option func(*config)

// WithTraceUpdateInterval sets the trace update interval the server asks
// for in X-GitLab-Trace-Update-Interval, sent in whole seconds (at least 1).
// The default is 3 seconds.
func WithTraceUpdateInterval(d time.Duration) Option {
	return func(c *config) { c.traceInterval = d }
}

// WithLongPoll makes jobs/request wait up to d for a job before answering
// 204. The default, 0, answers at once.
func WithLongPoll(d time.Duration) Option {
	return func(c *config) { c.longPoll = d }
}

// WithRegistrationToken sets the legacy registration token accepted by
// POST runners. The default is a random "GR1348941" token.
func WithRegistrationToken(tok string) Option {
	return func(c *config) { c.registrationToken = tok }
}

// WithAccessToken sets the personal access token accepted by POST
// user/runners. The default is a random "glpat-" token.
func WithAccessToken(tok string) Option {
	return func(c *config) { c.accessToken = tok }
}

// WithMaxArtifactSize sets the largest artifact file accepted; a bigger
// upload is answered 413. The default is 100 MiB.
func WithMaxArtifactSize(n int64) Option {
	return func(c *config) { c.maxArtifactSize = n }
}

// WithArtifactRedirect makes artifact downloads answer 302 to a fake
// object storage run by the same Server on another port of 127.0.0.1 (so
// another host for HTTP clients), at /_storage/<random>. It serves the
// archive only to requests without a JOB-TOKEN (or PRIVATE-TOKEN) header;
// a request that carries one there is a token leak: it is answered 400 and
// recorded in Violations.
func WithArtifactRedirect() Option {
	return func(c *config) { c.artifactRedirect = true }
}

// WithTokenLifetime makes runner authentication tokens expire d after
// they are made (the server's RunnerToken, those of AddRunner, register
// and reset_authentication_token): GitLab's runner token expiration
// setting. An expired token is answered 403, as a wrong one. The default,
// 0, makes tokens that never expire.
func WithTokenLifetime(d time.Duration) Option {
	return func(c *config) { c.tokenLifetime = d }
}

// WithClock makes now the server's clock for token expiry (a test's
// simulated clock); the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// Server is a fake GitLab serving the runner API. Create it with NewServer
// and stop it with Close.
type Server struct {
	// URL is the base URL of the server, "http://127.0.0.1:PORT", without
	// the /api/v4 prefix.
	URL string
	// RunnerToken is a valid runner authentication token ("glrt-...").
	RunnerToken string

	cfg        config
	ln         net.Listener // the API
	storageLn  net.Listener // the fake object storage
	storageURL string
	srv        *http.Server
	serving    sync.WaitGroup // Serve loops
	closedCh   chan struct{}
	closeOnce  sync.Once
	handlers   sync.WaitGroup // running handlers
	conns      sync.WaitGroup // open, not hijacked connections

	connMu    sync.Mutex
	connState map[net.Conn]http.ConnState
	connsShut bool
	accepted  int // connections accepted, for Connections

	mu             sync.Mutex
	closed         bool
	down           bool          // Down: every request answered 503
	changed        chan struct{} // closed and replaced on every change
	version        int64
	nextJobID      int64
	jobs           map[int64]*job
	order          []int64
	settled        int              // s.order[:settled] holds no pending job
	dependents     []int64          // pending jobs that have dependencies (see settleLocked)
	runners        map[string]int64 // runner token -> runner id
	expires        map[string]time.Time
	nextRunnerID   int64
	requests       []Request
	violations     []string
	lastJobRequest gitlab.JobRequest
	faults         []*fault
	storage        map[string][]byte
	sha            string
	repos          map[string]*Repo // by path, without .git
}

// NewServer starts a fake GitLab listening on a random port of 127.0.0.1
// (and on another one for its fake object storage). It panics if it cannot
// listen, as httptest.NewServer does.
func NewServer(opts ...Option) *Server {
	cfg := config{
		traceInterval:     3 * time.Second,
		registrationToken: "GR1348941" + randomString(20),
		accessToken:       "glpat-" + randomString(20),
		maxArtifactSize:   100 << 20,
		now:               time.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("gitlabtest: failed to listen on 127.0.0.1: %v", err))
	}
	// Object storage lives on another host than GitLab; another port
	// makes it another host for HTTP clients.
	storageLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		panic(fmt.Sprintf("gitlabtest: failed to listen on 127.0.0.1: %v", err))
	}
	s := &Server{
		URL:         "http://" + ln.Addr().String(),
		RunnerToken: "glrt-" + randomString(20),
		cfg:         cfg,
		ln:          ln,
		storageLn:   storageLn,
		storageURL:  "http://" + storageLn.Addr().String(),
		closedCh:    make(chan struct{}),
		connState:   make(map[net.Conn]http.ConnState),
		changed:     make(chan struct{}),
		nextJobID:   1000,
		jobs:        make(map[int64]*job),
		runners:     make(map[string]int64),
		expires:     make(map[string]time.Time),
		storage:     make(map[string][]byte),
		sha:         randomHex(40),
	}
	s.runners[s.RunnerToken] = 1
	if cfg.tokenLifetime > 0 {
		s.expires[s.RunnerToken] = cfg.now().Add(cfg.tokenLifetime)
	}
	s.nextRunnerID = 2
	s.srv = &http.Server{
		Handler:   http.HandlerFunc(s.serveHTTP),
		ErrorLog:  log.New(io.Discard, "", 0),
		ConnState: s.trackConn,
	}
	for _, l := range []net.Listener{ln, storageLn} {
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			_ = s.srv.Serve(l)
		}()
	}
	return s
}

// AddRunner creates another runner of the server and returns its
// authentication token ("glrt-..."), for tests that serve several runners
// (tenants) from one fake GitLab; JobBuilder.ForRunner routes a job to
// one of them.
func (s *Server) AddRunner() string { return s.newRunner().Token }

// RegistrationToken returns the legacy registration token POST runners
// accepts.
func (s *Server) RegistrationToken() string { return s.cfg.registrationToken }

// AccessToken returns the personal access token POST user/runners accepts.
func (s *Server) AccessToken() string { return s.cfg.accessToken }

// Close stops the server: waiting long polls and delays return, idle
// connections are closed, and Close waits for requests in progress to
// finish. Calling Close more than once is harmless.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.closedCh)
		s.notifyLocked()
		s.mu.Unlock()

		_ = s.ln.Close()
		_ = s.storageLn.Close()
		s.srv.SetKeepAlivesEnabled(false)
		s.connMu.Lock()
		s.connsShut = true
		for c, st := range s.connState {
			if st == http.StateNew || st == http.StateIdle {
				_ = c.Close()
			}
		}
		s.connMu.Unlock()
		// A client stalling in the middle of a request body would keep
		// its connection busy for ever; cut it off after a while.
		force := time.AfterFunc(2*time.Second, func() {
			s.connMu.Lock()
			for c := range s.connState {
				_ = c.Close()
			}
			s.connMu.Unlock()
		})
		s.serving.Wait()
		s.conns.Wait()
		s.handlers.Wait()
		force.Stop()
	})
}

// Down takes the server down, as a GitLab outage seen through its load
// balancer: until [Server.Up], every request (runner API, git, object
// storage) is answered 503 Service Unavailable, logged with the fault
// "down", and changes nothing. Requests in progress finish.
func (s *Server) Down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = true
}

// Up ends [Server.Down]: requests are served again, with the state the
// server had.
func (s *Server) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
}

// trackConn follows connection states so that Close can close idle
// connections and wait for busy ones.
func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	switch st {
	case http.StateNew:
		s.conns.Add(1)
		s.accepted++
		s.connState[c] = st
		if s.connsShut {
			_ = c.Close()
		}
	case http.StateActive:
		s.connState[c] = st
	case http.StateIdle:
		s.connState[c] = st
		if s.connsShut {
			_ = c.Close()
		}
	case http.StateHijacked, http.StateClosed:
		if _, ok := s.connState[c]; ok {
			delete(s.connState, c)
			s.conns.Done()
		}
	}
}

// Connections returns how many connections the runner API's listener
// has accepted so far: a client that reuses its connections opens few.
func (s *Server) Connections() int {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	return s.accepted
}

// Requests returns the request log, in the order requests arrived.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Violations returns the protocol violations the server noticed that
// GitLab would let pass silently or that point to a client bug, such as a
// job token sent to object storage or a trace patch without Content-Type.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// LastJobRequest returns the last jobs/request body the server decoded,
// as sent (token included).
func (s *Server) LastJobRequest() gitlab.JobRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastJobRequest
}

func (s *Server) violationLocked(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func (s *Server) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violationLocked(format, args...)
}

// notifyLocked wakes everything waiting for a change.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// changedLocked settles dependencies after a state change, moves the
// queue version on and wakes waiters.
func (s *Server) changedLocked() {
	s.settleLocked()
	s.advanceSettledLocked()
	s.version++
	s.notifyLocked()
}

// lastUpdateLocked is the X-GitLab-Last-Update value: it changes whenever
// the queue does.
func (s *Server) lastUpdateLocked() string {
	return "q" + strconv.FormatInt(s.version, 10)
}

func (s *Server) traceIntervalHeader() string {
	n := int64(s.cfg.traceInterval / time.Second)
	if n < 1 {
		n = 1
	}
	return strconv.FormatInt(n, 10)
}

// reqInfo is what a handler knows about the request beyond net/http.
type reqInfo struct {
	idx int   // index in the request log
	id  int64 // job id from the path, if any
}

// recorder enters the status of a reply in the request log before the
// reply can reach the client.
type recorder struct {
	http.ResponseWriter
	status   int
	onStatus func(int)
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		r.onStatus(code)
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type handlerFunc func(w http.ResponseWriter, r *http.Request, ri *reqInfo)

// serveHTTP logs the request, routes it, applies injected faults and runs
// the endpoint's handler.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		w.Header().Set("Connection", "close")
		writeReply(w, errReply(http.StatusServiceUnavailable, "503 Service Unavailable"))
		return
	}
	s.handlers.Add(1)
	defer s.handlers.Done()
	ri := &reqInfo{idx: len(s.requests)}
	s.requests = append(s.requests, Request{
		Time:     time.Now(),
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
	})
	if s.down {
		s.requests[ri.idx].Status = http.StatusServiceUnavailable
		s.requests[ri.idx].Fault = "down"
		s.mu.Unlock()
		writeReply(w, errReply(http.StatusServiceUnavailable, "503 Service Unavailable"))
		return
	}
	s.mu.Unlock()

	rec := &recorder{ResponseWriter: w, onStatus: func(code int) {
		s.mu.Lock()
		s.requests[ri.idx].Status = code
		s.mu.Unlock()
	}}

	ep, h, rep := s.route(r, ri)
	s.mu.Lock()
	s.requests[ri.idx].Endpoint = ep
	if rep != nil {
		s.mu.Unlock()
		writeReply(rec, rep)
		return
	}
	f := s.takeFaultLocked(ep, func(f *fault) bool {
		switch f.kind {
		case faultStatus, faultDelay, faultReset:
			return true
		case faultRedirect:
			return r.URL.Query().Get("redirected") == ""
		}
		return false
	})
	if f != nil {
		s.requests[ri.idx].Fault = f.String()
	}
	s.mu.Unlock()
	if f != nil {
		switch f.kind {
		case faultStatus:
			rep := errReply(f.status, "fault injected")
			if f.retryAfter > 0 {
				secs := int64((f.retryAfter + time.Second - 1) / time.Second)
				rep.header.Set("Retry-After", strconv.FormatInt(secs, 10))
			}
			writeReply(rec, rep)
			return
		case faultReset:
			s.reset(rec)
			return
		case faultRedirect:
			loc := s.URL + r.URL.Path + "?"
			if r.URL.RawQuery != "" {
				loc += r.URL.RawQuery + "&"
			}
			loc += "redirected=1"
			rep := jsonReply(http.StatusTemporaryRedirect, map[string]string{"message": "307 Temporary Redirect"})
			rep.header.Set("Location", loc)
			writeReply(rec, rep)
			return
		case faultDelay:
			t := time.NewTimer(f.delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
			case <-s.closedCh:
			}
			t.Stop()
		}
	}
	h(rec, r, ri)
}

// reset closes the connection with a TCP RST, without replying.
func (s *Server) reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Cannot hijack (never the case for HTTP/1.1): fail loudly instead.
		writeReply(w, errReply(http.StatusInternalServerError, "reset fault: cannot hijack connection"))
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// route picks the endpoint and handler for r. A non-nil reply answers the
// request at once (unknown path, malformed job id).
func (s *Server) route(r *http.Request, ri *reqInfo) (Endpoint, handlerFunc, *reply) {
	path := r.URL.Path
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && addr.String() == s.storageLn.Addr().String() {
		if key, ok := strings.CutPrefix(path, "/_storage/"); ok && r.Method == http.MethodGet {
			return "", func(w http.ResponseWriter, r *http.Request, _ *reqInfo) { s.handleStorage(w, r, key) }, nil
		}
		return "", nil, notFound()
	}
	if repo, rest := s.repoFor(path); repo != nil {
		switch {
		case rest == "info/refs" && r.Method == http.MethodGet:
			return EndpointGitInfoRefs, func(w http.ResponseWriter, r *http.Request, _ *reqInfo) { s.handleGit(w, r, repo, EndpointGitInfoRefs) }, nil
		case rest == "git-upload-pack" && r.Method == http.MethodPost:
			return EndpointGitUploadPack, func(w http.ResponseWriter, r *http.Request, _ *reqInfo) {
				s.handleGit(w, r, repo, EndpointGitUploadPack)
			}, nil
		}
		return "", nil, notFound()
	}
	rest, ok := strings.CutPrefix(path, "/api/v4/")
	if !ok {
		return "", nil, notFound()
	}
	parts := strings.Split(rest, "/")
	m := r.Method
	switch {
	case len(parts) == 2 && parts[0] == "jobs" && parts[1] == "request" && m == http.MethodPost:
		return EndpointRequestJob, s.handleRequestJob, nil
	case len(parts) == 2 && parts[0] == "runners" && parts[1] == "verify" && m == http.MethodPost:
		return EndpointVerify, s.handleVerify, nil
	case len(parts) == 1 && parts[0] == "runners" && m == http.MethodPost:
		return EndpointRegister, s.handleRegister, nil
	case len(parts) == 2 && parts[0] == "user" && parts[1] == "runners" && m == http.MethodPost:
		return EndpointCreateRunner, s.handleCreateRunner, nil
	case len(parts) == 2 && parts[0] == "runners" && parts[1] == "reset_authentication_token" && m == http.MethodPost:
		return EndpointResetToken, s.handleResetToken, nil
	case len(parts) == 1 && parts[0] == "runners" && m == http.MethodDelete:
		return EndpointUnregister, s.handleUnregister, nil
	}
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "jobs" {
		return "", nil, notFound()
	}
	var ep Endpoint
	var h handlerFunc
	switch {
	case len(parts) == 2 && m == http.MethodPut:
		ep, h = EndpointUpdate, s.handleUpdate
	case len(parts) == 3 && parts[2] == "trace" && m == http.MethodPatch:
		ep, h = EndpointTrace, s.handleTrace
	case len(parts) == 3 && parts[2] == "artifacts" && m == http.MethodPost:
		ep, h = EndpointUpload, s.handleUpload
	case len(parts) == 3 && parts[2] == "artifacts" && m == http.MethodGet:
		ep, h = EndpointDownload, s.handleDownload
	default:
		return "", nil, notFound()
	}
	id, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return ep, nil, errReply(http.StatusBadRequest, "id is invalid")
	}
	ri.id = id
	return ep, h, nil
}

func notFound() *reply { return errReply(http.StatusNotFound, "404 Not Found") }
