package hostfuncs_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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
			case <-time.After(10 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	})
	allow := func() *hostfuncs.HTTPPolicy {
		return &hostfuncs.HTTPPolicy{AllowedHosts: []string{srv.hostPort()}, MaxBody: 1024}
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

	for _, tc := range []struct {
		name   string
		policy *hostfuncs.HTTPPolicy
		req    string
		want   abi.Errno
	}{
		{"no policy", nil, "GET " + srv.URL + "/echo\r\n\r\n", abi.ErrDenied},
		{"host not allowed", &hostfuncs.HTTPPolicy{AllowedHosts: []string{"example.com", "127.0.0.2", "localhost"}},
			"GET " + srv.URL + "/echo\r\n\r\n", abi.ErrDenied},
		{"other port", &hostfuncs.HTTPPolicy{AllowedHosts: []string{other.hostPort()}},
			"GET " + srv.URL + "/echo\r\n\r\n", abi.ErrDenied},
		{"redirect to a host not allowed", allow(), "GET " + srv.URL + "/redirect-away\r\n\r\n", abi.ErrDenied},
		{"body too large", allow(), "GET " + srv.URL + "/big\r\n\r\n", abi.ErrTooLarge},
		{"chunked body too large", allow(), "GET " + srv.URL + "/big-chunked\r\n\r\n", abi.ErrTooLarge},
		{"bad request", allow(), "GET " + srv.URL + "/echo HTTP/1.1\r\n\r\n", abi.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srvHits, otherHits, conns := srv.hits.Load(), other.hits.Load(), srv.conns.Load()+other.conns.Load()
			r, log := g.do(bg, tc.policy, tc.req, respCap)
			if r != errno(tc.want) {
				t.Errorf("t_http = %s, want %s; log %q", fmtResult(r), fmtResult(errno(tc.want)), log)
			}
			if log != "" {
				t.Errorf("job log: %q", log)
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
		p := allow()
		p.Timeout = 100 * time.Millisecond
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
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the request ended %v after the stop", d)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		host := strings.TrimPrefix(dead.URL, "http://")
		r, log := g.do(bg, &hostfuncs.HTTPPolicy{AllowedHosts: []string{host}}, "GET "+dead.URL+"/\r\n\r\n", respCap)
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
	env := &hostfuncs.Env{HTTP: &hostfuncs.HTTPPolicy{AllowedHosts: []string{srv.hostPort()}}, Logger: panicLog(t)}
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

// TestHTTPAllowedHosts checks the allow-list and the request format
// without a network: the client's transport records what would be sent.
func TestHTTPAllowedHosts(t *testing.T) {
	g := newGuest(t, "hostile", wazero.NewRuntimeConfig())
	var sent []*http.Request
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r)
		return &http.Response{StatusCode: 204, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})}
	for _, tc := range []struct {
		allowed []string
		req     string
		want    abi.Errno // OK: sent
	}{
		{[]string{"example.com"}, "GET https://example.com/x\r\n\r\n", abi.OK},
		{[]string{"example.com"}, "GET http://EXAMPLE.com:8080/\r\n\r\n", abi.OK},
		{[]string{"Example.COM"}, "GET https://example.com/\r\n\r\n", abi.OK},
		{[]string{"example.com."}, "GET https://example.com./\r\n\r\n", abi.OK},
		{[]string{"example.com:443"}, "GET https://example.com/\r\n\r\n", abi.OK},
		{[]string{"example.com:443"}, "GET http://example.com/\r\n\r\n", abi.ErrDenied},
		{[]string{"example.com:80"}, "GET http://example.com:80/\r\n\r\n", abi.OK},
		{[]string{"example.com"}, "GET https://sub.example.com/\r\n\r\n", abi.ErrDenied},
		{[]string{"example.com"}, "GET https://example.com.evil.test/\r\n\r\n", abi.ErrDenied},
		{[]string{"example.com"}, "GET https://example.com@evil.test/\r\n\r\n", abi.ErrDenied},
		{[]string{"example.com"}, "GET https://user:pw@example.com/\r\n\r\n", abi.OK},
		{[]string{"*.example.com"}, "GET https://a.b.example.com/\r\n\r\n", abi.OK},
		{[]string{"*.example.com"}, "GET https://example.com/\r\n\r\n", abi.ErrDenied},
		{[]string{"*.example.com"}, "GET https://badexample.com/\r\n\r\n", abi.ErrDenied},
		{[]string{"*.example.com:8443"}, "GET https://a.example.com:8443/\r\n\r\n", abi.OK},
		{[]string{"*.example.com:8443"}, "GET https://a.example.com/\r\n\r\n", abi.ErrDenied},
		{[]string{"*"}, "GET https://example.com/\r\n\r\n", abi.ErrDenied},
		{[]string{"*."}, "GET https://example.com/\r\n\r\n", abi.ErrDenied},
		{[]string{""}, "GET https://example.com/\r\n\r\n", abi.ErrDenied},
		{nil, "GET https://example.com/\r\n\r\n", abi.ErrDenied},
		{[]string{"[::1]:8080"}, "GET http://[::1]:8080/\r\n\r\n", abi.OK},
		{[]string{"::1"}, "GET http://[::1]:8080/\r\n\r\n", abi.OK},
		{[]string{"[::1]:8080"}, "GET http://[::1]:8081/\r\n\r\n", abi.ErrDenied},
		{[]string{"example.com"}, "GET ftp://example.com/\r\n\r\n", abi.ErrDenied},
		{[]string{"example.com"}, "GET file://example.com/etc/passwd\r\n\r\n", abi.ErrDenied},

		// Malformed requests.
		{[]string{"x"}, "GET http://x/\r\n\r\n", abi.OK},
		{[]string{"x"}, "GET http://x/\r\n\r\nbody\r\n\r\nmore", abi.OK},
		{[]string{"x"}, "GET http://x/\r\nX: a\r\nX-Y-Z: \r\n\r\n", abi.OK},
		{[]string{"x"}, "", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\r\nX: y\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\n\n", abi.ErrInvalid},
		{[]string{"x"}, "GET\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, " http://x/\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET  http://x/\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "G(T http://x/\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/ HTTP/1.1\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET /relative\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http:///nohost\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\x00\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\r\nNo colon\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\r\nBad Name: v\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\r\n: v\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\r\nX: a\x01b\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\r\nX: a\nb\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\r\nHost: y\r\n\r\n", abi.ErrInvalid},
		{[]string{"x"}, "GET http://x/\r\nhost: x\r\n\r\n", abi.ErrInvalid},
	} {
		sent = nil
		env := &hostfuncs.Env{HTTP: &hostfuncs.HTTPPolicy{Client: client, AllowedHosts: tc.allowed}, Logger: panicLog(t)}
		ctx := hostfuncs.WithEnv(context.Background(), env)
		g.put(0x100, tc.req)
		r := g.call32(ctx, abi.FuncHTTPRequest, 0x100, uint64(len(tc.req)), 0, 0)
		want := errno(tc.want)
		if tc.want == abi.OK {
			want = int64(len("204\r\n\r\n"))
		}
		if r != want {
			t.Errorf("allowed %q, request %q: %s, want %s", tc.allowed, tc.req, fmtResult(r), fmtResult(want))
		}
		if (len(sent) > 0) != (tc.want == abi.OK) {
			t.Errorf("allowed %q, request %q: %d requests sent", tc.allowed, tc.req, len(sent))
		}
	}
}

// TestHTTPRequestFormat checks what the server receives.
func TestHTTPRequestFormat(t *testing.T) {
	g := newGuest(t, "hostile", wazero.NewRuntimeConfig())
	var got *http.Request
	var body string
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		if r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			body = string(b)
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	})}
	env := &hostfuncs.Env{HTTP: &hostfuncs.HTTPPolicy{Client: client, AllowedHosts: []string{"api.example.com"}}}
	ctx := hostfuncs.WithEnv(context.Background(), env)
	req := "PUT https://api.example.com/v1/x?a=b#frag\r\nAuthorization: Bearer t\r\nX-Multi: 1\r\nx-multi:  2\t\r\n\r\n{\"k\":1}"
	g.put(0x100, req)
	if r := g.call32(ctx, abi.FuncHTTPRequest, 0x100, uint64(len(req)), 0, 0); r < 0 {
		t.Fatalf("http_request = %s", fmtResult(r))
	}
	if got.Method != "PUT" || got.URL.String() != "https://api.example.com/v1/x?a=b" ||
		got.Header.Get("Authorization") != "Bearer t" || strings.Join(got.Header.Values("X-Multi"), ",") != "1,2" ||
		body != `{"k":1}` || got.ContentLength != 7 {
		t.Errorf("sent %s %s %q body %q (length %d)", got.Method, got.URL, got.Header, body, got.ContentLength)
	}
}
