package modules_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// compiledObserver records the modules compiled, by the name metrics
// label them with.
type compiledObserver struct {
	mu       sync.Mutex
	compiled []string
}

func (o *compiledObserver) ModuleCompiled(module string, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.compiled = append(o.compiled, module)
}
func (o *compiledObserver) ModuleInstantiated(string, time.Duration) {}
func (o *compiledObserver) ManifestCut(string, []resource.Cut)       {}
func (o *compiledObserver) ResourceDenied(string, string)            {}
func (o *compiledObserver) GuestsOutlived(string, int64)             {}
func (o *compiledObserver) CacheSize(int64)                          {}

func (o *compiledObserver) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.compiled
	o.compiled = nil
	slices.Sort(out)
	return out
}

// TestVersions: image NAME:TAG runs NAME@TAG.wasm with its own manifest,
// NAME and NAME:latest run NAME.wasm, a digest pins the module file's
// sha256, a missing version fails the job naming the versions there are,
// and versions load, reload and go away on their own.
func TestVersions(t *testing.T) {
	probe := guest(t, "probe")
	sum := sha256.Sum256(probe)
	digest := hex.EncodeToString(sum[:])
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("shell.wasm", probe)
	write("shell@1.0.wasm", probe)
	write("shell@1.0.toml", []byte("[variables]\ndeny = [\"GREETING\"]\n"))
	write("shell@2.0.wasm", guest(t, "bad_import"))
	obs := &compiledObserver{}
	e := start(t, dir, func(m *modules.Config, _ *engine.Config) { m.Observer = obs })
	if got := obs.take(); !slices.Equal(got, []string{"shell", "shell:1.0"}) {
		t.Errorf("compiled %v, want shell and shell:1.0", got)
	}

	hidden := "wasmrunner: var_get: GREETING is hidden from this handler: the handler's manifest denies it ([variables] deny)"
	tests := []struct {
		image string
		ok    bool
		want  string
	}{
		{"shell", true, "hello"},
		{"shell:latest", true, "hello"},
		{"registry.example.com/team/shell", true, "hello"},
		{"shell:1.0", true, hidden},
		{"registry.example.com/team/shell:1.0", true, hidden},
		{"shell:3.0", false, `no handler: "shell:3.0" is not loaded (versions of shell: shell (untagged), shell:1.0)`},
		{"shell:2.0", false, `no handler: "shell:2.0" is not loaded (versions of shell: shell (untagged), shell:1.0); shell@2.0.wasm failed to load: imports unknown function wasmrunner:host/v1.format_disk`},
		{"shell@sha256:" + digest, true, "hello"},
		{"shell:1.0@sha256:" + digest, true, hidden},
		{"shell:1.0@sha256:" + strings.Repeat("0", 64), false, "no handler: the image pins sha256 " + strings.Repeat("0", 64) + ", but shell:1.0 is sha256 " + digest + " (shell@1.0.wasm changed?)"},
		{"shell@sha256:" + strings.Repeat("0", 64), false, "no handler: no version of shell has sha256 " + strings.Repeat("0", 64) + " (versions of shell: shell (untagged), shell:1.0)"},
		{"shell@sha1:abc", false, "only sha256 digests are supported"},
	}
	for _, tt := range tests {
		id := e.Srv.Enqueue(gitlabtest.NewJob("v").Image(tt.image).Var("GREETING", "hello").Script("v"))
		rec := e.Wait(t, id)
		if (rec.State == gitlab.StateSuccess) != tt.ok || !strings.Contains(string(rec.Trace), tt.want) {
			t.Errorf("image %q: state %s, want ok=%v and %q in the trace:\n%s", tt.image, rec.State, tt.ok, tt.want, rec.Trace)
		}
		if tt.want == "hello" && strings.Contains(string(rec.Trace), "GREETING is hidden") {
			t.Errorf("image %q ran shell:1.0:\n%s", tt.image, rec.Trace)
		}
	}

	// A changed manifest reloads that version alone.
	ctx := context.Background()
	write("shell@1.0.toml", []byte("[env]\nset = { A = \"b\" }\n"))
	if err := e.Registry.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := obs.take(); !slices.Equal(got, []string{"shell:1.0"}) {
		t.Errorf("after changing shell@1.0.toml, compiled %v, want shell:1.0 alone", got)
	}
	id := e.Srv.Enqueue(gitlabtest.NewJob("v").Image("shell:1.0").Var("GREETING", "hello").Script("v"))
	if rec := e.Wait(t, id); rec.State != gitlab.StateSuccess || !strings.Contains(string(rec.Trace), "hello") {
		t.Errorf("shell:1.0 after its reload: %s\n%s", rec.State, rec.Trace)
	}
	// A removed version goes away; the others stay.
	if err := os.Remove(filepath.Join(dir, "shell@1.0.wasm")); err != nil {
		t.Fatal(err)
	}
	write("shell@3.0.wasm", probe)
	if err := e.Registry.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if got := obs.take(); !slices.Equal(got, []string{"shell:3.0"}) {
		t.Errorf("compiled %v, want shell:3.0", got)
	}
	var images []string
	for _, m := range e.Registry.Modules() {
		images = append(images, m.Image)
	}
	if !slices.Equal(images, []string{"shell", "shell:3.0"}) {
		t.Errorf("modules %v", images)
	}
	id = e.Srv.Enqueue(gitlabtest.NewJob("v").Image("shell:1.0").Script("v"))
	if rec := e.Wait(t, id); rec.State == gitlab.StateSuccess || !strings.Contains(string(rec.Trace), `"shell:1.0" is not loaded (versions of shell: shell (untagged), shell:3.0)`) {
		t.Errorf("shell:1.0 once removed: %s\n%s", rec.State, rec.Trace)
	}
	// shell@1.0.toml is now a manifest without its module.
	rep := e.Registry.Report()
	if len(rep.Problems) != 1 || rep.Problems[0].Code != modules.CodeManifestNoModule {
		t.Errorf("problems %v", rep.Problems)
	}
}

// TestHandlersOption: with Config.Handlers, only those handlers' modules
// are loaded, and jobs naming others fail.
func TestHandlersOption(t *testing.T) {
	probe := guest(t, "probe")
	dir := t.TempDir()
	for _, name := range []string{"shell", "shell@1.0", "lab", "other"} {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), probe, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	obs := &compiledObserver{}
	e := start(t, dir, func(m *modules.Config, _ *engine.Config) {
		m.Observer, m.Handlers, m.DefaultHandler = obs, []string{"shell", "missing"}, "shell:1.0"
	})
	if got := obs.take(); !slices.Equal(got, []string{"shell", "shell:1.0"}) {
		t.Errorf("compiled %v, want shell's versions alone", got)
	}
	rep := e.Registry.Report()
	if !slices.Equal(rep.Skipped, []string{"lab", "other"}) || len(rep.Problems) != 1 || rep.Problems[0].Code != modules.CodeUnknownHandler {
		t.Errorf("report: skipped %v problems %v", rep.Skipped, rep.Problems)
	}
	for _, tt := range []struct {
		image, want string
		ok          bool
	}{
		{"shell:1.0", "routed", true},
		{"", "routed", true}, // the default handler, a version
		{"lab", `no handler: handler "lab" is not allowed for this runner (allowed: shell, missing)`, false},
	} {
		id := e.Srv.Enqueue(gitlabtest.NewJob("h").Image(tt.image).Script("e routed"))
		rec := e.Wait(t, id)
		if (rec.State == gitlab.StateSuccess) != tt.ok || !strings.Contains(string(rec.Trace), tt.want) {
			t.Errorf("image %q: %s\n%s", tt.image, rec.State, rec.Trace)
		}
	}
}
