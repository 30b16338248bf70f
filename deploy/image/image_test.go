package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/wasmrunner/wasmrunner/deploy/image"
)

// root is the wasmrunner module's directory.
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r, "cmd", "wasmrunner")); err != nil {
		t.Fatalf("not the wasmrunner module: %v", err)
	}
	return r
}

var testOptions = image.Options{
	Version:  "v1.2.3-test",
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Source:   "https://example.com/wasmrunner",
	Created:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
}

// TestImage builds the image for both platforms, pushes it to a registry
// over HTTP, and reads it back as a client would: the index, each image's
// config and its files. A second build gives the same digest.
func TestImage(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	ctx := context.Background()
	o := testOptions
	o.Root = root(t)
	idx, err := image.Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	want, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/wasmrunner:test", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx)); err != nil {
		t.Fatal(err)
	}

	got, err := remote.Index(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled index %s, pushed %s", d, want)
	}
	im, err := got.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s", im.MediaType)
	}
	var platforms []string
	for _, desc := range im.Manifests {
		if desc.Platform == nil {
			t.Fatalf("manifest %s without a platform", desc.Digest)
		}
		platforms = append(platforms, desc.Platform.String())
		t.Run(desc.Platform.String(), func(t *testing.T) {
			img, err := got.Image(desc.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, o, *desc.Platform, img)
		})
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms %v, want %v", platforms, want)
	}

	// Reproducible: the same sources and options, the same digest.
	again, err := image.Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := again.Digest(); d != want {
		t.Errorf("a second build is %s, the first %s", d, want)
	}
	// Another version is another image.
	o.Version = "v1.2.4-test"
	other, err := image.Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := other.Digest(); d == want {
		t.Errorf("another version has the same digest %s", d)
	}

	// An OCI layout holds the same index.
	p, err := layout.Write(t.TempDir(), again)
	if err != nil {
		t.Fatal(err)
	}
	fromLayout, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if d, err := fromLayout.Digest(); err != nil || d != want {
		t.Errorf("the layout's index is %s (%v), want %s", d, err, want)
	}
}

// checkImage checks an image's config and files.
func checkImage(t *testing.T, o image.Options, p v1.Platform, img v1.Image) {
	t.Helper()
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s", mt)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != p.OS || cfg.Architecture != p.Architecture {
		t.Errorf("config platform %s/%s, index says %s", cfg.OS, cfg.Architecture, p)
	}
	c := cfg.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/wasmrunner"}) {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if c.StopSignal != "SIGQUIT" {
		t.Errorf("stop signal %q", c.StopSignal)
	}
	if !cfg.Created.Equal(o.Created) {
		t.Errorf("created %v, want %v", cfg.Created, o.Created)
	}
	for _, h := range cfg.History {
		if !h.Created.Equal(o.Created) {
			t.Errorf("history %q created %v", h.CreatedBy, h.Created)
		}
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.source":   o.Source,
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.version":  o.Version,
	} {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	for _, e := range []string{"WASMRUNNER_MODULES=/usr/share/wasmrunner/modules", "XDG_CACHE_HOME=/var/cache", "HOME=/home/nonroot", "WASMRUNNER_LISTEN=:9252"} {
		if !slices.Contains(c.Env, e) {
			t.Errorf("env %q lacks %s", c.Env, e)
		}
	}

	files := extract(t, img)
	bin, ok := files["usr/local/bin/wasmrunner"]
	if !ok {
		t.Fatal("no /usr/local/bin/wasmrunner")
	}
	if bin.Mode != 0o755 || bin.Uid != 0 {
		t.Errorf("wasmrunner mode %o uid %d", bin.Mode, bin.Uid)
	}
	checkStatic(t, p, bin.body)
	shell, err := os.ReadFile(filepath.Join(root(t), "examples", "modules", "shell.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := files["usr/share/wasmrunner/modules/shell.wasm"]; !ok || !bytes.Equal(f.body, shell) {
		t.Error("the modules dir lacks examples/modules/shell.wasm")
	}
	for _, dir := range []string{"home/nonroot", "var/cache/wasmrunner"} {
		if f, ok := files[dir]; !ok || f.Uid != 65532 || f.Typeflag != tar.TypeDir {
			t.Errorf("%s: %+v", dir, f.Header)
		}
	}
	if f := files["tmp"]; f.Header == nil || f.Mode != 0o1777 {
		t.Errorf("/tmp mode %o", f.Mode)
	}
	if !strings.Contains(string(files["etc/passwd"].body), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd: %q", files["etc/passwd"].body)
	}
	for n, f := range files {
		if !f.ModTime.Equal(o.Created) {
			t.Errorf("%s mtime %v", n, f.ModTime)
		}
	}

	// The binary of this machine's platform runs and says what it is,
	// and loads the handlers it ships with.
	if p.Architecture != runtime.GOARCH || runtime.GOOS != "linux" {
		return
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "wasmrunner")
	if err := os.WriteFile(exe, bin.body, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("wasmrunner version: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "wasmrunner "+o.Version+"\n") || !strings.Contains(string(out), o.Revision) {
		t.Errorf("wasmrunner version says %q", out)
	}
	mods := filepath.Join(dir, "modules")
	if err := os.Mkdir(mods, 0o755); err != nil {
		t.Fatal(err)
	}
	for n, f := range files {
		if base, ok := strings.CutPrefix(n, "usr/share/wasmrunner/modules/"); ok && base != "" {
			if err := os.WriteFile(filepath.Join(mods, base), f.body, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cmd := exec.Command(exe, "modules", "check", mods)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("wasmrunner modules check of the image's handlers: %v: %s", err, out)
	}
}

// checkStatic checks that an executable is for p and needs no dynamic
// loader or library.
func checkStatic(t *testing.T, p v1.Platform, b []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("wasmrunner is not ELF: %v", err)
	}
	defer f.Close()
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.Architecture]
	if f.Machine != machine {
		t.Errorf("wasmrunner for %s is %s", p, f.Machine)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Error("wasmrunner names a dynamic loader: not static")
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		t.Errorf("wasmrunner needs %v", libs)
	}
}

type file struct {
	*tar.Header
	body []byte
}

// extract reads an image's flattened file system.
func extract(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	files := map[string]file{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = file{h, b}
	}
	return files
}

// TestAssembleErrors: what Build refuses.
func TestAssembleErrors(t *testing.T) {
	mods := t.TempDir()
	bin := filepath.Join(t.TempDir(), "wasmrunner")
	if err := os.WriteFile(bin, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		o        image.Options
		binaries map[string]string
		want     string
	}{
		{"no binary for a platform", image.Options{Version: "v1", Modules: filepath.Join(root(t), "examples", "modules")},
			map[string]string{"linux/amd64": bin}, "no binary for linux/arm64"},
		{"empty modules dir", image.Options{Version: "v1", Modules: mods},
			map[string]string{"linux/amd64": bin, "linux/arm64": bin}, "no file in"},
		{"missing modules dir", image.Options{Version: "v1", Modules: filepath.Join(mods, "nope")},
			map[string]string{"linux/amd64": bin, "linux/arm64": bin}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := image.Assemble(tt.o, tt.binaries)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
	if _, err := image.Build(context.Background(), image.Options{Root: root(t)}); err == nil {
		t.Error("Build without a version succeeded")
	}
	if _, err := image.Build(context.Background(), image.Options{Root: root(t), Version: "v1",
		Platforms: []v1.Platform{{OS: "windows", Architecture: "amd64"}}}); err == nil {
		t.Error("Build for windows succeeded")
	}
}
