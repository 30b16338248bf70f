package gitlabtest_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// tc is a raw HTTP client for one fake server; it never follows redirects.
type tc struct {
	t  *testing.T
	s  *gitlabtest.Server
	hc *http.Client
}

func newTC(t *testing.T, opts ...gitlabtest.Option) *tc {
	t.Helper()
	s := gitlabtest.NewServer(opts...)
	tr := &http.Transport{}
	c := &tc{t: t, s: s, hc: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	t.Cleanup(func() {
		s.Close()
		tr.CloseIdleConnections()
	})
	return c
}

// resp is a reply read in full.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// message decodes GitLab's error body.
func (r resp) message(t *testing.T) string {
	t.Helper()
	var m struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.Body, err)
	}
	return m.Message
}

// do sends a request to path (relative to the server URL); hdr holds
// header name/value pairs.
func (c *tc) do(method, path string, body io.Reader, hdr ...string) resp {
	c.t.Helper()
	r, err := c.try(method, path, body, hdr...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c *tc) try(method, path string, body io.Reader, hdr ...string) (resp, error) {
	req, err := http.NewRequest(method, c.s.URL+path, body)
	if err != nil {
		return resp{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, err
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: data}, nil
}

func jsonBody(v any) io.Reader {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.NewReader(data)
}

func (c *tc) postJSON(path string, v any, hdr ...string) resp {
	c.t.Helper()
	return c.do(http.MethodPost, path, jsonBody(v), append([]string{"Content-Type", "application/json"}, hdr...)...)
}

// requestJob asks for a job with the server's runner token.
func (c *tc) requestJob() resp {
	c.t.Helper()
	return c.postJSON("/api/v4/jobs/request", gitlab.JobRequest{Token: c.s.RunnerToken, SystemID: "s_0123456789ab"})
}

// mustJob requests a job and decodes the 201 payload.
func (c *tc) mustJob() *gitlab.Job {
	c.t.Helper()
	r := c.requestJob()
	if r.Status != http.StatusCreated {
		c.t.Fatalf("jobs/request: got %v, want 201", r)
	}
	j, err := gitlab.DecodeJob(r.Body)
	if err != nil {
		c.t.Fatalf("decode job: %v", err)
	}
	return j
}

func (c *tc) patch(id int64, token, contentRange string, data string) resp {
	c.t.Helper()
	return c.do(http.MethodPatch, fmt.Sprintf("/api/v4/jobs/%d/trace", id), strings.NewReader(data),
		"JOB-TOKEN", token, "Content-Type", "text/plain", "Content-Range", contentRange)
}

// appendTrace sends data at offset start and expects 202.
func (c *tc) appendTrace(id int64, token string, start int, data string) resp {
	c.t.Helper()
	r := c.patch(id, token, fmt.Sprintf("%d-%d", start, start+len(data)-1), data)
	if r.Status != http.StatusAccepted {
		c.t.Fatalf("PATCH trace: got %v, want 202", r)
	}
	return r
}

func (c *tc) put(id int64, req gitlab.UpdateJobRequest) resp {
	c.t.Helper()
	return c.do(http.MethodPut, fmt.Sprintf("/api/v4/jobs/%d", id), jsonBody(req), "Content-Type", "application/json")
}

func checksum(s string) string { return fmt.Sprintf("crc32:%08x", crc32.ChecksumIEEE([]byte(s))) }

// finish sends a final update with a correct checksum for trace.
func (c *tc) finish(id int64, token string, state gitlab.JobState, trace string) resp {
	c.t.Helper()
	return c.put(id, gitlab.UpdateJobRequest{
		Token: token, State: state, Checksum: checksum(trace),
		Output: &gitlab.JobOutput{Checksum: checksum(trace), Bytesize: int64(len(trace))},
	})
}

// multipartBody builds an upload body with a "file" part (when filename is
// not "") and extra fields.
func multipartBody(filename string, data []byte, fields ...string) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = mw.WriteField(fields[i], fields[i+1])
	}
	if filename != "" {
		fw, _ := mw.CreateFormFile("file", filename)
		_, _ = fw.Write(data)
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

func (c *tc) upload(id int64, token, query string, filename string, data []byte) resp {
	c.t.Helper()
	body, ct := multipartBody(filename, data)
	path := fmt.Sprintf("/api/v4/jobs/%d/artifacts", id)
	if query != "" {
		path += "?" + query
	}
	return c.do(http.MethodPost, path, body, "JOB-TOKEN", token, "Content-Type", ct)
}

func makeZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(content))
	}
	if _, err := zw.Create("dir/"); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func wantStatus(t *testing.T, what string, r resp, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: got %v, want %d", what, r, status)
	}
}

func wantHeader(t *testing.T, what string, r resp, key, value string) {
	t.Helper()
	if got := r.Header.Get(key); got != value {
		t.Fatalf("%s: header %s = %q, want %q (reply %v)", what, key, got, value, r)
	}
}
