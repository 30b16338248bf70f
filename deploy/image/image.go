// Package image builds wasmrunner's container image without Docker: an OCI
// image index with one image per platform (linux/amd64 and linux/arm64 by
// default), each a static wasmrunner binary run as a non-root user, with the
// example handlers as the default modules dir.
//
// The image is reproducible: every timestamp is fixed (Options.Created, the
// Unix epoch by default), files are written in a fixed order with fixed
// owners and modes, and the binary is built with -trimpath, without VCS
// stamping and with the version and revision given as -ldflags, so the same
// sources, options and Go toolchain give the same digest.
//
// Layout of each image:
//
//	/usr/local/bin/wasmrunner          the entrypoint (CGO_ENABLED=0)
//	/usr/share/wasmrunner/modules/     the example handlers (WASMRUNNER_MODULES)
//	/etc/passwd, /etc/group            root and nonroot (65532)
//	/home/nonroot                      HOME, owned by 65532
//	/var/cache/wasmrunner              the caches and build dirs (XDG_CACHE_HOME=/var/cache), owned by 65532
//	/tmp                               1777
//
// It has no shell and no CA bundle: the binary carries Go's fallback roots
// (golang.org/x/crypto/x509roots/fallback), used when the system has none;
// SSL_CERT_FILE or SSL_CERT_DIR name others.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths and identities inside the image.
const (
	Binary     = "/usr/local/bin/wasmrunner"
	ModulesDir = "/usr/share/wasmrunner/modules"
	CacheDir   = "/var/cache/wasmrunner"
	Home       = "/home/nonroot"
	// UID and GID of the user the image runs as (distroless's nonroot).
	UID = 65532
	GID = 65532
	// ListenPort is where the image's serve answers /metrics, /healthz
	// and /readyz (WASMRUNNER_LISTEN=:9252).
	ListenPort = 9252
	// StopSignal is the image's stop signal: serve drains on SIGQUIT
	// (takes no new job, lets running ones finish), so `docker stop`,
	// containerd and CRI-O stop it gracefully.
	StopSignal = "SIGQUIT"
)

// DefaultSource is the org.opencontainers.image.source label's default.
const DefaultSource = "https://github.com/wasmrunner/wasmrunner"

// DefaultPlatforms are the platforms built when Options.Platforms is empty.
var DefaultPlatforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
}

// Options say what to build.
type Options struct {
	// Root is the wasmrunner module's directory (holding go.mod and
	// cmd/wasmrunner).
	Root string
	// Platforms to build; default DefaultPlatforms. Only linux ones.
	Platforms []v1.Platform
	// Version and Revision are stamped into the binary (main.version,
	// main.revision) and the labels; Version is required.
	Version, Revision string
	// Source is the org.opencontainers.image.source label; default
	// DefaultSource.
	Source string
	// Created is the images' creation time and every file's mtime;
	// zero: the Unix epoch (use the commit's time for a release).
	Created time.Time
	// Modules is the directory whose regular files become the default
	// modules dir; default Root/examples/modules.
	Modules string
	// Go is the go command; default "go".
	Go string
	// Stderr receives the go command's output; nil discards it.
	Stderr io.Writer
}

// Build compiles wasmrunner for each platform and assembles the index.
func Build(ctx context.Context, o Options) (v1.ImageIndex, error) {
	if o.Version == "" {
		return nil, errors.New("image: a version is required")
	}
	if o.Root == "" {
		return nil, errors.New("image: the module root is required")
	}
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms
	}
	if o.Modules == "" {
		o.Modules = filepath.Join(o.Root, "examples", "modules")
	}
	tmp, err := os.MkdirTemp("", "wasmrunner-image-")
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(tmp)

	binaries := make(map[string]string, len(o.Platforms))
	for _, p := range o.Platforms {
		if p.OS != "linux" {
			return nil, fmt.Errorf("image: platform %s: only linux images are built", p)
		}
		out := filepath.Join(tmp, "wasmrunner-"+p.OS+"-"+p.Architecture+p.Variant)
		if err := BuildBinary(ctx, o, p, out); err != nil {
			return nil, err
		}
		binaries[p.String()] = out
	}
	return Assemble(o, binaries)
}

// BuildBinary builds a static wasmrunner for a platform into out. The
// environment's GOFLAGS, GOEXPERIMENT and instruction set levels are
// replaced, so that they cannot change the binary.
func BuildBinary(ctx context.Context, o Options, p v1.Platform, out string) error {
	goCmd := o.Go
	if goCmd == "" {
		goCmd = "go"
	}
	ldflags := "-s -w -X main.version=" + o.Version
	if o.Revision != "" {
		ldflags += " -X main.revision=" + o.Revision
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", ldflags, "-o", out, "./cmd/wasmrunner")
	cmd.Dir = o.Root
	env := []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Architecture,
		"GOFLAGS=-mod=readonly", "GOEXPERIMENT=", "GOAMD64=v1", "GOARM64=v8.0"}
	if p.Architecture == "arm" {
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if o.Stderr != nil {
		cmd.Stderr = io.MultiWriter(&stderr, o.Stderr)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("image: go build for %s: %w: %s", p, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// Assemble makes the index from binaries already built, keyed by platform
// (v1.Platform.String: "linux/amd64").
func Assemble(o Options, binaries map[string]string) (v1.ImageIndex, error) {
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms
	}
	if o.Source == "" {
		o.Source = DefaultSource
	}
	created := o.Created.UTC().Truncate(time.Second)
	if o.Created.IsZero() {
		created = time.Unix(0, 0).UTC()
	}
	base, err := baseLayer(created)
	if err != nil {
		return nil, err
	}
	mods, err := modulesLayer(o.Modules, created)
	if err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, p := range o.Platforms {
		bin, ok := binaries[p.String()]
		if !ok {
			return nil, fmt.Errorf("image: no binary for %s", p)
		}
		img, err := platformImage(o, p, created, base, mods, bin)
		if err != nil {
			return nil, err
		}
		p := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &p},
		})
	}
	return idx, nil
}

// Labels are the OCI labels of the images.
func Labels(o Options) map[string]string {
	source := o.Source
	if source == "" {
		source = DefaultSource
	}
	l := map[string]string{
		"org.opencontainers.image.title":       "wasmrunner",
		"org.opencontainers.image.description": "A GitLab runner whose job handlers are WebAssembly modules",
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.url":         source,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.licenses":    "Apache-2.0",
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

func platformImage(o Options, p v1.Platform, created time.Time, base, mods v1.Layer, bin string) (v1.Image, error) {
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	binLayer, err := layer([]entry{
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(Binary, "/"), mode: 0o755, body: b},
	}, created)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", UID, GID),
			Entrypoint: []string{Binary},
			Env: []string{
				"PATH=/usr/local/bin:/usr/bin:/bin",
				"HOME=" + Home,
				"XDG_CACHE_HOME=" + path.Dir(CacheDir),
				"WASMRUNNER_MODULES=" + ModulesDir,
				fmt.Sprintf("WASMRUNNER_LISTEN=:%d", ListenPort),
			},
			WorkingDir:   Home,
			Labels:       Labels(o),
			StopSignal:   StopSignal,
			ExposedPorts: map[string]struct{}{fmt.Sprintf("%d/tcp", ListenPort): {}},
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	hist := func(what string) v1.History {
		return v1.History{Created: v1.Time{Time: created}, CreatedBy: "wasmrunner image: " + what, Comment: "deploy/image"}
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: hist("users and directories")},
		mutate.Addendum{Layer: mods, History: hist("example handlers in " + ModulesDir)},
		mutate.Addendum{Layer: binLayer, History: hist(Binary + " " + o.Version)},
	)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return img, nil
}

// baseLayer has the users, HOME, the cache dir and /tmp.
func baseLayer(created time.Time) (v1.Layer, error) {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", UID, GID, Home)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID)
	return layer([]entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, body: []byte(group)},
		{name: "etc/passwd", mode: 0o644, body: []byte(passwd)},
		{name: "home/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(Home, "/") + "/", mode: 0o700, dir: true, uid: UID, gid: GID},
		{name: "root/", mode: 0o700, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "var/", mode: 0o755, dir: true},
		{name: "var/cache/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(CacheDir, "/") + "/", mode: 0o755, dir: true, uid: UID, gid: GID},
	}, created)
}

// modulesLayer has the regular files of dir in ModulesDir.
func modulesLayer(dir string, created time.Time) (v1.Layer, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image: modules: %w", err)
	}
	modules := strings.TrimPrefix(ModulesDir, "/")
	entries := []entry{
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/share/", mode: 0o755, dir: true},
		{name: path.Dir(modules) + "/", mode: 0o755, dir: true},
		{name: modules + "/", mode: 0o755, dir: true},
	}
	n := 0
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			return nil, fmt.Errorf("image: modules: %w", err)
		}
		entries = append(entries, entry{name: modules + "/" + de.Name(), mode: 0o644, body: b})
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("image: modules: no file in %s", dir)
	}
	return layer(entries, created)
}

// entry is a file or directory of a layer.
type entry struct {
	name     string
	mode     int64
	dir      bool
	uid, gid int
	body     []byte
}

// layer writes entries, in name order, into an uncompressed tar with fixed
// times and owners; the layer is gzip-compressed (deterministically) as an
// OCI layer.
func layer(entries []entry, mtime time.Time) (v1.Layer, error) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: mtime, Format: tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("image: layer: %w", err)
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, fmt.Errorf("image: layer: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image: layer: %w", err)
	}
	return l, nil
}
