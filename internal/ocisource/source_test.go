package ocisource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/wasmrunner/wasmrunner/internal/ocisource"
	"github.com/wasmrunner/wasmrunner/internal/ocisource/ocitest"
)

// wasm is a module's bytes: the header and a custom section naming it,
// so that each version differs.
func wasm(name string) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00\x00")
	body := append([]byte{byte(len(name))}, name...)
	return append(append(b, byte(len(body))), body...)
}

// handlersDir writes files (name -> content) to a new dir.
func handlersDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func push(t *testing.T, reg *ocitest.Registry, ref string, files map[string][]byte) ocispec.Descriptor {
	t.Helper()
	desc, _, err := ocisource.Push(context.Background(), handlersDir(t, files), ref, 0, ocisource.Access{})
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return desc
}

// observer records what a source reports.
type observer struct {
	mu       sync.Mutex
	serving  []string
	failed   []error
	resolved int
}

func (o *observer) Serving(d string) { o.mu.Lock(); o.serving = append(o.serving, d); o.mu.Unlock() }
func (o *observer) Resolved(time.Time) {
	o.mu.Lock()
	o.resolved++
	o.mu.Unlock()
}
func (o *observer) Failed(err error) { o.mu.Lock(); o.failed = append(o.failed, err); o.mu.Unlock() }
func (o *observer) failures() []error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.failed)
}

func newSource(t *testing.T, ref, cacheDir string, opts ocisource.Options) (*ocisource.Source, *observer) {
	t.Helper()
	obs := &observer{}
	opts.CacheDir, opts.Observer = cacheDir, obs
	if opts.Interval == 0 {
		opts.Interval = 20 * time.Millisecond
	}
	s, err := ocisource.New(ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, obs
}

// dirFiles reads a modules dir.
func dirFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = data
	}
	return out
}

func sameFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// eventually polls cond for up to 20 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in     string
		pinned bool
		err    string
	}{
		{"oci://registry.example.com/team/handlers:v1", false, ""},
		{"oci://localhost:5000/handlers@sha256:" + strings.Repeat("a", 64), true, ""},
		{"oci://localhost:5000/handlers:v1@sha256:" + strings.Repeat("a", 64), true, ""},
		{"oci://localhost:5000/handlers", false, "a tag (:TAG) or a digest"},
		{"registry.example.com/handlers:v1", false, "not an oci:// reference"},
		{"oci://localhost:5000/Handlers:v1", false, "bad reference"},
		{"oci://localhost:5000/handlers@sha256:abc", false, "bad reference"},
	} {
		r, err := ocisource.ParseRef(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || r.Pinned != tc.pinned {
			t.Errorf("%s: %+v %v", tc.in, r, err)
		}
	}
}

// TestPushAndPull: what modules push publishes is what a source
// materializes, byte for byte; the same files give the same digest.
func TestPushAndPull(t *testing.T) {
	reg := ocitest.New(t)
	files := map[string][]byte{
		"shell.wasm":    wasm("shell"),
		"shell.toml":    []byte("[limits]\nmemory = \"64MiB\"\n"),
		"lab@v2.wasm":   wasm("lab v2"),
		"README.md":     []byte("not a handler file: not pushed"),
		"notes.txt.bak": []byte("nor this"),
	}
	ref := reg.Ref("team/handlers:v1")
	desc := push(t, reg, ref, files)
	if again := push(t, reg, ref, files); again.Digest != desc.Digest {
		t.Errorf("pushing the same files again gave %s, then %s", desc.Digest, again.Digest)
	}
	s, obs := newSource(t, ref, t.TempDir(), ocisource.Options{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	delete(files, "README.md")
	delete(files, "notes.txt.bak")
	if got := dirFiles(t, s.Dir()); !sameFiles(got, files) {
		t.Errorf("modules dir holds %v", got)
	}
	if s.Digest() != string(desc.Digest) || len(obs.serving) != 1 || obs.serving[0] != string(desc.Digest) {
		t.Errorf("digest %s, observed %v; pushed %s", s.Digest(), obs.serving, desc.Digest)
	}

	// The manifest: artifactType, one layer per file with its title.
	repo, _ := remote.NewRepository(reg.Host + "/team/handlers")
	repo.PlainHTTP = true
	_, rc, err := repo.FetchReference(context.Background(), "v1")
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	json.NewDecoder(rc).Decode(&m)
	rc.Close()
	if m.ArtifactType != ocisource.ArtifactType || m.Config.MediaType != ocispec.MediaTypeEmptyJSON || len(m.Layers) != 3 {
		t.Fatalf("manifest %+v", m)
	}
	for _, l := range m.Layers {
		name := l.Annotations[ocispec.AnnotationTitle]
		want := ocisource.MediaTypeWasm
		if strings.HasSuffix(name, ".toml") {
			want = ocisource.MediaTypeTOML
		}
		if l.MediaType != want {
			t.Errorf("%s: media type %s", name, l.MediaType)
		}
	}
}

// TestTagUpdate: a new digest under the tag is pulled within an interval
// and swapped in whole, reload is called after the swap, the old version
// is removed from the cache once released, and a digest reference is
// never re-resolved.
func TestTagUpdate(t *testing.T) {
	reg := ocitest.New(t)
	ref := reg.Ref("handlers:latest")
	v1 := map[string][]byte{"a.wasm": wasm("a1"), "b.wasm": wasm("b1")}
	d1 := push(t, reg, ref, v1)
	cacheDir := t.TempDir()
	s, obs := newSource(t, ref, cacheDir, ocisource.Options{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var reloads []map[string][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			reloads = append(reloads, dirFiles(t, s.Dir()))
			return nil
		})
	}()
	v2 := map[string][]byte{"a.wasm": wasm("a2"), "c.wasm": wasm("c2"), "c.toml": []byte("# c\n")}
	d2 := push(t, reg, ref, v2)
	eventually(t, "the new version", func() bool { return s.Digest() == string(d2.Digest) })
	eventually(t, "the reload", func() bool { mu.Lock(); defer mu.Unlock(); return len(reloads) == 1 })
	mu.Lock()
	if !sameFiles(reloads[0], v2) {
		t.Errorf("reload saw %v", reloads[0])
	}
	mu.Unlock()
	if got := dirFiles(t, s.Dir()); !sameFiles(got, v2) {
		t.Errorf("modules dir holds %v", got)
	}
	old := filepath.Join(cacheDir, "versions", "sha256-"+d1.Digest.Encoded())
	eventually(t, "the old version's removal", func() bool { _, err := os.Stat(old); return errors.Is(err, os.ErrNotExist) })
	if _, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", wasmDigest("b1").Encoded())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the old version's blob is still cached: %v", err)
	}
	if len(obs.failures()) > 0 {
		t.Errorf("failures: %v", obs.failures())
	}
	cancel()
	<-done

	// A digest reference: pulled once, then never asked again, even
	// by a new source over the same cache while the registry is down.
	pinned := reg.Ref("handlers@" + d1.Digest.String())
	p, _ := newSource(t, pinned, cacheDir, ocisource.Options{})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Close()
	reg.SetDown(true)
	before := len(reg.Requests())
	p2, _ := newSource(t, pinned, cacheDir, ocisource.Options{})
	if err := p2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	p2.Run(rctx, nil)
	rcancel()
	if n := len(reg.Requests()) - before; n != 0 {
		t.Errorf("a digest reference made %d requests: %v", n, reg.Requests()[before:])
	}
	if got := dirFiles(t, p2.Dir()); !sameFiles(got, v1) {
		t.Errorf("pinned modules dir holds %v", got)
	}
}

func wasmDigest(name string) digest.Digest { return digest.FromBytes(wasm(name)) }

// TestBadBlobKeepsLastGood: a blob served with wrong bytes (or with more
// bytes than its descriptor says) is refused, nothing of it is cached,
// the last good version keeps serving, and the failure is observed; once
// served right it is pulled.
func TestBadBlobKeepsLastGood(t *testing.T) {
	for _, how := range []ocitest.Corruption{ocitest.Flip, ocitest.Append} {
		reg := ocitest.New(t)
		ref := reg.Ref("handlers:v")
		v1 := map[string][]byte{"a.wasm": wasm("a1")}
		push(t, reg, ref, v1)
		cacheDir := t.TempDir()
		s, obs := newSource(t, ref, cacheDir, ocisource.Options{})
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		v2 := map[string][]byte{"a.wasm": wasm("a2")}
		bad := wasmDigest("a2")
		reg.Corrupt(bad.String(), how)
		d2 := push(t, reg, ref, v2)
		prev, err := s.Sync(context.Background())
		if err == nil || !strings.Contains(err.Error(), "a.wasm") {
			t.Fatalf("corruption %d: sync: %v", how, err)
		}
		t.Logf("corruption %d: %v", how, err)
		if prev != nil || len(obs.failures()) != 1 {
			t.Errorf("failures %v", obs.failures())
		}
		if got := dirFiles(t, s.Dir()); !sameFiles(got, v1) {
			t.Errorf("modules dir holds %v", got)
		}
		if _, err := os.Stat(filepath.Join(cacheDir, "blobs", "sha256", bad.Encoded())); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the bad blob was cached: %v", err)
		}
		if tmp, _ := filepath.Glob(filepath.Join(cacheDir, "*", ".tmp-*")); len(tmp) > 0 {
			t.Errorf("left behind: %v", tmp)
		}
		reg.Corrupt(bad.String(), 0)
		if _, err := s.Sync(context.Background()); err != nil || s.Digest() != string(d2.Digest) {
			t.Fatalf("sync once served right: %v (%s)", err, s.Digest())
		}
		if got := dirFiles(t, s.Dir()); !sameFiles(got, v2) {
			t.Errorf("modules dir holds %v", got)
		}
	}
}

// TestOversizeRefusedUnread: a layer larger than the module size limit,
// or a manifest larger than 64 KiB, is refused without being fetched.
func TestOversizeRefusedUnread(t *testing.T) {
	reg := ocitest.New(t)
	big := append(wasm("big"), make([]byte, 8<<10)...)
	ref := reg.Ref("handlers:big")
	push(t, reg, ref, map[string][]byte{"big.wasm": big, "small.wasm": wasm("small")})
	s, obs := newSource(t, ref, t.TempDir(), ocisource.Options{MaxModuleSize: 4 << 10})
	err := s.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "big.wasm: the artifact says it is 8") || !strings.Contains(err.Error(), "refused unread") {
		t.Fatalf("start: %v", err)
	}
	if len(obs.failures()) != 1 {
		t.Errorf("failures %v", obs.failures())
	}
	bigDigest := digest.FromBytes(big).String()
	for _, r := range reg.Requests() {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, bigDigest) {
			t.Errorf("the oversize blob was asked for: %s", r)
		}
	}

	// A manifest over 64 KiB (here: one long annotation).
	repo, _ := remote.NewRepository(reg.Host + "/handlers")
	repo.PlainHTTP = true
	layer := content.NewDescriptorFromBytes(ocisource.MediaTypeWasm, wasm("x"))
	layer.Annotations = map[string]string{ocispec.AnnotationTitle: "x.wasm", "padding": strings.Repeat("p", 70<<10)}
	m := pushManifest(t, repo, "huge", ocispec.Manifest{ArtifactType: ocisource.ArtifactType, Config: emptyConfig(), Layers: []ocispec.Descriptor{layer}})
	s2, _ := newSource(t, reg.Ref("handlers:huge"), t.TempDir(), ocisource.Options{})
	err = s2.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "a manifest is at most 65536; refused unread") {
		t.Fatalf("start: %v", err)
	}
	for _, r := range reg.Requests() {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, m.Digest.String()) {
			t.Errorf("the oversize manifest was fetched: %s", r)
		}
	}
}

func emptyConfig() ocispec.Descriptor {
	c := ocispec.DescriptorEmptyJSON
	c.Data = nil
	return c
}

// pushManifest pushes m (with its layers' blobs, which are wasm(...) of
// their titles or empty) under tag.
func pushManifest(t *testing.T, repo *remote.Repository, tag string, m ocispec.Manifest) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	m.Versioned = specs.Versioned{SchemaVersion: 2}
	m.MediaType = ocispec.MediaTypeImageManifest
	data, _ := json.Marshal(m)
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, data)
	if err := repo.Manifests().PushReference(ctx, desc, bytes.NewReader(data), tag); err != nil {
		t.Fatal(err)
	}
	return desc
}

// TestNotHandlerArtifacts: what is not a handler artifact is refused with
// a reason: another artifact type, a file name with a path, a wrong media
// type, no title.
func TestNotHandlerArtifacts(t *testing.T) {
	reg := ocitest.New(t)
	repo, _ := remote.NewRepository(reg.Host + "/other")
	repo.PlainHTTP = true
	layer := func(title, mediaType string) ocispec.Descriptor {
		d := content.NewDescriptorFromBytes(mediaType, wasm(title))
		if title != "" {
			d.Annotations = map[string]string{ocispec.AnnotationTitle: title}
		}
		return d
	}
	for _, tc := range []struct {
		name string
		m    ocispec.Manifest
		want string
	}{
		{"image", ocispec.Manifest{Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString("{}"), Size: 2}, Layers: []ocispec.Descriptor{layer("a.wasm", ocisource.MediaTypeWasm)}}, "not a handler artifact"},
		{"path", ocispec.Manifest{ArtifactType: ocisource.ArtifactType, Config: emptyConfig(), Layers: []ocispec.Descriptor{layer("../a.wasm", ocisource.MediaTypeWasm)}}, `file name "../a.wasm" is not a handler file`},
		{"dir", ocispec.Manifest{ArtifactType: ocisource.ArtifactType, Config: emptyConfig(), Layers: []ocispec.Descriptor{layer("x/a.wasm", ocisource.MediaTypeWasm)}}, "is not a handler file"},
		{"media type", ocispec.Manifest{ArtifactType: ocisource.ArtifactType, Config: emptyConfig(), Layers: []ocispec.Descriptor{layer("a.wasm", "application/vnd.oci.image.layer.v1.tar")}}, `its media type is "application/vnd.oci.image.layer.v1.tar", not "application/wasm"`},
		{"no title", ocispec.Manifest{ArtifactType: ocisource.ArtifactType, Config: emptyConfig(), Layers: []ocispec.Descriptor{layer("", ocisource.MediaTypeWasm)}}, "has no org.opencontainers.image.title annotation"},
		{"duplicate", ocispec.Manifest{ArtifactType: ocisource.ArtifactType, Config: emptyConfig(), Layers: []ocispec.Descriptor{layer("a.wasm", ocisource.MediaTypeWasm), layer("a.wasm", ocisource.MediaTypeWasm)}}, "two files named a.wasm"},
		{"empty", ocispec.Manifest{ArtifactType: ocisource.ArtifactType, Config: emptyConfig()}, "has no files"},
		// oras push --image-spec v1.0 --artifact-type: the config's media type.
		{"v1.0 artifact", ocispec.Manifest{Config: ocispec.Descriptor{MediaType: ocisource.ArtifactType, Digest: ocispec.DescriptorEmptyJSON.Digest, Size: 2}, Layers: []ocispec.Descriptor{layer("a.wasm", ocisource.MediaTypeWasm)}}, ""},
	} {
		tag := strings.ReplaceAll(tc.name, " ", "-")
		pushManifest(t, repo, tag, tc.m)
		for _, l := range tc.m.Layers {
			repo.Blobs().Push(context.Background(), l, bytes.NewReader(wasm(l.Annotations[ocispec.AnnotationTitle])))
		}
		s, _ := newSource(t, reg.Ref("other:"+tag), t.TempDir(), ocisource.Options{})
		err := s.Start(context.Background())
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
}

// TestAuth: a registry that requires basic auth is reached with the
// credentials of the docker config ($DOCKER_CONFIG, or Access.AuthFile),
// refused without them.
func TestAuth(t *testing.T) {
	reg := ocitest.New(t)
	reg.RequireAuth("alice", "s3cret")
	cfgDir := reg.DockerConfig(t, "alice", "s3cret")
	ref := reg.Ref("private:v1")
	files := map[string][]byte{"p.wasm": wasm("p")}
	if _, _, err := ocisource.Push(context.Background(), handlersDir(t, files), ref, 0, ocisource.Access{AuthFile: filepath.Join(cfgDir, "config.json")}); err != nil {
		t.Fatal(err)
	}

	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials
	s, _ := newSource(t, ref, t.TempDir(), ocisource.Options{})
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "credential not found") {
		t.Errorf("start without credentials: %v", err)
	}
	wrong := reg.DockerConfig(t, "alice", "wrong")
	s, _ = newSource(t, ref, t.TempDir(), ocisource.Options{Access: ocisource.Access{AuthFile: filepath.Join(wrong, "config.json")}})
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("start with wrong credentials: %v", err)
	}

	t.Setenv("DOCKER_CONFIG", cfgDir)
	s, _ = newSource(t, ref, t.TempDir(), ocisource.Options{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("start with DOCKER_CONFIG: %v", err)
	}
	if got := dirFiles(t, s.Dir()); !sameFiles(got, files) {
		t.Errorf("modules dir holds %v", got)
	}

	// A credential helper (docker-credential-NAME on PATH) named by the
	// config's credHelpers.
	bin := t.TempDir()
	helper := "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\nprintf '{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}' \"$host\"\n"
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-ocitest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	helperCfg := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(helperCfg, []byte(`{"credHelpers":{"`+reg.Host+`":"ocitest"}}`), 0o600)
	s, _ = newSource(t, ref, t.TempDir(), ocisource.Options{Access: ocisource.Access{AuthFile: helperCfg}})
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("start with a credential helper: %v", err)
	}
}

// TestRestartWithRegistryDown: a tag's last good version serves from the
// cache when the registry cannot be reached at start (and the failure is
// observed); with no cached version, start fails.
func TestRestartWithRegistryDown(t *testing.T) {
	reg := ocitest.New(t)
	ref := reg.Ref("handlers:v1")
	files := map[string][]byte{"a.wasm": wasm("a")}
	push(t, reg, ref, files)
	cacheDir := t.TempDir()
	s, _ := newSource(t, ref, cacheDir, ocisource.Options{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	reg.SetDown(true)
	s2, obs := newSource(t, ref, cacheDir, ocisource.Options{Timeout: 5 * time.Second})
	if err := s2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := dirFiles(t, s2.Dir()); !sameFiles(got, files) || len(obs.failures()) != 1 {
		t.Errorf("modules dir holds %v; failures %v", got, obs.failures())
	}
	s3, _ := newSource(t, ref, t.TempDir(), ocisource.Options{Timeout: 5 * time.Second})
	if err := s3.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("start with nothing cached: %v", err)
	}
}

// TestIndexOfHandlers: an index of handler artifacts serves the files of
// all of them; a file in two is refused.
func TestIndexOfHandlers(t *testing.T) {
	reg := ocitest.New(t)
	da := push(t, reg, reg.Ref("set:a"), map[string][]byte{"a.wasm": wasm("a")})
	db := push(t, reg, reg.Ref("set:b"), map[string][]byte{"b.wasm": wasm("b"), "b.toml": []byte("#\n")})
	dc := push(t, reg, reg.Ref("set:c"), map[string][]byte{"a.wasm": wasm("another a")})
	repo, _ := remote.NewRepository(reg.Host + "/set")
	repo.PlainHTTP = true
	index := func(tag string, ms ...ocispec.Descriptor) {
		data, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: ms})
		desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, data)
		if err := repo.Manifests().PushReference(context.Background(), desc, bytes.NewReader(data), tag); err != nil {
			t.Fatal(err)
		}
	}
	index("all", da, db)
	s, _ := newSource(t, reg.Ref("set:all"), t.TempDir(), ocisource.Options{})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"a.wasm": wasm("a"), "b.wasm": wasm("b"), "b.toml": []byte("#\n")}
	if got := dirFiles(t, s.Dir()); !sameFiles(got, want) {
		t.Errorf("modules dir holds %v", got)
	}
	index("clash", da, dc)
	s, _ = newSource(t, reg.Ref("set:clash"), t.TempDir(), ocisource.Options{})
	if err := s.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "a.wasm is in two manifests of the index") {
		t.Errorf("start: %v", err)
	}
}

// TestSharedCache: two sources of one cache dir (a runner replaced on
// SIGHUP while the old one drains) with different tags each keep their
// own version through updates and clean-ups.
func TestSharedCache(t *testing.T) {
	reg := ocitest.New(t)
	ra, rb := reg.Ref("h:a"), reg.Ref("h:b")
	push(t, reg, ra, map[string][]byte{"x.wasm": wasm("a1")})
	push(t, reg, rb, map[string][]byte{"x.wasm": wasm("b1")})
	cacheDir := t.TempDir()
	a, _ := newSource(t, ra, cacheDir, ocisource.Options{})
	b, _ := newSource(t, rb, cacheDir, ocisource.Options{})
	for _, s := range []*ocisource.Source{a, b} {
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i := 2; i < 5; i++ {
		for _, x := range []struct {
			s   *ocisource.Source
			ref string
			tag string
		}{{a, ra, "a"}, {b, rb, "b"}} {
			want := map[string][]byte{"x.wasm": wasm(x.tag + string(rune('0'+i)))}
			push(t, reg, x.ref, want)
			prev, err := x.s.Sync(context.Background())
			if err != nil || prev == nil {
				t.Fatalf("sync %s: %v", x.ref, err)
			}
			// What Run does after the reload.
			prev.Release()
			if err := x.s.Clean(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := dirFiles(t, x.s.Dir()); !sameFiles(got, want) {
				t.Fatalf("%s: holds %v", x.ref, got)
			}
		}
		if got := dirFiles(t, a.Dir()); !bytes.Equal(got["x.wasm"], wasm("a"+string(rune('0'+i)))) {
			t.Fatalf("a holds %v after b's clean-up", got)
		}
	}
	vers, _ := filepath.Glob(filepath.Join(cacheDir, "versions", "sha256-*[0-9a-f]"))
	if len(vers) != 2 {
		t.Errorf("versions kept: %v", vers)
	}
	a.Close()
	if err := b.Clean(context.Background()); err != nil {
		t.Fatal(err)
	}
	vers, _ = filepath.Glob(filepath.Join(cacheDir, "versions", "sha256-*[0-9a-f]"))
	links, _ := filepath.Glob(filepath.Join(cacheDir, "live", "*"))
	if len(vers) != 1 || len(links) != 2 { // b's link and its lock
		t.Errorf("after a closed: versions %v, links %v", vers, links)
	}
}
