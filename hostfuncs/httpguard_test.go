package hostfuncs_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

// hello is a server answering "hello" everywhere.
func hello(t *testing.T) *server {
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Date"] = nil
		io.WriteString(w, "hello")
	})
}

// TestHTTPLoopbackByName: a name allowed by name but resolving to
// loopback is refused before any connection; the address listed
// literally, or by a CIDR, is reached.
func TestHTTPLoopbackByName(t *testing.T) {
	g := httpGuest{newGuest(t, "guest", wazero.NewRuntimeConfig())}
	srv := hello(t)
	bg := context.Background()
	port := fmt.Sprint(srv.port())

	conns := srv.conns.Load()
	r, log := g.do(bg, policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{"localhost"}}), "GET http://localhost:"+port+"/\r\n\r\n", respCap)
	if r != errno(abi.ErrDenied) {
		t.Errorf("localhost allowed by name: t_http = %s, want ErrDenied", fmtResult(r))
	}
	// localhost may resolve to ::1 first.
	if !strings.HasPrefix(log, "wasmrunner: http_request: denied: localhost resolves to ") ||
		!strings.HasSuffix(log, " (loopback); list the address in [http] allow to reach it\n") || strings.Count(log, "\n") != 1 {
		t.Errorf("job log %q", log)
	}
	if srv.conns.Load() != conns {
		t.Errorf("the server was reached")
	}

	for _, allow := range [][]string{
		{"127.0.0.1"},
		{srv.hostPort()},
		{"127.0.0.0/8"},
		{"127.0.0.0/8:" + port},
		{"::ffff:127.0.0.1"},
	} {
		r, log := g.do(bg, policy(t, hostfuncs.HTTPOptions{AllowedHosts: allow}), "GET "+srv.URL+"/\r\n\r\n", respCap)
		if r < 0 || !strings.HasSuffix(log, "\r\n\r\nhello") {
			t.Errorf("allowed %q: t_http = %s, log %q", allow, fmtResult(r), log)
		}
	}

	// A name resolving to a listed address reaches it.
	var lookups atomic.Int32
	p := policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{"svc.test", "127.0.0.1:" + port}, Resolve: resolveTo(&lookups, "127.0.0.1")})
	if r, log := g.do(bg, p, "GET http://svc.test:"+port+"/\r\n\r\n", respCap); r < 0 || !strings.HasSuffix(log, "hello") {
		t.Errorf("svc.test resolving to a listed address: t_http = %s, log %q", fmtResult(r), log)
	}
	// Not on another port.
	p = policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{"svc.test", "127.0.0.1:1"}, Resolve: resolveTo(&lookups, "127.0.0.1")})
	conns = srv.conns.Load()
	if r, _ := g.do(bg, p, "GET http://svc.test:"+port+"/\r\n\r\n", respCap); r != errno(abi.ErrDenied) || srv.conns.Load() != conns {
		t.Errorf("svc.test resolving to an address listed for another port: t_http = %s", fmtResult(r))
	}
}

// TestHTTPSpecialAnswers: an allowed name whose answer holds any address
// that is not public is refused without a connection attempt.
func TestHTTPSpecialAnswers(t *testing.T) {
	g := httpGuest{newGuest(t, "guest", wazero.NewRuntimeConfig())}
	srv := hello(t)
	bg := context.Background()
	for _, tc := range []struct {
		answer []string
		log    string // after "denied: metadata.test resolves to "
	}{
		{[]string{"169.254.169.254"}, "169.254.169.254 (link-local)"},
		{[]string{"10.0.0.1"}, "10.0.0.1 (private)"},
		{[]string{"::ffff:127.0.0.1"}, "::ffff:127.0.0.1 (loopback)"},
		{[]string{"fe80::1"}, "fe80::1 (link-local)"},
		{[]string{"fd00:ec2::254"}, "fd00:ec2::254 (private)"},
		{[]string{"100.100.100.200"}, "100.100.100.200 (CGNAT)"},
		{[]string{"0.0.0.0"}, "0.0.0.0 (unspecified)"},
		{[]string{"::"}, ":: (unspecified)"},
		{[]string{"255.255.255.255"}, "255.255.255.255 (broadcast)"},
		{[]string{"224.0.0.1"}, "224.0.0.1 (multicast)"},
		{[]string{"64:ff9b::a9fe:a9fe"}, "64:ff9b::a9fe:a9fe (NAT64 of 169.254.169.254, link-local)"},
		{[]string{"::127.0.0.1"}, "::7f00:1 (IPv4-compatible)"},
		// One bad address in the answer is enough.
		{[]string{publicAddr.String(), "192.168.1.1"}, "192.168.1.1 (private)"},
	} {
		var lookups atomic.Int32
		d := &dialRecorder{target: srv.hostPort()}
		p := policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{"metadata.test"}, Resolve: resolveTo(&lookups, tc.answer...), Dial: d.dial})
		conns := srv.conns.Load()
		r, log := g.do(bg, p, "GET http://metadata.test/latest/meta-data/\r\n\r\n", respCap)
		if r != errno(abi.ErrDenied) {
			t.Errorf("answer %q: t_http = %s, want ErrDenied", tc.answer, fmtResult(r))
		}
		if want := "wasmrunner: http_request: denied: metadata.test resolves to " + tc.log + "; list the address in [http] allow to reach it\n"; log != want {
			t.Errorf("answer %q: job log\n%q\nwant\n%q", tc.answer, log, want)
		}
		if dialed := d.dialed(); len(dialed) != 0 || srv.conns.Load() != conns {
			t.Errorf("answer %q: dialed %q", tc.answer, dialed)
		}
	}
}

// TestHTTPRebinding: the connection goes to the address that was checked;
// the host is not resolved again between check and connect.
func TestHTTPRebinding(t *testing.T) {
	g := httpGuest{newGuest(t, "guest", wazero.NewRuntimeConfig())}
	srv := hello(t)
	bg := context.Background()
	var lookups atomic.Int32
	resolve := func(ctx context.Context, host string) ([]netip.Addr, error) {
		// Public the first time, loopback after.
		if lookups.Add(1) == 1 {
			return []netip.Addr{publicAddr}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}
	d := &dialRecorder{target: srv.hostPort()}
	p := policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{"rebind.test"}, Resolve: resolve, Dial: d.dial})
	r, log := g.do(bg, p, "GET http://rebind.test/\r\n\r\n", respCap)
	if r < 0 || !strings.HasSuffix(log, "hello") {
		t.Fatalf("t_http = %s, log %q", fmtResult(r), log)
	}
	if n, dialed := lookups.Load(), d.dialed(); n != 1 || len(dialed) != 1 || dialed[0] != publicAddr.String()+":80" {
		t.Errorf("%d lookups, dialed %q; want 1 lookup and %s:80", n, dialed, publicAddr)
	}
	// A new connection resolves again, and is checked again.
	p.CloseIdleConnections()
	r, log = g.do(bg, p, "GET http://rebind.test/\r\n\r\n", respCap)
	if r != errno(abi.ErrDenied) || log != "wasmrunner: http_request: denied: rebind.test resolves to 127.0.0.1 (loopback); list the address in [http] allow to reach it\n" {
		t.Errorf("second connection: t_http = %s, log %q", fmtResult(r), log)
	}
	if n, dialed := lookups.Load(), d.dialed(); n != 2 || len(dialed) != 1 {
		t.Errorf("%d lookups, dialed %q; want 2 lookups and 1 connection", n, dialed)
	}
}

// TestHTTPRedirectToLoopbackName: a redirect from an allowed address to an
// allowed name that resolves to a loopback address not listed is refused.
func TestHTTPRedirectToLoopbackName(t *testing.T) {
	g := httpGuest{newGuest(t, "guest", wazero.NewRuntimeConfig())}
	inside := hello(t)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://internal.test:%d/", inside.port()), http.StatusFound)
	})
	var lookups atomic.Int32
	p := policy(t, hostfuncs.HTTPOptions{
		AllowedHosts: []string{srv.hostPort(), "internal.test"},
		Resolve:      resolveTo(&lookups, "127.0.0.1"),
	})
	r, log := g.do(context.Background(), p, "GET "+srv.URL+"/\r\n\r\n", respCap)
	if r != errno(abi.ErrDenied) || log != "wasmrunner: http_request: denied: internal.test resolves to 127.0.0.1 (loopback); list the address in [http] allow to reach it\n" {
		t.Errorf("t_http = %s, log %q", fmtResult(r), log)
	}
	if srv.hits.Load() != 1 || inside.conns.Load() != 0 || lookups.Load() != 1 {
		t.Errorf("%d hits on the first server, %d connections to the second, %d lookups", srv.hits.Load(), inside.conns.Load(), lookups.Load())
	}
}

// headerBomb is a server that answers every request with about size
// bytes of headers, written from one buffer made beforehand (so that the
// server allocates nothing while it sends).
func headerBomb(t *testing.T, size int) *server {
	var sb strings.Builder
	sb.WriteString("HTTP/1.1 200 OK\r\n")
	for sb.Len() < size {
		sb.WriteString("X-A: b\r\n")
	}
	sb.WriteString("Content-Length: 0\r\n\r\n")
	raw := []byte(sb.String())
	return newServer(t, func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(raw)
	})
}

// TestHTTPHeaderBomb: response headers count against the limit, and a
// server sending megabytes of them costs the host little memory.
func TestHTTPHeaderBomb(t *testing.T) {
	const size = 10 << 20
	g := httpGuest{newGuest(t, "guest", wazero.NewRuntimeConfig())}
	srv := headerBomb(t, size)
	for _, tc := range []struct {
		limit int64
		log   string
	}{
		{1 << 10, "exceed 1KiB ([http] max_body in the handler's manifest, headers included)"},
		{0, "exceed 256KiB (the most accepted, whatever [http] max_body)"}, // 10 MiB
	} {
		p := policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{srv.hostPort()}, MaxResponse: tc.limit})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, log := g.do(context.Background(), p, "GET "+srv.URL+"/\r\n\r\n", respCap)
		runtime.ReadMemStats(&after)
		if r != errno(abi.ErrTooLarge) {
			t.Errorf("limit %d: t_http = %s, want ErrTooLarge", tc.limit, fmtResult(r))
		}
		if want := "wasmrunner: http_request: response headers from " + srv.hostPort() + " " + tc.log + "\n"; log != want {
			t.Errorf("limit %d: job log\n%q\nwant\n%q", tc.limit, log, want)
		}
		// Parsing headers of 8 bytes costs some 13 times their size:
		// 10 MiB of them cost more than 300 MiB on main.
		allocated := after.TotalAlloc - before.TotalAlloc
		budget := uint64(1 << 20)
		if tc.limit == 0 {
			budget = 8 << 20
		}
		t.Logf("limit %d: %d KiB allocated", tc.limit, allocated>>10)
		if allocated > budget {
			t.Errorf("limit %d: %d KiB allocated for a %d KiB header bomb, want at most %d KiB", tc.limit, allocated>>10, size>>10, budget>>10)
		}
	}
}

// TestHTTPResponseLimit: the limit is on the response as the guest gets
// it, head included.
func TestHTTPResponseLimit(t *testing.T) {
	g := httpGuest{newGuest(t, "guest", wazero.NewRuntimeConfig())}
	const limit = 1024
	head := func(n int) string {
		return fmt.Sprintf("200\r\nContent-Length: %d\r\nContent-Type: text/plain\r\nX-Pad: %s\r\n\r\n", n, strings.Repeat("p", 300))
	}
	fits := limit - len(head(999)) // a body that makes it exactly limit bytes
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := fits
		if r.URL.Path == "/over" {
			n++
			if r.URL.Query().Has("chunked") {
				n += len("Content-Length: 999\r\n")
			}
		}
		h := w.Header()
		h["Date"] = nil
		h.Set("Content-Type", "text/plain")
		h.Set("X-Pad", strings.Repeat("p", 300))
		if r.URL.Query().Has("chunked") {
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, strings.Repeat("b", n))
	})
	p := policy(t, hostfuncs.HTTPOptions{AllowedHosts: []string{srv.hostPort()}, MaxResponse: limit})
	r, log := g.do(context.Background(), p, "GET "+srv.URL+"/fits\r\n\r\n", respCap)
	if want := head(fits) + strings.Repeat("b", fits); r != limit || log != want {
		t.Errorf("t_http = %s, log\n%q\nwant %d bytes:\n%q", fmtResult(r), log, limit, want)
	}
	for _, path := range []string{"/over", "/over?chunked"} {
		r, log = g.do(context.Background(), p, "GET "+srv.URL+path+"\r\n\r\n", respCap)
		if want := "wasmrunner: http_request: response from " + srv.hostPort() + " is larger than 1KiB ([http] max_body in the handler's manifest, headers included)\n"; r != errno(abi.ErrTooLarge) || log != want {
			t.Errorf("%s: t_http = %s, log %q", path, fmtResult(r), log)
		}
	}
}

// TestHTTPConcurrent: one policy serves many jobs at once.
func TestHTTPConcurrent(t *testing.T) {
	srv := hello(t)
	var lookups atomic.Int32
	p := policy(t, hostfuncs.HTTPOptions{
		AllowedHosts: []string{"svc.test", "127.0.0.1"},
		Resolve:      resolveTo(&lookups, "127.0.0.1"),
	})
	var wg sync.WaitGroup
	for i := range 4 {
		g := httpGuest{newGuest(t, "guest", wazero.NewRuntimeConfigInterpreter())}
		wg.Go(func() {
			for j := range 10 {
				req := fmt.Sprintf("GET http://svc.test:%d/%d/%d\r\n\r\n", srv.port(), i, j)
				if j%2 == 1 {
					req = "GET http://localhost/\r\n\r\n"
				}
				r, log := g.do(context.Background(), p, req, respCap)
				if j%2 == 0 && (r < 0 || !strings.HasSuffix(log, "hello")) || j%2 == 1 && r != errno(abi.ErrDenied) {
					t.Errorf("job %d, request %d: t_http = %s, log %q", i, j, fmtResult(r), log)
				}
			}
		})
	}
	wg.Wait()
	// Connections are reused, but a request can start while another's
	// connection is on its way back to the idle pool: the bound is the
	// transport's 16 connections per host, not one per job.
	if n := srv.conns.Load(); n > 16 {
		t.Errorf("%d connections for 4 jobs, more than the 16 per host of the policy's transport", n)
	}
}
