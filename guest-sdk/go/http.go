package wasmrunner

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Header holds HTTP header fields, keyed by canonical name ("Content-Type")
// as net/http's Header is. Its methods canonicalise the names they get.
type Header map[string][]string

// Get returns the first value of the field name, or "".
func (h Header) Get(name string) string {
	if v := h[CanonicalHeaderKey(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns all values of the field name.
func (h Header) Values(name string) []string { return h[CanonicalHeaderKey(name)] }

// Set replaces the values of the field name with value.
func (h Header) Set(name, value string) { h[CanonicalHeaderKey(name)] = []string{value} }

// Add appends value to the values of the field name.
func (h Header) Add(name, value string) {
	k := CanonicalHeaderKey(name)
	h[k] = append(h[k], value)
}

// Del removes the field name.
func (h Header) Del(name string) { delete(h, CanonicalHeaderKey(name)) }

// CanonicalHeaderKey returns the canonical form of a header name: the
// first letter and each letter after a hyphen upper case, the others lower
// case ("content-type" is "Content-Type"). A name that is not an HTTP
// token is returned unchanged.
func CanonicalHeaderKey(name string) string {
	if !isToken(name) {
		return name
	}
	b := []byte(name)
	upper := true
	changed := false
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
			changed = true
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
			changed = true
		}
		upper = c == '-'
	}
	if !changed {
		return name
	}
	return string(b)
}

// Request is an HTTP request a handler sends through the host.
type Request struct {
	// Method is the request method; "" means GET.
	Method string
	// URL is the absolute http or https URL. Its host must be allowed by
	// the handler's manifest ([http] allow), or the request is ErrDenied.
	URL string
	// Header holds the request's header fields. Host is not accepted: the
	// host comes from the URL.
	Header Header
	// Body is the request body (none if empty).
	Body []byte
}

// Response is the answer to a Request. Statuses other than 2xx are
// responses too, not errors.
type Response struct {
	// Status is the status code, e.g. 200.
	Status int
	// Header holds the response's header fields by canonical name.
	Header Header
	// Body is the whole response body.
	Body []byte
}

// firstResponseBuffer is the buffer an HTTP response gets first; a larger
// response is fetched again with http_response.
const firstResponseBuffer = 4096

// HTTP sends req through the host and returns the response. It fails
// with ErrDenied for a host the handler's manifest does not allow (also
// on a redirect), ErrTooLarge for a request or response over the host's
// limits, ErrCanceled when the job ends meanwhile, ErrIO when the request
// failed (the job log says why), and an error wrapping ErrInvalid for a
// malformed request.
func HTTP(req *Request) (*Response, error) {
	enc, err := encodeRequest(req)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, firstResponseBuffer)
	n := host.HTTPRequest(enc, buf)
	var raw []byte
	switch {
	case n < 0:
		return nil, Errno(n)
	case int(n) <= len(buf):
		raw = buf[:n]
	default:
		if raw, err = readGrowing(int(n), host.HTTPResponse); err != nil {
			return nil, err
		}
	}
	return decodeResponse(raw)
}

// encodeRequest encodes req in the format of http_request: "METHOD
// URL\r\n", "Name: value\r\n" per header value (names sorted), "\r\n",
// then the body.
func encodeRequest(req *Request) ([]byte, error) {
	method := req.Method
	if method == "" {
		method = "GET"
	}
	if !isToken(method) {
		return nil, fmt.Errorf("wasmrunner: http: bad method %q: %w", method, ErrInvalid)
	}
	if req.URL == "" || hasCtl(req.URL, false) || strings.Contains(req.URL, " ") {
		return nil, fmt.Errorf("wasmrunner: http: bad URL %q: %w", req.URL, ErrInvalid)
	}
	names := make([]string, 0, len(req.Header))
	size := len(method) + len(req.URL) + 5 + len(req.Body)
	for name, values := range req.Header {
		if !isToken(name) || CanonicalHeaderKey(name) == "Host" {
			return nil, fmt.Errorf("wasmrunner: http: bad header name %q: %w", name, ErrInvalid)
		}
		for _, v := range values {
			if hasCtl(v, true) {
				return nil, fmt.Errorf("wasmrunner: http: bad value of header %s: %w", name, ErrInvalid)
			}
			size += len(name) + len(v) + 4
		}
		names = append(names, name)
	}
	if size > MaxHTTPRequest {
		return nil, ErrTooLarge
	}
	slices.Sort(names)
	out := make([]byte, 0, size)
	out = append(out, method...)
	out = append(out, ' ')
	out = append(out, req.URL...)
	out = append(out, "\r\n"...)
	for _, name := range names {
		for _, v := range req.Header[name] {
			out = append(out, name...)
			out = append(out, ": "...)
			out = append(out, v...)
			out = append(out, "\r\n"...)
		}
	}
	out = append(out, "\r\n"...)
	return append(out, req.Body...), nil
}

// decodeResponse decodes a response in the format of http_request:
// "STATUS\r\n", "Name: value\r\n" per header value, "\r\n", then the body.
// The body shares raw's memory.
func decodeResponse(raw []byte) (*Response, error) {
	bad := func(what string) error {
		return fmt.Errorf("wasmrunner: http: malformed response from the host (%s): %w", what, ErrInvalid)
	}
	line, rest, ok := bytes.Cut(raw, []byte("\r\n"))
	if !ok {
		return nil, bad("no status line")
	}
	code, err := strconv.Atoi(string(line))
	if err != nil || code < 100 || code > 999 {
		return nil, bad("status " + strconv.Quote(string(line)))
	}
	resp := &Response{Status: code, Header: Header{}}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			return nil, bad("unterminated header")
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return nil, bad("header line " + strconv.Quote(string(line)))
		}
		resp.Header.Add(string(name), string(bytes.Trim(value, " \t")))
	}
	resp.Body = rest
	return resp, nil
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
