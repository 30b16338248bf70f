package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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

// TestRunnerAnswersTheChart runs the runner with the config the chart
// renders (GitLab pointed at a closed port) and checks what the chart
// relies on: the liveness probe's path answers 200 on the container's
// port, the readiness probe's says 503 once GitLab turns out unreachable, the
// HPA's metric is exported, and the image's stop signal drains and exits
// 0 well within terminationGracePeriodSeconds.
func TestRunnerAnswersTheChart(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the runner's compile bounds are Linux's")
	}
	exe := wasmrunner(t)
	o := render(t, "tokens: {default: glrt-x}\nautoscaling: {enabled: true}\ndrain: {timeoutSeconds: 60}")
	config := one(t, "ConfigMaps", o.configMaps).Data["config.toml"]
	pod := one(t, "Deployments", o.deploys).Spec.Template.Spec
	c := pod.Containers[0]
	metric := one(t, "HPAs", o.hpas).Spec.Metrics[0].Pods.Metric.Name

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gitlabURL := "http://" + closed.Addr().String()
	closed.Close()
	addr := freeAddr(t)
	dir := t.TempDir()
	examples, _ := filepath.Abs(filepath.Join("..", "examples", "modules"))
	if err := os.WriteFile(filepath.Join(dir, "default"), []byte("glrt-x"), 0o600); err != nil {
		t.Fatal(err)
	}
	config = strings.NewReplacer(
		fmt.Sprintf("listen = \":%d\"", c.Ports[0].ContainerPort), fmt.Sprintf("listen = %q", addr),
		"https://gitlab.example.com", gitlabURL,
		"/usr/share/wasmrunner/modules", examples,
		"/etc/wasmrunner/tokens/", dir+"/",
	).Replace(config)
	file := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	args := slices.Clone(c.Args)
	for i, a := range args {
		if a == "/etc/wasmrunner/config/config.toml" {
			args[i] = file
		}
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"))
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Wait for the listener, as the kubelet's first probes would (at most
	// a minute: a loaded machine compiles the handler slowly).
	for i := 0; ; i++ {
		if code, _ := get(c.LivenessProbe.HTTPGet.Path); code == http.StatusOK {
			break
		}
		if i == 3000 { // a minute, on a loaded machine
			t.Fatalf("%s never answered 200", c.LivenessProbe.HTTPGet.Path)
		}
		select {
		case err := <-exited:
			t.Fatalf("serve exited: %v\n%s", err, log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Ready until the first job request fails, then not.
	for i := 0; ; i++ {
		code, body := get(c.ReadinessProbe.HTTPGet.Path)
		if code == http.StatusServiceUnavailable && strings.Contains(body, "unreachable") {
			break
		}
		if i == 3000 { // a minute, on a loaded machine
			t.Fatalf("%s with GitLab unreachable: %d %s", c.ReadinessProbe.HTTPGet.Path, code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, body := get("/metrics"); !strings.Contains(body, "\n"+metric+" 0\n") {
		t.Errorf("/metrics lacks %s 0", metric)
	}

	if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve after SIGQUIT: %v\n%s", err, log.String())
		}
	case <-time.After(time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second):
		t.Fatalf("serve still running after SIGQUIT and terminationGracePeriodSeconds\n%s", log.String())
	}
	if !strings.Contains(log.String(), "SIGQUIT") {
		t.Errorf("the log does not say it drained:\n%s", log.String())
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a buffer a child process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
