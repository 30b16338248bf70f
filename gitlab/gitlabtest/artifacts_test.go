package gitlabtest_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func TestUploadReplies(t *testing.T) {
	c := newTC(t, gitlabtest.WithMaxArtifactSize(4096))
	id := c.s.Enqueue(gitlabtest.NewJob("u"))
	pending := c.s.Enqueue(gitlabtest.NewJob("p").DependsOn(id))
	j := c.mustJob()
	good := makeZip(t, map[string]string{"a.txt": "A", "sub/b.txt": "B"})
	path := "/api/v4/jobs/" + itoa(id) + "/artifacts"

	tests := []struct {
		name      string
		id        int64
		token     string
		query     string
		file      string
		data      []byte
		status    int
		status403 string
	}{
		{"unknown job", 777, j.Token, "", "a.zip", good, 404, ""},
		{"wrong token", id, "glcbt-bad", "", "a.zip", good, 403, ""},
		{"pending job", pending, c.s.Job(pending).Token, "", "a.zip", good, 403, "pending"},
		{"no file part", id, j.Token, "", "", nil, 400, ""},
		{"too large", id, j.Token, "artifact_format=raw&artifact_type=archive", "big", bytes.Repeat([]byte("x"), 4097), 413, ""},
		{"broken zip", id, j.Token, "artifact_format=zip&artifact_type=archive", "a.zip", []byte("PK not really"), 400, ""},
		{"bad format", id, j.Token, "artifact_format=rar", "a.rar", []byte("x"), 400, ""},
		{"bad type", id, j.Token, "artifact_type=mystery", "a.zip", good, 400, ""},
		{"zip", id, j.Token, "artifact_format=zip&artifact_type=archive&expire_in=1+day", "artifacts.zip", good, 201, ""},
		{"gzip junit", id, j.Token, "artifact_format=gzip&artifact_type=junit", "junit.xml.gz", []byte("gz"), 201, ""},
		{"defaults", id, j.Token, "", "plain.zip", good, 201, ""},
		{"exactly max", id, j.Token, "artifact_format=raw&artifact_type=trace", "big", bytes.Repeat([]byte("x"), 4096), 201, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.upload(tt.id, tt.token, tt.query, tt.file, tt.data)
			wantStatus(t, tt.name, r, tt.status)
			wantHeader(t, tt.name, r, "Content-Type", "application/json")
			if tt.status == 403 {
				wantHeader(t, tt.name, r, "Job-Status", tt.status403)
			}
			if tt.status == 201 && string(r.Body) != "{}" {
				t.Errorf("body %q", r.Body)
			}
		})
	}
	// Not multipart at all.
	r := c.do(http.MethodPost, path, strings.NewReader("raw"), "JOB-TOKEN", j.Token, "Content-Type", "application/zip")
	wantStatus(t, "not multipart", r, 400)

	arts := c.s.Job(id).Artifacts
	if len(arts) != 4 {
		t.Fatalf("artifacts %+v", arts)
	}
	a := arts[0]
	if a.Filename != "artifacts.zip" || a.Format != "zip" || a.Type != "archive" || a.ExpireIn != "1 day" {
		t.Errorf("artifact 0 %+v", a)
	}
	files, err := a.ZipFiles()
	if err != nil || len(files) != 2 || string(files["a.txt"]) != "A" || string(files["sub/b.txt"]) != "B" {
		t.Errorf("ZipFiles %v %v", files, err)
	}
	if b := arts[1]; b.Format != "gzip" || b.Type != "junit" || string(b.Data) != "gz" {
		t.Errorf("artifact 1 %+v", b)
	}
	if _, err := arts[1].ZipFiles(); err == nil {
		t.Errorf("ZipFiles of gzip data: no error")
	}
	if d := arts[2]; d.Format != "zip" || d.Type != "archive" || d.ExpireIn != "" {
		t.Errorf("artifact 2 %+v", d)
	}
}

// TestUploadStreamed sends a chunked body (no Content-Length) with the
// options as multipart fields, as the Rust crate does.
func TestUploadStreamed(t *testing.T) {
	c := newTC(t)
	id := c.s.Enqueue(gitlabtest.NewJob("s"))
	j := c.mustJob()
	zipData := makeZip(t, map[string]string{"f": strings.Repeat("data", 10000)})
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		_ = mw.WriteField("artifact_format", "zip")
		_ = mw.WriteField("artifact_type", "archive")
		_ = mw.WriteField("expire_in", "2 days")
		fw, _ := mw.CreateFormFile("file", "artifacts.zip")
		for i := 0; i < len(zipData); i += 1000 {
			_, _ = fw.Write(zipData[i:min(i+1000, len(zipData))])
		}
		pw.CloseWithError(mw.Close())
	}()
	req, _ := http.NewRequest(http.MethodPost, c.s.URL+"/api/v4/jobs/"+itoa(id)+"/artifacts", pr)
	req.Header.Set("JOB-TOKEN", j.Token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("status %d", res.StatusCode)
	}
	a := c.s.Job(id).Artifacts
	if len(a) != 1 || !bytes.Equal(a[0].Data, zipData) || a[0].ExpireIn != "2 days" || a[0].Type != "archive" {
		t.Errorf("artifacts %+v", a)
	}
}

func TestArtifactRedirect(t *testing.T) {
	c := newTC(t, gitlabtest.WithArtifactRedirect())
	zipData := makeZip(t, map[string]string{"x": "y"})
	dep := c.s.AddFinishedJob("build", zipData)
	c.s.Enqueue(gitlabtest.NewJob("test").DependsOn(dep))
	j := c.mustJob()
	apiPath := "/api/v4/jobs/" + itoa(dep) + "/artifacts"
	r := c.do(http.MethodGet, apiPath, nil, "JOB-TOKEN", j.Token)
	wantStatus(t, "download", r, 302)
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	api, _ := url.Parse(c.s.URL)
	if loc.Hostname() != "127.0.0.1" || loc.Host == api.Host || !strings.HasPrefix(loc.Path, "/_storage/") || len(loc.Path) <= len("/_storage/") {
		t.Fatalf("Location %q (API at %q): want object storage on another host", loc, api.Host)
	}
	get := func(u string, hdr ...string) resp {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return resp{Status: res.StatusCode, Header: res.Header, Body: body}
	}
	// Following the redirect with the job token is a leak.
	wantStatus(t, "leak", get(loc.String(), "JOB-TOKEN", j.Token), 400)
	if v := c.s.Violations(); len(v) != 1 || !strings.Contains(v[0], "JOB-TOKEN") || strings.Contains(v[0], j.Token) {
		t.Errorf("violations %q", v)
	}
	r = get(loc.String())
	wantStatus(t, "storage", r, 200)
	wantHeader(t, "storage", r, "Content-Type", "application/zip")
	if !bytes.Equal(r.Body, zipData) {
		t.Errorf("storage served other bytes")
	}
	wantStatus(t, "unknown object", get(loc.Scheme+"://"+loc.Host+"/_storage/nope"), 404)
	wantStatus(t, "no API on storage", get(loc.Scheme+"://"+loc.Host+apiPath, "JOB-TOKEN", j.Token), 404)
	wantStatus(t, "no storage on API", c.do(http.MethodGet, loc.Path, nil), 404)

	// A default net/http client follows the redirect and forwards custom
	// headers: exactly the leak the fake is there to catch.
	naive := &http.Client{Transport: c.hc.Transport}
	// A careful client drops tokens when a redirect leaves the host.
	careful := &http.Client{Transport: c.hc.Transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != via[0].URL.Host {
			req.Header.Del("JOB-TOKEN")
		}
		return nil
	}}
	for _, tt := range []struct {
		name   string
		hc     *http.Client
		status int
	}{{"naive", naive, 400}, {"careful", careful, 200}} {
		req, _ := http.NewRequest(http.MethodGet, c.s.URL+apiPath, nil)
		req.Header.Set("JOB-TOKEN", j.Token)
		res, err := tt.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.status || tt.status == 200 && !bytes.Equal(body, zipData) {
			t.Errorf("%s client: status %d", tt.name, res.StatusCode)
		}
	}
	if n := len(c.s.Violations()); n != 2 {
		t.Errorf("violations %q", c.s.Violations())
	}
}
