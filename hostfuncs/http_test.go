package hostfuncs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/internal/syncbuf"

	"github.com/tetratelabs/wazero"

	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

// server is an httptest server that counts connections and requests.
type server struct {
	*httptest.Server
	conns, hits atomic.Int32
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// hostPort is the server's "127.0.0.1:port".
func (s *server) hostPort() string { return strings.TrimPrefix(s.URL, "http://") }

// port is the server's port.
func (s *server) port() int { return s.Listener.Addr().(*net.TCPAddr).Port }

// policy returns a policy whose idle connections are closed at the end of
// the test.
func policy(t testing.TB, o hostfuncs.HTTPOptions) *hostfuncs.HTTPPolicy {
	p := hostfuncs.NewHTTPPolicy(o)
	t.Cleanup(p.CloseIdleConnections)
	return p
}

// httpGuest runs requests through the t_http export of guest.wat.
type httpGuest struct{ *guest }

const (
	reqAddr = 0x20000 // where the test writes requests
	respCap = 0x10000 // the largest response t_http can take
)

// do sends req with a response buffer of capacity bytes; it returns what
// t_http returned and the job log.
func (g httpGuest) do(ctx context.Context, p *hostfuncs.HTTPPolicy, req string, capacity uint32) (int64, string) {
	g.t.Helper()
	log := &syncbuf.Buffer{}
	env := &hostfuncs.Env{Log: log, HTTP: p, Stop: ctx, Logger: panicLog(g.t)}
	g.put(reqAddr, req)
	r := g.call32(hostfuncs.WithEnv(context.Background(), env), "t_http", reqAddr, uint64(len(req)), uint64(capacity))
	return r, log.String()
}

func TestHTTP(t *testing.T) {
	g := httpGuest{newGuest(t, "guest", wazero.NewRuntimeConfig())}
	other := newServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other") })
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Date"] = nil
		switch r.URL.Path {
		case "/echo":
			body, _ := io.ReadAll(r.Body)
			h.Set("Content-Type", "text/plain")
			h.Add("X-B", "2")
			h.Add("X-A", "1")
			h.Add("x-a", "0")
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, "%s %s?%s x-test=%q ua=%q body=%q", r.Method, r.URL.Path, r.URL.RawQuery,
				r.Header.Values("X-Test"), r.UserAgent(), body)
		case "/redirect-away":
			http.Redirect(w, r, other.URL+"/", http.StatusFound)
		case "/redirect-here":
			http.Redirect(w, r, "/echo", http.StatusFound)
		case "/big":
			h.Set("Content-Length", "1025")
			w.Write(make([]byte, 1025))
		case "/big-chunked":
			for range 5 {
				w.Write(make([]byte, 300))
				w.(http.Flusher).Flush()
			}
		case "/slow":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Minute):
			}
		default:
			http.NotFound(w, r)
		}
	})
	allow := func() *hostfuncs.HTTPPolicy {
		return policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{srv.hostPort()}, MaxResponse: 1024})
	}
	bg := context.Background()

	t.Run("round trip", func(t *testing.T) {
		req := "POST " + srv.URL + "/echo?q=1#frag\r\nX-Test: a\r\nx-test:\tb \r\nUser-Agent: wasm\r\n\r\nping\r\n\r\npong"
		body := `POST /echo?q=1 x-test=["a" "b"] ua="wasm" body="ping\r\n\r\npong"`
		want := fmt.Sprintf("201\r\nContent-Length: %d\r\nContent-Type: text/plain\r\nX-A: 1\r\nX-A: 0\r\nX-B: 2\r\n\r\n%s", len(body), body)
		r, log := g.do(bg, allow(), req, respCap)
		if r != int64(len(want)) || log != want {
			t.Errorf("t_http = %d, logged\n%q\nwant %d,\n%q", r, log, len(want), want)
		}
	})
	t.Run("response larger than cap", func(t *testing.T) {
		// t_http gets the length, then the response from http_response.
		req := "GET " + srv.URL + "/echo\r\n\r\n"
		r, log := g.do(bg, allow(), req, 10)
		if r <= 10 || !strings.HasPrefix(log, "201\r\n") || int64(len(log)) != r {
			t.Errorf("t_http = %d, logged %q", r, log)
		}
	})
	t.Run("redirect allowed", func(t *testing.T) {
		r, log := g.do(bg, allow(), "GET "+srv.URL+"/redirect-here\r\n\r\n", respCap)
		if r < 0 || !strings.HasPrefix(log, "201\r\n") {
			t.Errorf("t_http = %d, logged %q", r, log)
		}
	})
	t.Run("status", func(t *testing.T) {
		r, log := g.do(bg, allow(), "GET "+srv.URL+"/nothing\r\n\r\n", respCap)
		if r < 0 || !strings.HasPrefix(log, "404\r\n") {
			t.Errorf("t_http = %d, logged %q", r, log)
		}
	})

	const big = "response from " // ... is larger than
	for _, tc := range []struct {
		name   string
		policy *hostfuncs.HTTPPolicy
		req    string
		want   abi.Errno
		log    string // the job log, after "wasmrunner: http_request: "
	}{
		{"no policy", nil, "GET " + srv.URL + "/echo\r\n\r\n", abi.ErrDenied,
			`denied: 127.0.0.1: the handler's manifest has no [http] allow; to reach it, list it there: allow = ["127.0.0.1"]`},
		{"zero policy", &hostfuncs.HTTPPolicy{}, "GET " + srv.URL + "/echo\r\n\r\n", abi.ErrDenied,
			`denied: 127.0.0.1: the handler's manifest has no [http] allow; to reach it, list it there: allow = ["127.0.0.1"]`},
		{"host not allowed", policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{"example.com", "127.0.0.2", "localhost", "127.0.0.0/31:1"}}),
			"GET " + srv.URL + "/echo\r\n\r\n", abi.ErrDenied,
			fmt.Sprintf("denied: 127.0.0.1 (port %d) is not listed in [http] allow; to reach it, add \"127.0.0.1\" to [http] allow in the handler's manifest", srv.port())},
		{"other port", policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{other.hostPort()}}),
			"GET " + srv.URL + "/echo\r\n\r\n", abi.ErrDenied,
			fmt.Sprintf("denied: 127.0.0.1 (port %d) is not listed in [http] allow; to reach it, add \"127.0.0.1\" to [http] allow in the handler's manifest", srv.port())},
		{"dropped by the operator's policy", policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{"example.com"}, Dropped: []string{"127.0.0.0/8"}}),
			"GET " + srv.URL + "/echo\r\n\r\n", abi.ErrDenied,
			fmt.Sprintf(`denied: 127.0.0.1 (port %d) is listed in the handler's [http] allow (as "127.0.0.0/8"), but the operator's policy does not allow it (its http_allow)`, srv.port())},
		{"every entry dropped", policy(t, hostfuncs.HTTPOptions{Dropped: []string{"127.0.0.1"}}),
			"GET " + srv.URL + "/echo\r\n\r\n", abi.ErrDenied,
			fmt.Sprintf(`denied: 127.0.0.1 (port %d) is listed in the handler's [http] allow (as "127.0.0.1"), but the operator's policy does not allow it (its http_allow)`, srv.port())},
		{"scheme", allow(), "GET ftp://" + srv.hostPort() + "/\r\n\r\n", abi.ErrDenied,
			"denied: scheme ftp (only http and https)"},
		{"redirect to a host not allowed", allow(), "GET " + srv.URL + "/redirect-away\r\n\r\n", abi.ErrDenied,
			fmt.Sprintf("denied: redirect to 127.0.0.1 (port %d) is not listed in [http] allow; to reach it, add \"127.0.0.1\" to [http] allow in the handler's manifest", other.port())},
		{"body too large", allow(), "GET " + srv.URL + "/big\r\n\r\n", abi.ErrTooLarge,
			big + srv.hostPort() + " is larger than 1KiB ([http] max_body in the handler's manifest, headers included)"},
		{"chunked body too large", allow(), "GET " + srv.URL + "/big-chunked\r\n\r\n", abi.ErrTooLarge,
			big + srv.hostPort() + " is larger than 1KiB ([http] max_body in the handler's manifest, headers included)"},
		{"bad request", allow(), "GET " + srv.URL + "/echo HTTP/1.1\r\n\r\n", abi.ErrInvalid, ""},
		{"bad port", allow(), "GET http://127.0.0.1:65536/\r\n\r\n", abi.ErrInvalid, ""},
		{"port zero", allow(), "GET http://127.0.0.1:0/\r\n\r\n", abi.ErrInvalid, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srvHits, otherHits, conns := srv.hits.Load(), other.hits.Load(), srv.conns.Load()+other.conns.Load()
			r, log := g.do(bg, tc.policy, tc.req, respCap)
			if r != errno(tc.want) {
				t.Errorf("t_http = %s, want %s; log %q", fmtResult(r), fmtResult(errno(tc.want)), log)
			}
			if want := "wasmrunner: http_request: " + tc.log + "\n"; tc.log == "" && log != "" || tc.log != "" && log != want {
				t.Errorf("job log:\n%q\nwant\n%q", log, want)
			}
			if other.hits.Load() != otherHits || other.conns.Load()+srv.conns.Load() > conns+1 {
				t.Errorf("a denied host was reached")
			}
			if tc.want == abi.ErrDenied && !strings.Contains(tc.req, "redirect") &&
				(srv.hits.Load() != srvHits || srv.conns.Load()+other.conns.Load() != conns) {
				t.Errorf("the server was reached")
			}
			if tc.want == abi.ErrInvalid && srv.hits.Load() != srvHits {
				t.Errorf("the server was reached")
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		p := policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{srv.hostPort()}, Timeout: 100 * time.Millisecond})
		r, log := g.do(bg, p, "GET "+srv.URL+"/slow\r\n\r\n", respCap)
		if r != errno(abi.ErrIO) || !strings.HasPrefix(log, "wasmrunner: http_request: request timed out after 100ms") {
			t.Errorf("t_http = %s, log %q; want ErrIO and why", fmtResult(r), log)
		}
	})
	t.Run("stop", func(t *testing.T) {
		stop, cancel := context.WithCancel(bg)
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		r, log := g.do(stop, allow(), "GET "+srv.URL+"/slow\r\n\r\n", respCap)
		if r != errno(abi.ErrCanceled) || log != "" {
			t.Errorf("t_http = %s, log %q; want ErrCanceled", fmtResult(r), log)
		}
		if d := time.Since(start); d > time.Minute {
			t.Errorf("the request ended %v after the stop (the reply takes 10 minutes)", d)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		host := strings.TrimPrefix(dead.URL, "http://")
		r, log := g.do(bg, policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{host}}), "GET "+dead.URL+"/\r\n\r\n", respCap)
		if r != errno(abi.ErrIO) || !strings.HasPrefix(log, "wasmrunner: http_request: ") {
			t.Errorf("t_http = %s, log %q; want ErrIO and why", fmtResult(r), log)
		}
	})
}

// TestHTTPResponse: http_response returns the last response until the
// next request, which forgets it.
func TestHTTPResponse(t *testing.T) {
	g := newGuest(t, "hostile", wazero.NewRuntimeConfig())
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		io.WriteString(w, "hello")
	})
	env := &hostfuncs.Env{HTTP: policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{srv.hostPort()}}), Logger: panicLog(t)}
	ctx := hostfuncs.WithEnv(context.Background(), env)
	const want = "200\r\nContent-Length: 5\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello"
	req := "GET " + srv.URL + "/\r\n\r\n"
	g.put(0x100, req)
	if r := g.call32(ctx, abi.FuncHTTPResponse, 0, 0); r != errno(abi.ErrNotFound) {
		t.Errorf("http_response before a request = %s", fmtResult(r))
	}
	if r := g.call32(ctx, abi.FuncHTTPRequest, 0x100, uint64(len(req)), 0x1000, 4); r != int64(len(want)) {
		t.Fatalf("http_request = %s, want %d", fmtResult(r), len(want))
	}
	if got := g.get(0x1000, 4); got != "\x00\x00\x00\x00" {
		t.Errorf("http_request wrote %q into a buffer too small", got)
	}
	for range 2 {
		if r := g.call32(ctx, abi.FuncHTTPResponse, 0x1000, 0x1000); r != int64(len(want)) {
			t.Errorf("http_response = %s, want %d", fmtResult(r), len(want))
		}
		if got := g.get(0x1000, uint32(len(want))); got != want {
			t.Errorf("http_response wrote %q, want %q", got, want)
		}
	}
	if r := g.call32(ctx, abi.FuncHTTPResponse, 0x1000, 4); r != int64(len(want)) {
		t.Errorf("http_response with a small buffer = %s, want %d", fmtResult(r), len(want))
	}
	if r := g.call32(ctx, abi.FuncHTTPRequest, 0x30, 36, 0, 0); r != errno(abi.ErrInvalid) {
		t.Errorf("http_request with a bad request line = %s", fmtResult(r))
	}
	if r := g.call32(ctx, abi.FuncHTTPResponse, 0x1000, 0x1000); r != errno(abi.ErrNotFound) {
		t.Errorf("http_response after a failed request = %s, want ErrNotFound", fmtResult(r))
	}
}

// publicAddr stands for a host on the internet: the resolver of a test
// policy answers it for every name, and test dialers take connections to
// it elsewhere.
var publicAddr = netip.MustParseAddr("93.184.215.14")

// resolveTo returns a resolver that answers addrs for every name and
// counts its calls.
func resolveTo(calls *atomic.Int32, addrs ...string) func(context.Context, string) ([]netip.Addr, error) {
	return func(context.Context, string) ([]netip.Addr, error) {
		calls.Add(1)
		var out []netip.Addr
		for _, a := range addrs {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

// dialRecorder is a test dialer: it records the addresses it is asked to
// reach and connects to target instead, or fails if target is "".
type dialRecorder struct {
	target string
	mu     sync.Mutex
	addrs  []string
}

func (d *dialRecorder) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	if d.target == "" {
		return nil, errors.New("no network in this test")
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, d.target)
}

func (d *dialRecorder) dialed() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.addrs)
}

// TestHTTPAllowedHosts checks the allow-list and the request format
// without a network: every name resolves to publicAddr, and the dialer
// records where a connection would go and fails it.
func TestHTTPAllowedHosts(t *testing.T) {
	g := newGuest(t, "hostile", wazero.NewRuntimeConfig())
	pub := publicAddr.String()
	for _, tc := range []struct {
		allowed []string
		req     string
		want    abi.Errno // OK: a connection was made to dial
		dial    string
	}{
		{[]string{"example.com"}, "GET https://example.com/x\r\n\r\n", abi.OK, pub + ":443"},
		{[]string{"example.com"}, "GET http://EXAMPLE.com:8080/\r\n\r\n", abi.OK, pub + ":8080"},
		{[]string{"Example.COM"}, "GET https://example.com/\r\n\r\n", abi.OK, pub + ":443"},
		{[]string{" example.com "}, "GET https://example.com/\r\n\r\n", abi.OK, pub + ":443"},
		{[]string{"example.com."}, "GET https://example.com./\r\n\r\n", abi.OK, pub + ":443"},
		{[]string{"example.com:443"}, "GET https://example.com/\r\n\r\n", abi.OK, pub + ":443"},
		{[]string{"example.com:443"}, "GET http://example.com/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"example.com:80"}, "GET http://example.com:80/\r\n\r\n", abi.OK, pub + ":80"},
		{[]string{"example.com:443"}, "GET http://example.com:0443/\r\n\r\n", abi.OK, pub + ":0443"},
		{[]string{"example.com:"}, "GET http://example.com:80/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"example.com:0"}, "GET http://example.com:80/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"example.com:http"}, "GET http://example.com:80/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"example.com"}, "GET https://sub.example.com/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"example.com"}, "GET https://example.com.evil.test/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"example.com"}, "GET https://example.com@evil.test/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"example.com"}, "GET https://user:pw@example.com/\r\n\r\n", abi.OK, pub + ":443"},
		{[]string{"*.example.com"}, "GET https://a.b.example.com/\r\n\r\n", abi.OK, pub + ":443"},
		{[]string{"*.example.com"}, "GET https://example.com/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"*.example.com"}, "GET https://badexample.com/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"*.example.com:8443"}, "GET https://a.example.com:8443/\r\n\r\n", abi.OK, pub + ":8443"},
		{[]string{"*.example.com:8443"}, "GET https://a.example.com/\r\n\r\n", abi.ErrDenied, ""},
		// "*" (which only an operator's policy lets a manifest keep) allows
		// any host name, but grants no special address.
		{[]string{"*"}, "GET https://example.com/\r\n\r\n", abi.OK, pub + ":443"},
		{[]string{"*"}, "GET http://127.0.0.1/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"*."}, "GET https://example.com/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"*.*.com"}, "GET https://a.b.com/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{""}, "GET https://example.com/\r\n\r\n", abi.ErrDenied, ""},
		{nil, "GET https://example.com/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"example.com"}, "GET ftp://example.com/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"example.com"}, "GET file://example.com/etc/passwd\r\n\r\n", abi.ErrDenied, ""},

		// IP literals and CIDRs.
		{[]string{"[::1]:8080"}, "GET http://[::1]:8080/\r\n\r\n", abi.OK, "[::1]:8080"},
		{[]string{"::1"}, "GET http://[::1]:8080/\r\n\r\n", abi.OK, "[::1]:8080"},
		{[]string{"[::1]"}, "GET http://[::1]:8080/\r\n\r\n", abi.OK, "[::1]:8080"},
		{[]string{"[::1]:8080"}, "GET http://[::1]:8081/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"::1"}, "GET http://[::2]/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"10.1.0.0/16"}, "GET http://10.1.2.3/\r\n\r\n", abi.OK, "10.1.2.3:80"},
		{[]string{"10.1.2.3/16"}, "GET http://10.1.200.3/\r\n\r\n", abi.OK, "10.1.200.3:80"},
		{[]string{"10.1.0.0/16"}, "GET http://10.2.0.1/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"10.1.0.0/16:443"}, "GET https://10.1.2.3/\r\n\r\n", abi.OK, "10.1.2.3:443"},
		{[]string{"10.1.0.0/16:443"}, "GET http://10.1.2.3/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"10.1.0.0/33"}, "GET http://10.1.2.3/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"fd00::/8"}, "GET http://[fd12::1]/\r\n\r\n", abi.OK, "[fd12::1]:80"},
		{[]string{"[fd00::/8]:443"}, "GET https://[fd12::1]/\r\n\r\n", abi.OK, "[fd12::1]:443"},
		{[]string{"[fd00::/8]:443"}, "GET http://[fd12::1]/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"::ffff:10.0.0.0/104"}, "GET http://10.0.0.1/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"::ffff:127.0.0.1"}, "GET http://127.0.0.1/\r\n\r\n", abi.OK, "127.0.0.1:80"},
		{[]string{"127.0.0.1"}, "GET http://[::ffff:127.0.0.1]/\r\n\r\n", abi.OK, "127.0.0.1:80"},
		{[]string{"127.0.0.1"}, "GET http://localhost/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"127.0.0.1"}, "GET http://2130706433/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"10.0.0.0/8"}, "GET http://10.0.0.1.nip.io/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"0.0.0.0/0"}, "GET http://example.com/\r\n\r\n", abi.ErrDenied, ""},
		{[]string{"0.0.0.0/0"}, "GET http://169.254.169.254/\r\n\r\n", abi.OK, "169.254.169.254:80"},

		// Malformed requests.
		{[]string{"x"}, "GET http://x/\r\n\r\n", abi.OK, pub + ":80"},
		{[]string{"x"}, "GET http://x/\r\n\r\nbody\r\n\r\nmore", abi.OK, pub + ":80"},
		{[]string{"x"}, "GET http://x/\r\nX: a\r\nX-Y-Z: \r\n\r\n", abi.OK, pub + ":80"},
		{[]string{"x"}, "", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\r\nX: y\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\n\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, " http://x/\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET  http://x/\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "G(T http://x/\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/ HTTP/1.1\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET /relative\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http:///nohost\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x:99999/\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\x00\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\r\nNo colon\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\r\nBad Name: v\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\r\n: v\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\r\nX: a\x01b\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\r\nX: a\nb\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\r\nHost: y\r\n\r\n", abi.ErrInvalid, ""},
		{[]string{"x"}, "GET http://x/\r\nhost: x\r\n\r\n", abi.ErrInvalid, ""},
	} {
		var lookups atomic.Int32
		d := &dialRecorder{}
		log := &syncbuf.Buffer{}
		p := policy(t, hostfuncs.HTTPOptions{AllowedHosts: tc.allowed, Resolve: resolveTo(&lookups, pub), Dial: d.dial})
		env := &hostfuncs.Env{Log: log, HTTP: p, Logger: panicLog(t)}
		ctx := hostfuncs.WithEnv(context.Background(), env)
		g.put(0x100, tc.req)
		r := g.call32(ctx, abi.FuncHTTPRequest, 0x100, uint64(len(tc.req)), 0, 0)
		want := errno(tc.want)
		if tc.want == abi.OK {
			want = errno(abi.ErrIO) // the dialer fails
		}
		if r != want {
			t.Errorf("allowed %q, request %q: %s, want %s; log %q", tc.allowed, tc.req, fmtResult(r), fmtResult(want), log)
		}
		var wantDials []string
		if tc.dial != "" {
			wantDials = []string{tc.dial}
		}
		if got := d.dialed(); !slices.Equal(got, wantDials) {
			t.Errorf("allowed %q, request %q: dialed %q, want %q", tc.allowed, tc.req, got, wantDials)
		}
		switch l := log.String(); tc.want {
		case abi.ErrDenied:
			if !strings.HasPrefix(l, "wasmrunner: http_request: denied: ") || strings.Count(l, "\n") != 1 {
				t.Errorf("allowed %q, request %q: job log %q, want one line saying why", tc.allowed, tc.req, l)
			}
		case abi.ErrInvalid:
			if l != "" {
				t.Errorf("allowed %q, request %q: job log %q", tc.allowed, tc.req, l)
			}
		}
		if tc.want != abi.OK && lookups.Load() != 0 {
			t.Errorf("allowed %q, request %q: the host was resolved", tc.allowed, tc.req)
		}
	}
}

// TestHTTPRequestFormat checks what the server receives.
func TestHTTPRequestFormat(t *testing.T) {
	g := newGuest(t, "hostile", wazero.NewRuntimeConfig())
	var got *http.Request
	var body string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
	})
	var lookups atomic.Int32
	d := &dialRecorder{target: srv.hostPort()}
	p := policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{"api.example.com"}, Resolve: resolveTo(&lookups, publicAddr.String()), Dial: d.dial})
	env := &hostfuncs.Env{HTTP: p}
	ctx := hostfuncs.WithEnv(context.Background(), env)
	req := "PUT http://api.example.com/v1/x?a=b#frag\r\nAuthorization: Bearer t\r\nX-Multi: 1\r\nx-multi:  2\t\r\n\r\n{\"k\":1}"
	g.put(0x100, req)
	if r := g.call32(ctx, abi.FuncHTTPRequest, 0x100, uint64(len(req)), 0, 0); r < 0 {
		t.Fatalf("http_request = %s", fmtResult(r))
	}
	if got.Method != "PUT" || got.Host != "api.example.com" || got.URL.String() != "/v1/x?a=b" ||
		got.Header.Get("Authorization") != "Bearer t" || strings.Join(got.Header.Values("X-Multi"), ",") != "1,2" ||
		body != `{"k":1}` || got.ContentLength != 7 {
		t.Errorf("sent %s %s %s %q body %q (length %d)", got.Method, got.Host, got.URL, got.Header, body, got.ContentLength)
	}
	if dialed := d.dialed(); len(dialed) != 1 || dialed[0] != publicAddr.String()+":80" || lookups.Load() != 1 {
		t.Errorf("dialed %q after %d lookups", dialed, lookups.Load())
	}
}
