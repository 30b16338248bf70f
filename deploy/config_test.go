package deploy_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/wasmrunner/wasmrunner/deploy/image"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// wasmrunner builds the runner of this checkout for this machine, as the
// image does, once for the package's tests.
func wasmrunner(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploy-test-")
		if err != nil {
			binErr = err
			return
		}
		root, _ := filepath.Abs("..")
		binPath = filepath.Join(dir, "wasmrunner")
		binErr = image.BuildBinary(context.Background(), image.Options{Root: root, Version: "v0.0.0-deploy-test"},
			v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}, binPath)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestConfigAccepted: the config file the chart renders is one wasmrunner
// takes: `wasmrunner modules check --config` (which refuses what serve
// refuses, and loads each runner's handlers) passes on it, with the
// pod's paths pointed at this machine's. The OCI case pulls the example
// handlers, pushed with `wasmrunner modules push`, from a registry.
func TestConfigAccepted(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the runner's compile bounds are Linux's")
	}
	exe := wasmrunner(t)
	examples, err := filepath.Abs(filepath.Join("..", "examples", "modules"))
	if err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref := "oci://" + strings.TrimPrefix(reg.URL, "http://") + "/team/handlers:stable"
	if out, err := exec.Command(exe, "modules", "push", examples, ref).CombinedOutput(); err != nil {
		t.Fatalf("modules push: %v: %s", err, out)
	}

	tests := []struct{ name, values string }{
		{"defaults", "tokens: {default: glrt-x}"},
		{"handlers from a volume", "tokens: {default: glrt-x}\nhandlers: {source: volume, volume: {emptyDir: {}}}"},
		{"handlers from a registry", "tokens: {default: glrt-x}\nhandlers: {source: oci, oci: {reference: " + ref +
			", pullInterval: 30s, insecureRegistries: [registry.internal], authSecret: creds}}"},
		{"several runners", `
existingSecret: tokens
config:
  concurrency: 16
  logLevel: debug
  extraConfig: |
    compile_cache_size = "512MiB"
    [policy]
    memory = "256MiB"
runners:
  - name: team-a
    tokenKey: a
    handlers: [shell]
    defaultHandler: shell
    concurrency: 8
    outputLimit: 8MiB
  - name: lab
    url: https://lab.gitlab.internal
    checkInterval: 10s
    extraConfig: |
      [runners.policy]
      timeout = "10m"
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := render(t, tt.values)
			config := one(t, "ConfigMaps", o.configMaps).Data["config.toml"]
			dir := t.TempDir()
			tokens := filepath.Join(dir, "tokens")
			if err := os.Mkdir(tokens, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{"default", "a", "lab"} {
				if err := os.WriteFile(filepath.Join(tokens, key), []byte("glrt-x\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			docker := filepath.Join(dir, "docker.json")
			if err := os.WriteFile(docker, []byte(`{"auths":{}}`), 0o600); err != nil {
				t.Fatal(err)
			}
			config = strings.NewReplacer(
				"/usr/share/wasmrunner/modules", examples,
				"/srv/handlers", examples,
				"/etc/wasmrunner/tokens/", tokens+"/",
				"/etc/wasmrunner/registry/config.json", docker,
			).Replace(config)
			file := filepath.Join(dir, "config.toml")
			if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(exe, "modules", "check", "--config", file)
			cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"), "DOCKER_CONFIG="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("modules check --config: %v\n%s\nconfig:\n%s", err, out, config)
			}
			if !strings.Contains(string(out), "shell") {
				t.Errorf("modules check names no shell handler:\n%s", out)
			}
		})
	}
}
