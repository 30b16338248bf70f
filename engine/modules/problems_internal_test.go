package modules

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/internal/goguest"
)

// wasmFunc is a function of a built module: i32 parameters and results
// (n of each), returning zeros; exported under export unless it is "".
type wasmFunc struct {
	export           string
	params, results  int
	importMod, field string // an import instead of a definition
	name             string // in the name section, if any
}

// buildModule builds a module of funcs (imports first, in order), a memory
// of pages 64 KiB pages exported as "memory" (none if pages < 0), and
// custom sections (name, body) after them.
func buildModule(funcs []wasmFunc, pages int, custom ...[2][]byte) []byte {
	i32s := func(n int) []byte {
		b := leb(uint64(n))
		for range n {
			b = append(b, 0x7f)
		}
		return b
	}
	var types, imports, decls, exports, code, names []byte
	nImports, nDecls, nExports, nNames := 0, 0, 0, 0
	for i, f := range funcs {
		types = cat(types, []byte{0x60}, i32s(f.params), i32s(f.results))
		if f.importMod != "" {
			imports = cat(imports, wasmName(f.importMod), wasmName(f.field), []byte{0}, leb(uint64(i)))
			nImports++
		} else {
			decls = cat(decls, leb(uint64(i)))
			nDecls++
			body := []byte{0}
			for range f.results {
				body = append(body, 0x41, 0)
			}
			body = append(body, 0x0b)
			code = cat(code, leb(uint64(len(body))), body)
		}
		if f.export != "" {
			exports = cat(exports, wasmName(f.export), []byte{0}, leb(uint64(i)))
			nExports++
		}
		if f.name != "" {
			names = cat(names, leb(uint64(i)), wasmName(f.name))
			nNames++
		}
	}
	var mem []byte
	if pages >= 0 {
		mem = wasmSection(5, []byte{1, 0}, leb(uint64(pages)))
		exports = cat(exports, wasmName("memory"), []byte{2, 0})
		nExports++
	}
	out := cat(wasmPreamble, wasmSection(1, leb(uint64(len(funcs))), types))
	if nImports > 0 {
		out = cat(out, wasmSection(2, leb(uint64(nImports)), imports))
	}
	out = cat(out, wasmSection(3, leb(uint64(nDecls)), decls), mem,
		wasmSection(7, leb(uint64(nExports)), exports), wasmSection(10, leb(uint64(nDecls)), code))
	if nNames > 0 {
		sub := cat(leb(uint64(nNames)), names)
		out = cat(out, wasmSection(0, wasmName("name"), []byte{1}, leb(uint64(len(sub))), sub))
	}
	for _, c := range custom {
		out = cat(out, wasmSection(0, wasmName(string(c[0])), c[1]))
	}
	return out
}

var (
	stepFn  = wasmFunc{export: "wasmrunner_step", params: 1, results: 1}
	startFn = wasmFunc{export: "_start"}
	initFn  = wasmFunc{export: "_initialize"}
	// goBuildID marks a module built by Go.
	goBuildID = [2][]byte{[]byte("go:buildid"), []byte("x")}
	// goProducers says Go in a producers section.
	goProducers = [2][]byte{[]byte("producers"), cat(leb(1), wasmName("language"), leb(1), wasmName("Go"), wasmName("1.26"))}
)

// problemCodes returns the codes of ps.
func problemCodes(ps []Problem) []string {
	var codes []string
	for _, p := range ps {
		codes = append(codes, p.Code)
	}
	return codes
}

// checkModule loads one module (with an optional manifest) under policy
// and returns its report.
func checkModule(t *testing.T, bin []byte, manifest string, policy *resource.Policy) ModuleInfo {
	t.Helper()
	dir := writeModules(t, map[string][]byte{"h": bin})
	if manifest != "" {
		if err := os.WriteFile(filepath.Join(dir, "h.toml"), []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := openTimed(t, Config{Dir: dir, Policy: policy}, 30*time.Second)
	rep := r.Report()
	if len(rep.Modules) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	return rep.Modules[0]
}

// TestModuleProblems: what can be known of a module before it runs is
// said when it loads, with a code and the fix; refused modules do not
// load, the others load with their problems noted.
func TestModuleProblems(t *testing.T) {
	env := func(name string, params, results int) wasmFunc {
		return wasmFunc{importMod: "env", field: name, params: params, results: results}
	}
	tests := []struct {
		name     string
		bin      []byte
		manifest string
		policy   *resource.Policy
		loaded   bool
		code     string // "" for none
		want     string
	}{
		{"reactor", buildModule([]wasmFunc{stepFn}, 1), "", nil, true, "", ""},
		{"reactor with _initialize", buildModule([]wasmFunc{initFn, stepFn}, 1), "", nil, true, "", ""},
		{"command", buildModule([]wasmFunc{startFn}, 1), "", nil, true, "", ""},
		{"Go command exporting wasmrunner_step", buildModule([]wasmFunc{startFn, stepFn}, 1, goBuildID), "", nil, false, CodeGoCommand,
			"it is a Go command module (it exports wasmrunner_step and _start, no _initialize)"},
		{"Go command by its producers", buildModule([]wasmFunc{startFn, stepFn}, 1, goProducers), "", nil, false, CodeGoCommand,
			"build with -buildmode=c-shared: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared"},
		{"Go reactor without _initialize", buildModule([]wasmFunc{stepFn}, 1, goBuildID), "", nil, false, CodeNoInitialize,
			"it is a Go module that exports no _initialize"},
		{"Go reactor", buildModule([]wasmFunc{initFn, stepFn}, 1, goBuildID), "", nil, true, "", ""},
		{"command exporting wasmrunner_step", buildModule([]wasmFunc{startFn, stepFn}, 1), "", nil, true, CodeCommandWithStep,
			"link it as a reactor, which exports _initialize (clang -mexec-model=reactor"},
		{"constructors never run", buildModule([]wasmFunc{{name: "__wasm_call_ctors"}, stepFn}, 1), "", nil, true, CodeNoInitialize,
			"it has constructors (__wasm_call_ctors) but exports no _initialize to run them"},
		{"step of the wrong signature", buildModule([]wasmFunc{{export: "wasmrunner_step", params: 2, results: 1}}, 1), "", nil, false, CodeExport,
			"exports wasmrunner_step with signature (i32, i32) -> (i32), want (i32) -> i32"},
		{"no entry point", buildModule([]wasmFunc{initFn}, 1), "", nil, false, CodeExport,
			"exports neither wasmrunner_step (reactor) nor _start (command) (it exports _initialize: a reactor that exports no wasmrunner_step"},
		{"no memory", buildModule([]wasmFunc{stepFn}, -1), "", nil, false, CodeExport, `exports no memory named "memory"`},
		{"unknown host function", buildModule([]wasmFunc{{importMod: "wasmrunner:host/v1", field: "format_disk"}, stepFn}, 1), "", nil, false, CodeImport,
			"imports unknown function wasmrunner:host/v1.format_disk"},
		{"undefined symbol", buildModule([]wasmFunc{env("missing", 0, 0), stepFn}, 1), "", nil, false, CodeImport,
			`imports from unknown module "env" (only wasmrunner:host/v1 and wasi_snapshot_preview1 exist): "env" is where a linker puts the functions it found no definition for`},
		{"GOOS=js", buildModule([]wasmFunc{{importMod: "gojs", field: "runtime.wasmExit", params: 1}, startFn}, 1), "", nil, false, CodeImport,
			"it was built with GOOS=js; build with GOOS=wasip1"},
		{"host function of the wrong signature", buildModule([]wasmFunc{{importMod: "wasmrunner:host/v1", field: "log_line", params: 1, results: 1}, stepFn}, 1), "", nil, false, CodeImport,
			"imports wasmrunner:host/v1.log_line with signature (i32) -> (i32), want (i32, i32) -> (i32)"},
		{"memory above the manifest's limit", buildModule([]wasmFunc{stepFn}, 40), "[limits]\nmemory = \"2MiB\"\n", nil, false, CodeMemory,
			`its memory starts at 2.5MiB, more than its memory limit of 2MiB (limits.memory = "2MiB" in its manifest); it needs at least limits.memory = "3MiB"`},
		{"memory above the default", buildModule([]wasmFunc{stepFn}, 2100), "", nil, false, CodeMemory,
			`more than its memory limit of 128MiB (the default: it has no manifest to set limits.memory); it needs at least limits.memory = "132MiB"`},
		{"memory above what the policy gives", buildModule([]wasmFunc{stepFn}, 100), "[limits]\nmemory = \"64MiB\"\n", &resource.Policy{Max: resource.Limits{Memory: 4 << 20}}, false, CodeMemory,
			`its memory starts at 6.2MiB, more than its memory limit of 4MiB (its manifest's limits.memory = "64MiB", cut to the operator's policy, memory = "4MiB"); it needs the operator's policy to allow at least memory = "7MiB"`},
		{"memory without a unit", buildModule([]wasmFunc{stepFn}, 1), "[limits]\nmemory = 64\n", nil, false, CodeManifest,
			`h.toml:2: limits.memory = 64 has no unit: write "64MiB" (or "64B" for bytes)`},
		{"allow as a string", buildModule([]wasmFunc{stepFn}, 1), "[http]\nallow = \"example.com\"\n", nil, false, CodeManifest,
			`h.toml:2: http.allow must be a list of strings, not a string; e.g. allow = ["example.com"]`},
		{"allow entry written as a URL", buildModule([]wasmFunc{stepFn}, 1), "[http]\nallow = [\"https://example.com:8443/api\"]\n", nil, false, CodeManifest,
			`h.toml: http.allow: "https://example.com:8443/api" is a URL; list its host instead: allow = ["example.com:8443"]`},
		{"every allow entry dropped by the policy", buildModule([]wasmFunc{stepFn}, 1), "[http]\nallow = [\"api.other.org\", \"10.1.2.3\"]\n", &resource.Policy{HTTPAllow: []string{"*.example.com"}}, true, CodeHTTPAllowDropped,
			"the operator's policy drops every entry of its [http] allow (api.other.org, 10.1.2.3): its jobs get no HTTP at all"},
		{"some allow entries dropped", buildModule([]wasmFunc{stepFn}, 1), "[http]\nallow = [\"api.example.com\", \"10.1.2.3\"]\n", &resource.Policy{HTTPAllow: []string{"*.example.com"}}, true, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mi := checkModule(t, tt.bin, tt.manifest, tt.policy)
			if mi.Loaded != tt.loaded {
				t.Errorf("loaded = %v, want %v (problems %v)", mi.Loaded, tt.loaded, mi.Problems)
			}
			codes := problemCodes(mi.Problems)
			switch {
			case tt.code == "" && len(codes) > 0:
				t.Errorf("problems %v, want none", mi.Problems)
			case tt.code != "" && !slices.Contains(codes, tt.code):
				t.Errorf("codes %v, want %s: %v", codes, tt.code, mi.Problems)
			}
			if tt.want != "" && !strings.Contains(problems(mi.Problems).Error(), tt.want) {
				t.Errorf("problems:\n%v\nwant:\n%s", problems(mi.Problems), tt.want)
			}
			if mi.Image != "h" || mi.Path == "" {
				t.Errorf("info %+v", mi)
			}
		})
	}
}

// TestGoModules: Go handlers built as authors build them. Without
// -buildmode=c-shared, a handler on the SDK is refused with the fix; with
// it, it loads; a plain Go program is a command module.
func TestGoModules(t *testing.T) {
	dir := writeModules(t, map[string][]byte{
		"gocmd":    goguest.Module(t, goguest.SDK, false),
		"goshared": goguest.Module(t, goguest.SDK, true),
		"gomain":   goguest.Module(t, goguest.Command, false),
	})
	// Compiling a Go module in a child test binary built with -race takes
	// tens of seconds, minutes on a loaded machine: the test is about
	// what is refused and what loads, not the compile time limit.
	r := openTimed(t, childConfig(t, dir, resource.CompileLimits{Timeout: 15 * time.Minute}), 2*time.Minute)
	rep := r.Report()
	got := map[string]ModuleInfo{}
	for _, m := range rep.Modules {
		got[m.Image] = m
	}
	if m := got["gocmd"]; m.Loaded || !slices.Equal(problemCodes(m.Problems), []string{CodeGoCommand}) ||
		!strings.Contains(m.Problems[0].Message, "build with -buildmode=c-shared") {
		t.Errorf("gocmd: %+v", m)
	}
	if m := got["goshared"]; !m.Loaded || !m.Reactor || len(m.Problems) > 0 {
		t.Errorf("goshared: %+v", m)
	}
	if m := got["gomain"]; !m.Loaded || m.Reactor || len(m.Problems) > 0 {
		t.Errorf("gomain: %+v", m)
	}
	// A job routed to the refused one is told why.
	if _, err := r.route("gocmd"); err == nil || !strings.Contains(err.Error(), "build with -buildmode=c-shared") {
		t.Errorf("route: %v", err)
	}
}

// TestDirProblems: files of the modules dir that are no module's, or
// almost a module's, and names in the configuration that refer to no
// module, are reported.
func TestDirProblems(t *testing.T) {
	good := buildModule([]wasmFunc{stepFn}, 1)
	dir := writeModules(t, map[string][]byte{"shell": good, "shell@1.0": good, "lab": good, "bad@latest": good, "bad@.x": good, "Case": good, "@1": good})
	for name, text := range map[string]string{
		"orphan.toml": "", "shell@2.0.toml": "", "case.toml": "", "SHOUT.WASM": "", "lab.Toml": "",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
	}
	log := &logBuffer{}
	r := openTimed(t, Config{Dir: dir, Handlers: []string{"shell", "Case", "ghost"}, DefaultHandler: "lab", Logger: log.logger()}, 30*time.Second)
	rep := r.Report()
	wantDir := []struct{ code, msg string }{
		{CodeManifestNoModule, "orphan.toml has no orphan.wasm beside it: it is the manifest of no module"},
		{CodeManifestNoModule, "shell@2.0.toml has no shell@2.0.wasm beside it"},
		{CodeFileName, "SHOUT.WASM is not loaded: modules are NAME.wasm and manifests NAME.toml, in lower case"},
		{CodeFileName, "lab.Toml is not loaded"},
		{CodeBadVersion, "bad@latest.wasm: the untagged bad.wasm is bad:latest; rename it bad.wasm"},
		{CodeBadVersion, `bad@.x.wasm: ".x" is not a valid tag`},
		{CodeBadVersion, "@1.wasm: a module file is NAME.wasm or NAME@TAG.wasm; the name is empty"},
		{CodeUnknownHandler, `handlers lists "ghost", but the modules dir has no ghost.wasm nor ghost@TAG.wasm`},
		{CodeDefaultNotAllowed, `default_handler "lab" is not in handlers (shell, Case, ghost): jobs without an image would fail`},
	}
	for _, w := range wantDir {
		found := false
		for _, p := range rep.Problems {
			found = found || p.Code == w.code && strings.Contains(p.Message, w.msg)
		}
		if !found {
			t.Errorf("no problem %s %q in:\n%v", w.code, w.msg, problems(rep.Problems))
		}
		if !strings.Contains(log.String(), w.code) {
			t.Errorf("the operator log lacks %s", w.code)
		}
	}
	if len(rep.Problems) != len(wantDir) {
		t.Errorf("%d problems, want %d:\n%v", len(rep.Problems), len(wantDir), problems(rep.Problems))
	}
	// lab is not in handlers: not loaded, listed as skipped.
	if !slices.Equal(rep.Skipped, []string{"lab"}) {
		t.Errorf("skipped %v", rep.Skipped)
	}
	var images []string
	for _, m := range rep.Modules {
		images = append(images, m.Image)
		if m.Image == "Case" && (m.Loaded || m.Problems[0].Code != CodeManifestNameCase ||
			m.Problems[0].Message != "there is no Case.toml, but case.toml differs from it only by case: rename it Case.toml (a manifest's name must be its module's exactly; the module is not loaded without the manifest meant for it)") {
			t.Errorf("Case: %+v", m)
		}
	}
	if !slices.Equal(images, []string{"Case", "shell", "shell:1.0"}) {
		t.Errorf("modules %v", images)
	}
	// Once the manifest of another case is gone, Case loads without one.
	os.Remove(filepath.Join(dir, "case.toml"))
	if err := r.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.route("Case"); err != nil {
		t.Errorf("Case after case.toml went: %v", err)
	} else {
		r.modules["Case"].release()
	}
	os.WriteFile(filepath.Join(dir, "case.toml"), nil, 0o644)
	// A reload with nothing changed logs nothing new.
	before := log.String()
	if err := r.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := log.String(); strings.Count(after, "modules dir problem") != strings.Count(before, "modules dir problem") {
		t.Errorf("a reload logged the same problems again:\n%s", after[len(before):])
	}
}

// TestParseImage: how images name handler versions.
func TestParseImage(t *testing.T) {
	digest := strings.Repeat("ab", 32)
	for _, tt := range []struct {
		image     string
		name, tag string
		digest    string
		err       string
	}{
		{"shell", "shell", "", "", ""},
		{"shell:latest", "shell", "", "", ""},
		{"shell:1.0", "shell", "1.0", "", ""},
		{"registry.example.com:5000/team/shell:1.0", "shell", "1.0", "", ""},
		{"registry.example.com:5000/team/shell", "shell", "", "", ""},
		{"shell@sha256:" + digest, "shell", "", digest, ""},
		{"shell:2@sha256:" + strings.ToUpper(digest), "shell", "2", digest, ""},
		{"", "", "", "", ""},
		{"shell@md5:abc", "", "", "", "only sha256 digests are supported"},
		{"shell@sha256:abc", "", "", "", "only sha256 digests are supported"},
	} {
		img, err := parseImage(tt.image)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.image, err, tt.err)
			}
			continue
		}
		if err != nil || img.Name != tt.name || img.Tag != tt.tag || img.Digest != tt.digest {
			t.Errorf("%q: %+v, %v", tt.image, img, err)
		}
	}
	// Metrics label a job by the version it names, never by the image as
	// written.
	for image, want := range map[string]string{
		"shell": "shell", "shell:latest": "shell", "registry.example.com/team/shell:1.0@sha256:" + digest: "shell:1.0",
		"a/b/shell@sha256:" + digest: "shell", "": "", "shell@md5:x": "",
	} {
		if got := HandlerVersion(image); got != want {
			t.Errorf("HandlerVersion(%q) = %q, want %q", image, got, want)
		}
	}
}

// TestHiddenBy: a hidden variable's job-log line names the setting that
// hides it.
func TestHiddenBy(t *testing.T) {
	man := DefaultManifest()
	man.Variables.Allow = []string{"CI_*", "DEPLOY_*"}
	man.Variables.Deny = []string{"DEPLOY_KEY"}
	for _, tt := range []struct{ name, want string }{
		{"SECRET", "the operator's policy hides it from every handler (hide_variables)"},
		{"CI_JOB_TOKEN", "it is a credential the operator's policy hides from every handler unless its expose_variables lists it"},
		{"DEPLOY_KEY", "the handler's manifest denies it ([variables] deny)"},
		{"GREETING", "the handler's manifest does not list it in [variables] allow; add it there to see it"},
	} {
		if got := hiddenBy(&man, []string{"SECRET"}, nil, tt.name); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := hiddenBy(&man, nil, []string{"CI_JOB_TOKEN"}, "CI_JOB_TOKEN"); got == "" || strings.Contains(got, "credential") {
		t.Errorf("an exposed credential: %q", got)
	}
}

// TestBrokenReplacement: a module replaced by a broken file keeps running,
// and the report lists both, saying so.
func TestBrokenReplacement(t *testing.T) {
	dir := writeModules(t, map[string][]byte{"h": buildModule([]wasmFunc{stepFn}, 1)})
	r := openTimed(t, Config{Dir: dir}, 30*time.Second)
	if err := os.WriteFile(filepath.Join(dir, "h.wasm"), buildModule([]wasmFunc{{export: "wasmrunner_step", params: 2, results: 1}}, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	rep := r.Report()
	if len(rep.Modules) != 2 || !rep.Modules[0].Loaded || rep.Modules[1].Loaded || rep.Modules[1].Image != "h" ||
		!strings.HasPrefix(rep.Modules[1].Problems[0].Message, "its file changed and no longer loads (the module loaded before still takes jobs): exports wasmrunner_step") {
		t.Errorf("report: %+v", rep.Modules)
	}
	m, err := r.route("h")
	if err != nil {
		t.Fatalf("the module loaded before: %v", err)
	}
	m.release()
}
