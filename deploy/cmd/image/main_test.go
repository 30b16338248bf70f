package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPush: the command pushes one index under each tag and writes the
// same one to a layout.
func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--root", "../../..", "--version", "v9.9.9", "--revision", "abc",
		"--created", "2026-01-02T03:04:05Z", "--platforms", "linux/amd64",
		"--push", host + "/team/wasmrunner:v9.9.9", "--push", host + "/team/wasmrunner:latest", "--oci-layout", dir}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := idx.Digest()
	if !strings.Contains(stdout.String(), host+"/team/wasmrunner@"+want.String()) {
		t.Errorf("output %q lacks the digest %s", stdout.String(), want)
	}
	for _, tag := range []string{"v9.9.9", "latest"} {
		ref, err := name.ParseReference(host + "/team/wasmrunner:" + tag)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(ref)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Digest != want {
			t.Errorf("%s is %s, want %s", tag, desc.Digest, want)
		}
		pulled, err := remote.Index(ref)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := pulled.IndexManifest()
		img, err := pulled.Image(im.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.Labels["org.opencontainers.image.version"] != "v9.9.9" || !cfg.Created.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
			t.Errorf("%s: labels %v, created %v", tag, cfg.Config.Labels, cfg.Created)
		}
	}
}

// TestUsage: what the command refuses before building anything.
func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--push REF or --oci-layout DIR"},
		{[]string{"--oci-layout", "x", "--version", "v1", "--revision", "r", "--created", "yesterday"}, "RFC 3339 or Unix seconds"},
		{[]string{"--oci-layout", "x", "--version", "v1", "--revision", "r", "--created", "0", "--platforms", "linux/amd64/v1/x"}, "--platforms"},
		{[]string{"--bogus"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error()+stderr.String(), tt.want) {
			t.Errorf("%q: got %v (%s), want %q", tt.args, err, stderr.String(), tt.want)
		}
	}
}
