package release

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const root = "../.."

// goreleaser is the part of .goreleaser.yaml these tests check.
type goreleaser struct {
	Version int `yaml:"version"`
	Builds  []struct {
		ID           string   `yaml:"id"`
		Main         string   `yaml:"main"`
		Binary       string   `yaml:"binary"`
		Env          []string `yaml:"env"`
		Goos         []string `yaml:"goos"`
		Goarch       []string `yaml:"goarch"`
		Flags        []string `yaml:"flags"`
		Ldflags      []string `yaml:"ldflags"`
		ModTimestamp string   `yaml:"mod_timestamp"`
	} `yaml:"builds"`
	Archives []struct {
		IDs   []string `yaml:"ids"`
		Files []string `yaml:"files"`
	} `yaml:"archives"`
	Checksum struct {
		Algorithm string `yaml:"algorithm"`
	} `yaml:"checksum"`
}

func readGoreleaser(t *testing.T) goreleaser {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var g goreleaser
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&g); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGoreleaserConfig: the release builds static linux and darwin
// binaries for amd64 and arm64 of cmd/wasmrunner, reproducibly, with the
// version and revision stamped in, and ships the unit file.
func TestGoreleaserConfig(t *testing.T) {
	g := readGoreleaser(t)
	if g.Version != 2 || len(g.Builds) != 1 {
		t.Fatalf("version %d, %d builds", g.Version, len(g.Builds))
	}
	b := g.Builds[0]
	if b.Main != "./cmd/wasmrunner" || b.Binary != "wasmrunner" {
		t.Errorf("main %q binary %q", b.Main, b.Binary)
	}
	if _, err := os.Stat(filepath.Join(root, b.Main, "main.go")); err != nil {
		t.Errorf("main: %v", err)
	}
	slices.Sort(b.Goos)
	slices.Sort(b.Goarch)
	if !slices.Equal(b.Goos, []string{"darwin", "linux"}) || !slices.Equal(b.Goarch, []string{"amd64", "arm64"}) {
		t.Errorf("platforms %v x %v", b.Goos, b.Goarch)
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") || !slices.Contains(b.Flags, "-trimpath") || b.ModTimestamp != "{{ .CommitTimestamp }}" {
		t.Errorf("not a static reproducible build: env %v flags %v mod_timestamp %q", b.Env, b.Flags, b.ModTimestamp)
	}
	ld := strings.Join(b.Ldflags, " ")
	for _, w := range []string{"-X main.version={{ .Version }}", "-X main.revision={{ .FullCommit }}", "-buildid="} {
		if !strings.Contains(ld, w) {
			t.Errorf("ldflags %q lack %q", ld, w)
		}
	}
	if len(g.Archives) != 1 || !slices.Equal(g.Archives[0].IDs, []string{b.ID}) {
		t.Fatalf("archives %+v", g.Archives)
	}
	for _, f := range g.Archives[0].Files {
		matches, _ := filepath.Glob(filepath.Join(root, f))
		if len(matches) == 0 {
			t.Errorf("archived file %s does not exist", f)
		}
	}
	if g.Checksum.Algorithm != "sha256" {
		t.Errorf("checksum %q", g.Checksum.Algorithm)
	}
}

// TestGoreleaserCheck runs goreleaser check where GoReleaser is
// installed, in a clone of the checkout (GoReleaser wants a remote to
// release to).
func TestGoreleaserCheck(t *testing.T) {
	gr, err := exec.LookPath("goreleaser")
	if err != nil {
		t.Skip("goreleaser not installed: TestGoreleaserConfig checks the file")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	dir := filepath.Join(t.TempDir(), "clone")
	for _, args := range [][]string{
		{"clone", "-q", "--depth", "1", "file://" + mustAbs(t, root), dir},
		{"-C", dir, "remote", "set-url", "origin", "https://gitlab.example.com/wasmrunner/wasmrunner.git"},
	} {
		if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
			t.Skipf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// The file under test, as it is in this checkout (maybe not committed).
	data, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".goreleaser.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gr, "check")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("goreleaser check: %v\n%s", err, out)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// buildRelease builds wasmrunner as the release does, for this machine,
// with the templates of the ldflags filled in.
func buildRelease(t *testing.T, version, commit string) string {
	t.Helper()
	g := readGoreleaser(t)
	b := g.Builds[0]
	ld := strings.NewReplacer("{{ .Version }}", version, "{{ .FullCommit }}", commit).Replace(strings.Join(b.Ldflags, " "))
	out := filepath.Join(t.TempDir(), "wasmrunner")
	args := append([]string{"build", "-o", out}, b.Flags...)
	args = append(args, "-ldflags", ld, b.Main)
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), b.Env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return out
}

// TestReleaseBinary builds the binary as the release does and runs it:
// version prints the stamped version and commit; the binary is static.
func TestReleaseBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	commit := "0123456789abcdef0123456789abcdef01234567"
	bin := buildRelease(t, "1.2.3", commit)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	for _, w := range []string{"wasmrunner 1.2.3\n", "revision: " + commit + "\n"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("version output lacks %q:\n%s", w, out)
		}
	}
	if runtime.GOOS == "linux" {
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		// A dynamically linked ELF names its interpreter.
		if bytes.Contains(data, []byte("/lib64/ld-linux")) || bytes.Contains(data, []byte("/lib/ld-linux")) {
			t.Error("the binary is not static")
		}
	}
	testUnitVerifies(t, bin)
}

// unit is a systemd unit file: section -> key -> values (a key may
// repeat).
type unit map[string]map[string][]string

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value line in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return "<unset>"
	}
	return v[len(v)-1]
}

const unitPath = root + "/deploy/systemd/wasmrunner.service"

// TestSystemdUnit checks the unit's key settings: an unprivileged user
// in a read-only system, no capabilities, the system-service syscalls,
// writable state and cache, a stop that drains (SIGQUIT) with time for it,
// restarts on failure.
func TestSystemdUnit(t *testing.T) {
	u := readUnit(t, unitPath)
	for _, kv := range []struct{ key, want string }{
		{"User", "wasmrunner"},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"PrivateDevices", "yes"},
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
		{"SystemCallFilter", "@system-service"},
		{"SystemCallArchitectures", "native"},
		{"RestrictSUIDSGID", "yes"},
		{"StateDirectory", "wasmrunner"},
		{"CacheDirectory", "wasmrunner"},
		{"KillSignal", "SIGQUIT"},
		{"Restart", "on-failure"},
		{"SuccessExitStatus", "3"},
		{"Environment", "HOME=%S/wasmrunner"},
	} {
		if got := u.get("Service", kv.key); got != kv.want && !slices.Contains(u["Service"][kv.key], kv.want) {
			t.Errorf("%s=%s, want %q", kv.key, got, kv.want)
		}
	}
	// wazero writes the machine code it runs: W^X would break handlers.
	if v := u.get("Service", "MemoryDenyWriteExecute"); v == "yes" || v == "true" {
		t.Error("MemoryDenyWriteExecute=yes: wazero's compiled handlers could not run")
	}
	if !slices.Contains(u["Service"]["ReadWritePaths"], "/etc/wasmrunner") {
		t.Error("ReadWritePaths lacks /etc/wasmrunner: rotated tokens could not be saved")
	}
	stop, err := time.ParseDuration(u.get("Service", "TimeoutStopSec"))
	if err != nil || stop < 10*time.Minute {
		t.Errorf("TimeoutStopSec=%s: jobs need time to drain", u.get("Service", "TimeoutStopSec"))
	}
	execStart := strings.Fields(u.get("Service", "ExecStart"))
	if len(execStart) < 4 || filepath.Base(execStart[0]) != "wasmrunner" || execStart[1] != "serve" || !slices.Contains(execStart, "--config") {
		t.Errorf("ExecStart=%v", execStart)
	}
	if u.get("Service", "ExecReload") != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload=%s: SIGHUP reloads the config", u.get("Service", "ExecReload"))
	}
	if u.get("Install", "WantedBy") != "multi-user.target" {
		t.Errorf("WantedBy=%s", u.get("Install", "WantedBy"))
	}
	users, err := os.ReadFile(filepath.Join(root, "deploy/systemd/wasmrunner.sysusers"))
	if err != nil || !strings.Contains(string(users), "u wasmrunner ") {
		t.Errorf("sysusers: %v %q", err, users)
	}
}

// testUnitVerifies runs systemd-analyze verify on the unit, with ExecStart
// pointing at bin (it must exist), where systemd-analyze is installed:
// it must find nothing to say (it warns of unknown keys and bad values
// without failing).
func testUnitVerifies(t *testing.T, bin string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: the unit is checked by TestSystemdUnit only")
		return
	}
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wasmrunner.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(data, []byte("/usr/local/bin/wasmrunner"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", path)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, stderr.String())
	}
	// And its ExecStart is a command line the binary takes.
	u := readUnit(t, path)
	args := strings.Fields(u.get("Service", "ExecStart"))[1:]
	out, err := exec.Command(bin, append(args, "--help")...).CombinedOutput()
	if err != nil {
		t.Errorf("%s --help: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--") && !strings.Contains(string(out), a) {
			t.Errorf("ExecStart's %s is not a flag of wasmrunner serve", a)
		}
	}
}
