package hostfuncs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/units"
)

// Defaults and bounds of an HTTPPolicy (see NewHTTPPolicy).
const (
	defaultHTTPTimeout    = 30 * time.Second
	defaultMaxResponse    = 10 << 20
	maxRedirects          = 10
	maxHeaderBytes        = 256 << 10 // response headers on the wire, whatever MaxResponse
	maxConnectTime        = 30 * time.Second
	tlsHandshakeTimeout   = 10 * time.Second
	expectContinueTimeout = time.Second
	idleConnTimeout       = 30 * time.Second
	maxIdleConns          = 16
	maxIdleConnsPerHost   = 4
	maxConnsPerHost       = 16
	tcpKeepAlive          = 30 * time.Second
)

// NewHTTPPolicy returns the policy o describes. It has an http.Transport
// of its own, so that no connection is ever shared with another policy
// (another handler, or another version of it); call CloseIdleConnections
// when the policy is no longer used. The transport
//
//   - uses no proxy, whatever the environment says: a proxy would make the
//     connections, to addresses nobody checked;
//   - connects only through the address check described at [HTTPPolicy],
//     resolving each host once per connection with o.Resolve;
//   - speaks HTTP/1.1 (over TLS for https), with transparent gzip; the
//     limits apply to the decompressed body;
//   - resolves and connects within min(Timeout, 30 s) per connection,
//     even when the request that started the connection gave up; finishes
//     TLS handshakes within 10 s; waits at most 1 s for a "100 Continue";
//     waits at most Timeout for response headers, and reads at most
//     min(MaxResponse, 256 KiB) bytes of them (1xx responses included);
//   - holds at most 16 connections to one host at once (more requests wait
//     for one, within their Timeout) and keeps at most 4 idle connections
//     per host and 16 in all, each for at most 30 s.
//
// The policy keeps no cookies.
func NewHTTPPolicy(o HTTPOptions) *HTTPPolicy {
	p := &HTTPPolicy{timeout: o.Timeout, maxResponse: o.MaxResponse, resolve: o.Resolve, dial: o.Dial}
	if p.timeout <= 0 {
		p.timeout = defaultHTTPTimeout
	}
	if p.maxResponse <= 0 {
		p.maxResponse = defaultMaxResponse
	}
	for _, s := range o.AllowedHosts {
		if e, err := resource.ParseHostPattern(s); err == nil {
			p.allow = append(p.allow, e)
		}
	}
	for _, s := range o.Dropped {
		if e, err := resource.ParseHostPattern(s); err == nil {
			p.dropped = append(p.dropped, e)
		}
	}
	if p.resolve == nil {
		p.resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if p.dial == nil {
		p.dial = (&net.Dialer{KeepAlive: tcpKeepAlive}).DialContext
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	p.transport = &http.Transport{
		Proxy:                  nil,
		DialContext:            p.dialContext,
		Protocols:              &protocols,
		TLSHandshakeTimeout:    tlsHandshakeTimeout,
		ExpectContinueTimeout:  expectContinueTimeout,
		ResponseHeaderTimeout:  p.timeout,
		MaxResponseHeaderBytes: min(p.maxResponse, maxHeaderBytes),
		IdleConnTimeout:        idleConnTimeout,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		MaxConnsPerHost:        maxConnsPerHost,
	}
	return p
}

// CloseIdleConnections closes the policy's idle connections. Connections
// in use are not interrupted; they are closed when idle for 30 s.
func (p *HTTPPolicy) CloseIdleConnections() {
	if p != nil && p.transport != nil {
		p.transport.CloseIdleConnections()
	}
}

// deniedError is a request the policy refuses; msg says what and why.
type deniedError struct{ msg string }

func (e *deniedError) Error() string { return "denied: " + e.msg }

func denied(format string, args ...any) *deniedError {
	return &deniedError{fmt.Sprintf(format, args...)}
}

func httpRequest(ctx context.Context, e *Env, m api.Module, stack []uint64) int64 {
	e.setResponse(nil)
	raw, err := input(m, u32(stack[0]), u32(stack[1]), abi.MaxHTTPRequest)
	if err != abi.OK {
		return errno(err)
	}
	buf, capacity := u32(stack[2]), u32(stack[3])
	if err := checkOutput(m, buf, capacity); err != abi.OK {
		return errno(err)
	}
	req, err := parseRequest(raw)
	if err != abi.OK {
		return errno(err)
	}
	p := e.HTTP
	if p == nil || p.transport == nil {
		host := logSafe(req.URL.Hostname())
		return e.denied(denied("%s: the handler's manifest has no [http] allow; to reach it, list it there: allow = [%q]", host, host))
	}
	if err := p.check(req.URL); err != nil {
		return e.denied(err)
	}
	resp, r := p.do(ctx, e, req)
	if r != 0 {
		return r
	}
	e.setResponse(resp)
	return outBytes(m, buf, capacity, resp)
}

func httpResponse(_ context.Context, e *Env, m api.Module, stack []uint64) int64 {
	buf, capacity := u32(stack[0]), u32(stack[1])
	if err := checkOutput(m, buf, capacity); err != abi.OK {
		return errno(err)
	}
	e.mu.Lock()
	resp := e.lastResponse
	e.mu.Unlock()
	if resp == nil {
		return errno(abi.ErrNotFound)
	}
	return outBytes(m, buf, capacity, resp)
}

func (e *Env) setResponse(resp []byte) {
	e.mu.Lock()
	e.lastResponse = resp
	e.mu.Unlock()
}

// parseRequest decodes a request in the format described at HTTPPolicy.
// The request has no context yet.
func parseRequest(raw []byte) (*http.Request, abi.Errno) {
	line, rest, ok := bytes.Cut(raw, []byte("\r\n"))
	if !ok {
		return nil, abi.ErrInvalid
	}
	method, target, ok := strings.Cut(string(line), " ")
	if !ok || !isToken(method) || target == "" || strings.Contains(target, " ") || hasCtl(target, false) {
		return nil, abi.ErrInvalid
	}
	u, perr := url.Parse(target)
	if perr != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		return nil, abi.ErrInvalid
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, abi.ErrInvalid
		}
	}
	u.Fragment, u.RawFragment = "", ""
	header := http.Header{}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			return nil, abi.ErrInvalid
		}
		if len(line) == 0 {
			break
		}
		k, v, ok := strings.Cut(string(line), ":")
		v = strings.Trim(v, " \t")
		if !ok || !isToken(k) || hasCtl(v, true) {
			return nil, abi.ErrInvalid
		}
		if http.CanonicalHeaderKey(k) == "Host" {
			return nil, abi.ErrInvalid
		}
		header.Add(k, v)
	}
	var body io.Reader
	if len(rest) > 0 {
		// A copy: the transport may still read the body after the call.
		body = bytes.NewReader(bytes.Clone(rest))
	}
	req, rerr := http.NewRequest(method, u.String(), body)
	if rerr != nil {
		return nil, abi.ErrInvalid
	}
	req.Header = header
	return req, abi.OK
}

// isToken reports whether s is an HTTP token (RFC 9110, section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hasCtl reports whether s has an ASCII control character (other than
// tab, if tab is allowed).
func hasCtl(s string, tab bool) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' || c == 0x7f) && !(tab && c == '\t') {
			return true
		}
	}
	return false
}

// check returns why the policy refuses requests to u, or nil: u must be
// http or https, and its host and port must match AllowedHosts.
func (p *HTTPPolicy) check(u *url.URL) *deniedError {
	var port uint16
	switch u.Scheme {
	case "http":
		port = 80
	case "https":
		port = 443
	default:
		return denied("scheme %s (only http and https)", logSafe(u.Scheme))
	}
	name := u.Hostname()
	if s := u.Port(); s != "" {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return denied("%s: bad port %s", logSafe(name), logSafe(s))
		}
		port = uint16(n)
	}
	ip, _ := netip.ParseAddr(name) // invalid for a name
	host := normalHost(name)
	ps := strconv.Itoa(int(port))
	matches := func(e resource.HostPattern) bool {
		return ip.IsValid() && e.MatchAddr(ip, ps) || !ip.IsValid() && e.MatchName(host, ps) || e.Any() && e.MatchName(host, ps)
	}
	if host != "" {
		for _, e := range p.allow {
			if matches(e) {
				return nil
			}
		}
		for _, e := range p.dropped {
			if matches(e) {
				return denied("%s (port %d) is listed in the handler's [http] allow (as %q), but the operator's policy does not allow it (its http_allow)", logSafe(host), port, e.String())
			}
		}
	}
	return denied("%s (port %d) is not listed in [http] allow; to reach it, add %q to [http] allow in the handler's manifest", logSafe(host), port, logSafe(host))
}

func normalHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// dialContext is the transport's only way out: it resolves the host of
// address once, refuses the connection if any answer is an address
// the policy does not grant (see refuses), and connects to the checked
// addresses, in order, until one answers.
func (p *HTTPPolicy) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port", address)
	}
	// The transport does not cancel a dial when its request gives up (the
	// connection may serve another); bound it.
	ctx, cancel := context.WithTimeout(ctx, min(p.timeout, maxConnectTime))
	defer cancel()
	var addrs []netip.Addr
	literal, lerr := netip.ParseAddr(host)
	if lerr == nil {
		addrs = []netip.Addr{literal}
	} else {
		addrs, err = p.resolve(ctx, host)
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no addresses", Name: host, IsNotFound: true}
		}
	}
	for _, a := range addrs {
		why := p.refuses(a, uint16(port))
		switch {
		case why == "":
		case lerr == nil:
			return nil, denied("%s (%s); list the address in [http] allow to reach it", a, why)
		default:
			return nil, denied("%s resolves to %s (%s); list the address in [http] allow to reach it", logSafe(host), a, why)
		}
	}
	var first error
	for _, a := range addrs {
		c, err := p.dial(ctx, network, net.JoinHostPort(a.Unmap().String(), portStr))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// refuses says why the policy does not let connections go to a on port
// (see addrClass), or returns "" if it does: a is on the public internet,
// or an IP or CIDR entry of AllowedHosts grants it.
func (p *HTTPPolicy) refuses(a netip.Addr, port uint16) string {
	why := addrClass(a)
	if why == "" {
		return ""
	}
	ps := strconv.Itoa(int(port))
	for _, e := range p.allow {
		if e.MatchAddr(a, ps) {
			return ""
		}
	}
	return why
}

// do sends req under the policy and returns the encoded response, or nil
// and an error code.
func (p *HTTPPolicy) do(ctx context.Context, e *Env, req *http.Request) ([]byte, int64) {
	ctx, cancel := e.blocking(ctx)
	defer cancel()
	reqCtx, cancelReq := context.WithTimeout(ctx, p.timeout)
	defer cancelReq()

	client := http.Client{
		Transport: p.transport,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if err := p.check(r.URL); err != nil {
				err.msg = "redirect to " + err.msg
				return err
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
	resp, err := client.Do(req.WithContext(reqCtx))
	if err != nil {
		return nil, p.fail(ctx, e, err)
	}
	defer resp.Body.Close()

	host := logSafe(resp.Request.URL.Host)
	tooLarge := func() ([]byte, int64) {
		return nil, e.tooLarge(fmt.Sprintf("response from %s is larger than %s ([http] max_body in the handler's manifest, headers included)", host, units.FormatSize(p.maxResponse)))
	}
	// The encoded response is built in place: head, then the body read
	// after it, never more than maxResponse+1 bytes in all.
	room := p.maxResponse - int64(encodedHeadSize(resp))
	if room < 0 || resp.ContentLength > room {
		return tooLarge()
	}
	extra := int64(32 << 10)
	if resp.ContentLength >= 0 {
		extra = resp.ContentLength
	}
	buf := bytes.NewBuffer(encodeHead(resp, int(min(extra, room)+bytes.MinRead)))
	head := buf.Len()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, room+1)); err != nil {
		return nil, p.fail(ctx, e, err)
	}
	if int64(buf.Len()-head) > room {
		return tooLarge()
	}
	out := buf.Bytes()
	if len(out) > math.MaxInt32 {
		return tooLarge()
	}
	return out, 0
}

// fail maps an error of a request made under ctx (from Env.blocking).
func (p *HTTPPolicy) fail(ctx context.Context, e *Env, err error) int64 {
	var de *deniedError
	switch {
	case errors.As(err, &de):
		return e.denied(de)
	case ctx.Err() != nil:
		return errno(abi.ErrCanceled)
	case isHeaderLimit(err):
		host := "the server"
		var ue *url.Error
		if errors.As(err, &ue) {
			if u, perr := url.Parse(ue.URL); perr == nil {
				host = logSafe(u.Host)
			}
		}
		lim := p.transport.MaxResponseHeaderBytes
		if lim < p.maxResponse {
			return e.tooLarge(fmt.Sprintf("response headers from %s exceed %s (the most accepted, whatever [http] max_body)", host, units.FormatSize(lim)))
		}
		return e.tooLarge(fmt.Sprintf("response headers from %s exceed %s ([http] max_body in the handler's manifest, headers included)", host, units.FormatSize(lim)))
	case errors.Is(err, context.DeadlineExceeded):
		err = fmt.Errorf("request timed out after %v: %w", p.timeout, err)
	}
	return e.failed(abi.FuncHTTPRequest, err)
}

// isHeaderLimit reports whether err is the transport's refusal of
// response headers over MaxResponseHeaderBytes. net/http has no sentinel
// for it; TestHTTPHeaderBomb pins the message.
func isHeaderLimit(err error) bool {
	return strings.Contains(err.Error(), "server response headers exceeded")
}

// denied reports a refused request in the job log and returns ErrDenied.
func (e *Env) denied(err *deniedError) int64 {
	if e.Log != nil {
		fmt.Fprintf(e.Log, "wasmrunner: %s: %v\n", abi.FuncHTTPRequest, err)
	}
	return errno(abi.ErrDenied)
}

// tooLarge reports a response over the limit in the job log and returns
// ErrTooLarge.
func (e *Env) tooLarge(msg string) int64 {
	if e.Log != nil {
		fmt.Fprintf(e.Log, "wasmrunner: %s: %s\n", abi.FuncHTTPRequest, msg)
	}
	return errno(abi.ErrTooLarge)
}

// logSafe returns s for the job log: as is if it is printable ASCII,
// quoted otherwise.
func logSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] >= 0x7f {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// encodedHeadSize is the length of the encoded response without its body.
func encodedHeadSize(resp *http.Response) int {
	size := len(strconv.Itoa(resp.StatusCode)) + 4
	for k, vs := range resp.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	return size
}

// encodeHead encodes the status and headers of a response in the format
// described at HTTPPolicy, with room for extra more bytes (the body).
func encodeHead(resp *http.Response, extra int) []byte {
	type field struct{ name, value string }
	var fields []field
	for k, vs := range resp.Header {
		name := http.CanonicalHeaderKey(k)
		for _, v := range vs {
			fields = append(fields, field{name, v})
		}
	}
	slices.SortStableFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	out := make([]byte, 0, encodedHeadSize(resp)+extra)
	out = strconv.AppendInt(out, int64(resp.StatusCode), 10)
	out = append(out, "\r\n"...)
	for _, f := range fields {
		out = append(out, f.name...)
		out = append(out, ": "...)
		out = append(out, f.value...)
		out = append(out, "\r\n"...)
	}
	return append(out, "\r\n"...)
}
