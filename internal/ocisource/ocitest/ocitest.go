// Package ocitest runs an in-process OCI registry over real HTTP for tests
// of handler artifacts: go-containerregistry's pkg/registry (in memory) in
// an httptest server on 127.0.0.1, with hooks in front of it: basic auth,
// blobs served with wrong bytes, and a log of the requests.
package ocitest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is an in-process registry.
type Registry struct {
	*httptest.Server
	// Host is the registry's host:port (127.0.0.1:N): reached over plain
	// HTTP, as every loopback registry is.
	Host string

	mu       sync.Mutex
	user     string
	pass     string
	corrupt  map[string]Corruption
	requests []string
	down     bool
}

// Corruption is how a blob is served wrong.
type Corruption int

const (
	// Flip serves the blob with one byte changed (same size).
	Flip Corruption = iota + 1
	// Append serves the blob with bytes after it (a registry that sends
	// more than the descriptor says), without a Content-Length.
	Append
)

// New starts a registry, closed when the test ends.
func New(t testing.TB) *Registry {
	r := &Registry{corrupt: map[string]Corruption{}}
	next := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serve(w, req, next)
	}))
	r.Host = strings.TrimPrefix(r.URL, "http://")
	t.Cleanup(r.Close)
	return r
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request, next http.Handler) {
	r.mu.Lock()
	r.requests = append(r.requests, req.Method+" "+req.URL.Path)
	user, pass, down := r.user, r.pass, r.down
	var how Corruption
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
		how = r.corrupt[req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:]]
	}
	r.mu.Unlock()
	if down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	if user != "" {
		if u, p, ok := req.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="ocitest"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
	}
	if how == 0 {
		next.ServeHTTP(w, req)
		return
	}
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	switch how {
	case Flip:
		if len(body) > 0 {
			body = bytes.Clone(body)
			body[len(body)/2] ^= 0xff
		}
	case Append:
		body = append(bytes.Clone(body), bytes.Repeat([]byte("x"), 1<<20)...)
		rec.Header().Del("Content-Length")
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(body)
}

// RequireAuth makes every request need basic auth with user and pass.
func (r *Registry) RequireAuth(user, pass string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.user, r.pass = user, pass
}

// Corrupt serves the blob of digest ("sha256:...") wrong; 0 serves it
// right again.
func (r *Registry) Corrupt(digest string, how Corruption) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if how == 0 {
		delete(r.corrupt, digest)
		return
	}
	r.corrupt[digest] = how
}

// SetDown makes every request fail with 503 (true) or be served again.
func (r *Registry) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

// Requests returns the requests served so far ("GET /v2/...").
func (r *Registry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

// Ref is "oci://HOST/repo".
func (r *Registry) Ref(repo string) string { return "oci://" + r.Host + "/" + repo }

// DockerConfig writes a docker config dir whose config.json holds user
// and pass for the registry, and returns the dir (for DOCKER_CONFIG); its
// config.json is filepath.Join(dir, "config.json").
func (r *Registry) DockerConfig(t testing.TB, user, pass string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{
		r.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))},
	}}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
