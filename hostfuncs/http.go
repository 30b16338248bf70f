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
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
)

const (
	defaultHTTPTimeout = 30 * time.Second
	defaultMaxBody     = 10 << 20
	maxRedirects       = 10
)

var errRedirectDenied = errors.New("redirect to a host the handler may not reach")

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
	if p == nil || !p.allows(req.URL) {
		return errno(abi.ErrDenied)
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

// allows reports whether the policy lets requests go to u.
func (p *HTTPPolicy) allows(u *url.URL) bool {
	port := u.Port()
	switch u.Scheme {
	case "http":
		if port == "" {
			port = "80"
		}
	case "https":
		if port == "" {
			port = "443"
		}
	default:
		return false
	}
	host := normalHost(u.Hostname())
	if host == "" {
		return false
	}
	for _, entry := range p.AllowedHosts {
		h, ep := splitEntry(entry)
		if h == "" || ep != "" && ep != port {
			continue
		}
		if suffix, ok := strings.CutPrefix(h, "*"); ok {
			if strings.HasPrefix(suffix, ".") && len(suffix) > 1 && len(host) > len(suffix) && strings.HasSuffix(host, suffix) {
				return true
			}
			continue
		}
		if h == host {
			return true
		}
	}
	return false
}

// splitEntry splits an AllowedHosts entry into its host (normalised) and
// port ("" for any).
func splitEntry(entry string) (host, port string) {
	if h, p, err := net.SplitHostPort(entry); err == nil {
		return normalHost(h), p
	}
	return normalHost(strings.TrimSuffix(strings.TrimPrefix(entry, "["), "]")), ""
}

func normalHost(h string) string {
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// do sends req under the policy and returns the encoded response, or nil
// and an error code.
func (p *HTTPPolicy) do(ctx context.Context, e *Env, req *http.Request) ([]byte, int64) {
	timeout, maxBody := p.Timeout, p.MaxBody
	if timeout <= 0 {
		timeout = defaultHTTPTimeout
	}
	if maxBody <= 0 {
		maxBody = defaultMaxBody
	}
	ctx, cancel := e.blocking(ctx)
	defer cancel()
	reqCtx, cancelReq := context.WithTimeout(ctx, timeout)
	defer cancelReq()

	var client http.Client
	if p.Client != nil {
		client = *p.Client
	}
	next := client.CheckRedirect
	client.CheckRedirect = func(r *http.Request, via []*http.Request) error {
		if !p.allows(r.URL) {
			return errRedirectDenied
		}
		if next != nil {
			return next(r, via)
		}
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		return nil
	}

	resp, err := client.Do(req.WithContext(reqCtx))
	if err != nil {
		return nil, p.fail(ctx, e, err)
	}
	defer resp.Body.Close()
	if resp.ContentLength > maxBody {
		return nil, errno(abi.ErrTooLarge)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, p.fail(ctx, e, err)
	}
	if int64(len(body)) > maxBody {
		return nil, errno(abi.ErrTooLarge)
	}
	out := encodeResponse(resp, body)
	if len(out) > math.MaxInt32 {
		return nil, errno(abi.ErrTooLarge)
	}
	return out, 0
}

// fail maps an error of a request made under ctx (from Env.blocking).
func (p *HTTPPolicy) fail(ctx context.Context, e *Env, err error) int64 {
	switch {
	case errors.Is(err, errRedirectDenied):
		return errno(abi.ErrDenied)
	case ctx.Err() != nil:
		return errno(abi.ErrCanceled)
	case errors.Is(err, context.DeadlineExceeded):
		timeout := p.Timeout
		if timeout <= 0 {
			timeout = defaultHTTPTimeout
		}
		err = fmt.Errorf("request timed out after %v: %w", timeout, err)
	}
	return e.failed(abi.FuncHTTPRequest, err)
}

// encodeResponse encodes a response in the format described at
// HTTPPolicy.
func encodeResponse(resp *http.Response, body []byte) []byte {
	type field struct{ name, value string }
	var fields []field
	size := 8 + len(body)
	for k, vs := range resp.Header {
		name := http.CanonicalHeaderKey(k)
		for _, v := range vs {
			fields = append(fields, field{name, v})
			size += len(name) + len(v) + 4
		}
	}
	slices.SortStableFunc(fields, func(a, b field) int { return strings.Compare(a.name, b.name) })
	out := make([]byte, 0, size)
	out = strconv.AppendInt(out, int64(resp.StatusCode), 10)
	out = append(out, "\r\n"...)
	for _, f := range fields {
		out = append(out, f.name...)
		out = append(out, ": "...)
		out = append(out, f.value...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "\r\n"...)
	return append(out, body...)
}
