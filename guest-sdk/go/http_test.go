package wasmrunner

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestEncodeRequest(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"get without headers", Request{URL: "http://lab.example/jobs/1"}, "GET http://lab.example/jobs/1\r\n\r\n"},
		{
			"post with headers and body",
			Request{
				Method: "POST", URL: "https://lab.example/jobs?x=1",
				Header: Header{"X-Trace": {"a", "b"}, "Content-Type": {"application/octet-stream"}},
				Body:   []byte("line 1\r\n\r\nline 2"),
			},
			"POST https://lab.example/jobs?x=1\r\nContent-Type: application/octet-stream\r\nX-Trace: a\r\nX-Trace: b\r\n\r\nline 1\r\n\r\nline 2",
		},
		{"tab in a value", Request{Method: "DELETE", URL: "http://h/", Header: Header{"A": {"x\ty"}}}, "DELETE http://h/\r\nA: x\ty\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeRequest(&tt.req)
			if err != nil || string(got) != tt.want {
				t.Errorf("got %q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
}

func TestEncodeRequestRejectsInjection(t *testing.T) {
	for name, req := range map[string]Request{
		"method with space":   {Method: "GET /x", URL: "http://h/"},
		"empty URL":           {},
		"URL with CRLF":       {URL: "http://h/\r\nX-Evil: 1"},
		"URL with space":      {URL: "http://h/a b"},
		"header name colon":   {URL: "http://h/", Header: Header{"A:B": {"x"}}},
		"header name empty":   {URL: "http://h/", Header: Header{"": {"x"}}},
		"header value CRLF":   {URL: "http://h/", Header: Header{"A": {"x\r\nX-Evil: 1"}}},
		"header value NUL":    {URL: "http://h/", Header: Header{"A": {"x\x00"}}},
		"Host header":         {URL: "http://h/", Header: Header{"host": {"other"}}},
		"non-ASCII name":      {URL: "http://h/", Header: Header{"Ä": {"x"}}},
		"header value DEL":    {URL: "http://h/", Header: Header{"A": {"\x7f"}}},
		"method with newline": {Method: "GET\n", URL: "http://h/"},
	} {
		if _, err := encodeRequest(&req); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	big := Request{URL: "http://h/", Body: make([]byte, MaxHTTPRequest)}
	if _, err := encodeRequest(&big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversize request: %v", err)
	}
}

func TestDecodeResponse(t *testing.T) {
	raw := []byte("404\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nno such job\r\n\r\n")
	resp, err := decodeResponse(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := &Response{
		Status: 404,
		Header: Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"}},
		Body:   []byte("no such job\r\n\r\n"),
	}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("got %+v\nwant %+v", resp, want)
	}
	if resp.Header.Get("content-type") != "text/plain" || len(resp.Header.Values("set-cookie")) != 2 {
		t.Errorf("header lookups: %v", resp.Header)
	}
	empty, err := decodeResponse([]byte("204\r\n\r\n"))
	if err != nil || empty.Status != 204 || len(empty.Body) != 0 || len(empty.Header) != 0 {
		t.Errorf("empty response: %+v, %v", empty, err)
	}
	for _, bad := range []string{"", "200", "200\r\n", "abc\r\n\r\n", "20\r\n\r\n", "200\r\nNoColon\r\n\r\n", "200\r\nA: b\r\n"} {
		if _, err := decodeResponse([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}

// httpHost answers http_request and http_response with resp, recording
// the capacities it was called with; other host calls panic.
type httpHost struct {
	hostABI
	resp []byte
	caps map[string][]int
}

func (h *httpHost) HTTPRequest(_, buf []byte) int32 {
	h.caps["http_request"] = append(h.caps["http_request"], len(buf))
	copy(buf, h.resp)
	return int32(len(h.resp))
}

func (h *httpHost) HTTPResponse(buf []byte) int32 {
	h.caps["http_response"] = append(h.caps["http_response"], len(buf))
	copy(buf, h.resp)
	return int32(len(h.resp))
}

// TestHTTPBuffers: a response that fits the first buffer takes one call; a
// larger one is fetched again with a buffer of its exact size, never by
// repeating the request. (The rest of HTTP is tested through sdktest.)
func TestHTTPBuffers(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	h := &httpHost{resp: append([]byte("201\r\nLocation: /x\r\n\r\n"), body...), caps: map[string][]int{}}
	old := host
	host = h
	t.Cleanup(func() { host = old })
	resp, err := HTTP(&Request{URL: "http://lab/x"})
	if err != nil || resp.Status != 201 || !bytes.Equal(resp.Body, body) {
		t.Fatalf("%v %v", resp, err)
	}
	if got := h.caps["http_request"]; !reflect.DeepEqual(got, []int{firstResponseBuffer}) {
		t.Errorf("http_request capacities %v", got)
	}
	if got := h.caps["http_response"]; !reflect.DeepEqual(got, []int{len(h.resp)}) {
		t.Errorf("http_response capacities %v, response %d bytes", got, len(h.resp))
	}
	h.resp, h.caps = []byte("200\r\n\r\nok"), map[string][]int{}
	if resp, err := HTTP(&Request{URL: "http://lab/"}); err != nil || string(resp.Body) != "ok" || len(h.caps["http_response"]) != 0 {
		t.Errorf("small response: %+v %v %v", resp, err, h.caps)
	}
}

func TestCanonicalHeaderKey(t *testing.T) {
	for in, want := range map[string]string{
		"content-type": "Content-Type", "CONTENT-TYPE": "Content-Type", "Content-Type": "Content-Type",
		"x-a-b": "X-A-B", "etag": "Etag", "a b": "a b", "": "", "x_y": "X_y",
	} {
		if got := CanonicalHeaderKey(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
	h := Header{}
	h.Add("accept", "a")
	h.Add("ACCEPT", "b")
	if strings.Join(h.Values("Accept"), ",") != "a,b" {
		t.Errorf("Add: %v", h)
	}
	h.Set("accept", "c")
	h.Del("x")
	if h.Get("Accept") != "c" || len(h) != 1 {
		t.Errorf("Set: %v", h)
	}
	h.Del("accept")
	if len(h) != 0 {
		t.Errorf("Del: %v", h)
	}
}
