package modules_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/runnertest"
)

// guest returns a test guest built by scripts/build-guests.
func guest(t testing.TB, name string) []byte {
	t.Helper()
	return runnertest.Module(t, filepath.Join("..", "..", "testdata", "guests", name+".wasm"), "scripts/build-guests")
}

// modulesDir makes a modules dir holding the named guests under new names
// (name -> guest), with optional manifests (name -> TOML).
func modulesDir(t testing.TB, guests map[string]string, manifests map[string]string) string {
	t.Helper()
	wasm := map[string][]byte{}
	for name, g := range guests {
		wasm[name] = guest(t, g)
	}
	return runnertest.ModulesDir(t, wasm, manifests)
}

func start(t *testing.T, dir string, configure func(*modules.Config, *engine.Config)) *runnertest.Env {
	t.Helper()
	return runnertest.Start(t, dir, configure)
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	runnertest.WaitFor(t, time.Minute, cond, what)
}

func TestProbeGuest(t *testing.T) {
	e := start(t, modulesDir(t, map[string]string{"probe": "probe"}, nil), nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("probe").Image("probe").
		Var("GREETING", "hello from a variable").MaskedVar("SECRET", "hunter2-is-masked").
		Script("e first line", "v", "a", "e last line").AfterScript("e after"))
	rec := e.Wait(t, id)
	tr := string(rec.Trace)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s:\n%s", rec.State, tr)
	}
	want := "first line\nhello from a variable\n[MASKED]\nlast line\n"
	if !strings.Contains(tr, want) || !strings.Contains(tr, "after\n") {
		t.Errorf("trace lacks %q:\n%s", want, tr)
	}
	if len(rec.Artifacts) != 1 {
		t.Fatalf("artifacts: %+v", rec.Artifacts)
	}
	files, err := rec.Artifacts[0].ZipFiles()
	if err != nil || string(files["out/wasm.txt"]) != "from wasm\n" {
		t.Errorf("artifact files %v, %v", files, err)
	}
}

func TestExitCodes(t *testing.T) {
	e := start(t, modulesDir(t, map[string]string{"probe": "probe"}, nil), nil)
	tests := []struct {
		line   string
		reason gitlab.FailureReason
		exit   int
		trace  string
	}{
		{"x", gitlab.ScriptFailure, 7, "exit code 7"},
		{"p", gitlab.ScriptFailure, 3, "exit code 3"},
		{"unknown", gitlab.ScriptFailure, 127, "exit code 127"},
		{"t", gitlab.ScriptFailure, 0, "unreachable"},
		{"r", gitlab.ScriptFailure, 0, "stack overflow"},
		{"m", gitlab.ScriptFailure, 0, "unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			id := e.Srv.Enqueue(gitlabtest.NewJob(tt.line).Image("probe").Script(tt.line))
			rec := e.Wait(t, id)
			if rec.State != gitlab.StateFailed || rec.FailureReason != tt.reason || rec.ExitCode != tt.exit {
				t.Errorf("state %s reason %s exit %d, want failed %s %d", rec.State, rec.FailureReason, rec.ExitCode, tt.reason, tt.exit)
			}
			if !strings.Contains(string(rec.Trace), tt.trace) {
				t.Errorf("trace lacks %q:\n%s", tt.trace, rec.Trace)
			}
		})
	}
	// The runner still serves.
	id := e.Srv.Enqueue(gitlabtest.NewJob("after").Image("probe").Script("e still alive"))
	if rec := e.Wait(t, id); rec.State != gitlab.StateSuccess {
		t.Errorf("runner broken after hostile guests: %s", rec.State)
	}
}

func TestRunawayGuestsStop(t *testing.T) {
	e := start(t, modulesDir(t, map[string]string{"probe": "probe"}, nil), nil)
	tests := []struct {
		name   string
		line   string
		cancel bool
		reason gitlab.FailureReason
		state  gitlab.JobState
	}{
		{"spinning guest times out", "l", false, gitlab.JobExecutionTimeout, gitlab.StateFailed},
		{"sleeping guest times out", "s", false, gitlab.JobExecutionTimeout, gitlab.StateFailed},
		{"spinning guest canceled", "l", true, "", gitlab.StateCanceled},
		{"sleeping guest canceled", "s", true, "", gitlab.StateCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := gitlabtest.NewJob("runaway").Image("probe").Script(tt.line)
			if !tt.cancel {
				b = b.Timeout(time.Second)
			}
			id := e.Srv.Enqueue(b)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := e.Srv.WaitForState(ctx, id, gitlab.StateRunning); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			signal := time.Now()
			if tt.cancel {
				e.Srv.Cancel(id)
			} else {
				signal = time.Now().Add(800 * time.Millisecond) // the 1 s timeout
			}
			rec := e.Wait(t, id)
			waitFor(t, func() bool { return e.Runner.Running() == 0 }, "job finished")
			if d := time.Since(signal); d > time.Minute {
				t.Errorf("guest stopped %v after the signal", d)
			}
			if rec.State != tt.state || rec.FailureReason != tt.reason {
				t.Errorf("state %s reason %s", rec.State, rec.FailureReason)
			}
		})
	}
}

func TestGracefulCancelIsNoticed(t *testing.T) {
	e := start(t, modulesDir(t, map[string]string{"probe": "probe"}, nil), nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("graceful").Image("probe").Script("c").AfterScript("e after_script ran"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.Srv.WaitForState(ctx, id, gitlab.StateRunning); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	e.Srv.CancelGracefully(id)
	rec := e.Wait(t, id)
	tr := string(rec.Trace)
	if rec.State != gitlab.StateCanceled || !strings.Contains(tr, "noticed the cancel") || !strings.Contains(tr, "after_script ran") {
		t.Errorf("state %s:\n%s", rec.State, tr)
	}
}

func TestCommandGuest(t *testing.T) {
	dir := modulesDir(t, map[string]string{"cmd": "cmd"}, map[string]string{
		"cmd": "[variables]\ndeny = [\"HIDDEN_*\"]\n[env]\nset = { EXIT_CODE = \"0\" }\n",
	})
	e := start(t, dir, nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("c").Image("cmd").Var("GREETING", "bonjour").Var("HIDDEN_VAR", "nope").
		Variable(gitlab.Variable{Key: "CONFIG_FILE", Value: "server: lab-1\n", File: true}).
		Script("run").Artifacts(gitlab.ArtifactSpec{Paths: []string{"out/"}}))
	rec := e.Wait(t, id)
	tr := string(rec.Trace)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s:\n%s", rec.State, tr)
	}
	for _, want := range []string{"greeting from C: bonjour", "hidden: (unset)", "entry: out", "to stderr", "config: server: lab-1"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
	files, err := rec.Artifacts[0].ZipFiles()
	if err != nil || string(files["out/c.txt"]) != "written by C\n" {
		t.Errorf("artifacts %v, %v", files, err)
	}
}

func TestRouting(t *testing.T) {
	dir := modulesDir(t, map[string]string{"probe": "probe", "other": "probe", "broken": "bad_import", "empty": "no_entry"}, nil)
	e := start(t, dir, nil)
	problems := e.Registry.Problems()
	if !strings.Contains(fmt.Sprint(problems["broken"]), "imports unknown function wasmrunner:host/v1.format_disk") {
		t.Errorf("broken: %v", problems["broken"])
	}
	if !strings.Contains(fmt.Sprint(problems["empty"]), "exports neither wasmrunner_step") {
		t.Errorf("empty: %v", problems["empty"])
	}
	tests := []struct {
		image, want string
		ok          bool
	}{
		{"probe", "routed", true},
		{"registry.example.com/team/other", "routed", true},
		{"registry.example.com/team/other:latest", "routed", true},
		{"registry.example.com/team/other:1.2", `no handler: "other:1.2" is not loaded (versions of other: other (untagged))`, false},
		{"nonexistent", `no handler: "nonexistent" is not loaded (available: other, probe)`, false},
		{"broken", "broken.wasm failed to load", false},
		{"", "the job names no image and no default handler is set", false},
	}
	for _, tt := range tests {
		id := e.Srv.Enqueue(gitlabtest.NewJob("r").Image(tt.image).Script("e routed"))
		rec := e.Wait(t, id)
		if (rec.State == gitlab.StateSuccess) != tt.ok || !strings.Contains(string(rec.Trace), tt.want) {
			t.Errorf("image %q: state %s, trace:\n%s", tt.image, rec.State, rec.Trace)
		}
		if !tt.ok && rec.FailureReason != gitlab.RunnerSystemFailure {
			t.Errorf("image %q: reason %s", tt.image, rec.FailureReason)
		}
	}
}

func TestHotReload(t *testing.T) {
	dir := modulesDir(t, map[string]string{"probe": "probe"}, nil)
	e := start(t, dir, nil)
	ctx := context.Background()
	if _, err := os.Stat(filepath.Join(dir, "probe.wasm")); err != nil {
		t.Fatal(err)
	}
	// A long job keeps its instance across a replacement and a removal.
	long := e.Srv.Enqueue(gitlabtest.NewJob("long").Image("probe").Timeout(2*time.Second).Script("e started", "s"))
	waitFor(t, func() bool { return strings.Contains(string(e.Srv.Job(long).Trace), "started") }, "long job running")
	data := guest(t, "probe")
	if err := os.WriteFile(filepath.Join(dir, "added.wasm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "probe.wasm")); err != nil {
		t.Fatal(err)
	}
	if err := e.Registry.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range e.Registry.Modules() {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "added" {
		t.Errorf("modules after reload: %v", names)
	}
	if rec := e.Wait(t, long); rec.FailureReason != gitlab.JobExecutionTimeout {
		t.Errorf("long job: %s %s", rec.State, rec.FailureReason)
	}
	id := e.Srv.Enqueue(gitlabtest.NewJob("new").Image("added").Script("e new module"))
	if rec := e.Wait(t, id); rec.State != gitlab.StateSuccess {
		t.Errorf("added module: %s\n%s", rec.State, rec.Trace)
	}
	id = e.Srv.Enqueue(gitlabtest.NewJob("gone").Image("probe").Script("e x"))
	if rec := e.Wait(t, id); rec.State != gitlab.StateFailed {
		t.Errorf("removed module still routed: %s", rec.State)
	}
}

func TestManifestLimits(t *testing.T) {
	dir := modulesDir(t, map[string]string{"probe": "probe"}, map[string]string{
		"probe": "[limits]\nmemory = \"1MiB\"\ntimeout = \"500ms\"\nlog = \"40B\"\n",
	})
	e := start(t, dir, nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("m").Image("probe").Script("m"))
	if rec := e.Wait(t, id); rec.State != gitlab.StateFailed || !strings.Contains(string(rec.Trace), "unreachable") {
		t.Errorf("memory bomb under 1MiB: %s\n%s", rec.State, rec.Trace)
	}
	id = e.Srv.Enqueue(gitlabtest.NewJob("t").Image("probe").Script("l"))
	if rec := e.Wait(t, id); rec.FailureReason != gitlab.JobExecutionTimeout || !strings.Contains(string(rec.Trace), "may run at most 500ms") {
		t.Errorf("manifest timeout: %s %s\n%s", rec.State, rec.FailureReason, rec.Trace)
	}
	id = e.Srv.Enqueue(gitlabtest.NewJob("log").Image("probe").Script("e 0123456789", "e 0123456789", "e 0123456789", "e 0123456789"))
	rec := e.Wait(t, id)
	if !strings.Contains(string(rec.Trace), "reached its log limit of 40B (limits.log)") || strings.Count(string(rec.Trace), "0123456789") > 4 {
		t.Errorf("log limit:\n%s", rec.Trace)
	}
	bad := modulesDir(t, map[string]string{"x": "probe", "y": "probe", "z": "probe", "w": "probe"}, map[string]string{
		"x": "[limits]\nmemroy = 5\n",
		"y": "[limits]\ncpu = \"whenever\"\n",
		"z": "[limits]\ncpu = \"uninterrupted\"\n",
		"w": "[limits]\nfiles = -1\n",
	})
	reg, err := modules.Open(context.Background(), modules.Config{Dir: bad})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(context.Background())
	if p := reg.Problems()["x"]; p == nil || !strings.Contains(p.Error(), `x.toml:2: unknown key "limits.memroy"`) {
		t.Errorf("bad manifest: %v", p)
	}
	if p := reg.Problems()["y"]; p == nil || !strings.Contains(p.Error(), `limits.cpu must be "interrupt" or "uninterrupted"`) {
		t.Errorf("bad cpu policy: %v", p)
	}
	if p := reg.Problems()["w"]; p == nil || !strings.Contains(p.Error(), "limits.files must not be negative") {
		t.Errorf("negative files limit: %v", p)
	}
	if mods := reg.Modules(); len(mods) != 1 || mods[0].Manifest.Limits.CPU != modules.CPUUninterrupted {
		t.Errorf("modules: %+v", mods)
	}
}

func TestDependencyFiles(t *testing.T) {
	e := start(t, modulesDir(t, map[string]string{"probe": "probe"}, nil), nil)
	dep := e.Srv.AddFinishedJob("build", gitlabtest.Zip(map[string]string{"bin/tool": "x", "readme.md": "y"}))
	id := e.Srv.Enqueue(gitlabtest.NewJob("deps").Image("probe").DependsOn(dep).Script("d"))
	rec := e.Wait(t, id)
	if rec.State != gitlab.StateSuccess || !strings.Contains(string(rec.Trace), "bin/tool\x00readme.md") {
		t.Errorf("state %s:\n%q", rec.State, rec.Trace)
	}
}

// Two tenants' handlers at once see only their own build dir and variables.
func TestTenantsAreIsolated(t *testing.T) {
	dir := modulesDir(t, map[string]string{"tenant-a": "cmd", "tenant-b": "cmd"}, nil)
	e := start(t, dir, nil)
	a := e.Srv.Enqueue(gitlabtest.NewJob("a").Image("tenant-a").Var("GREETING", "alpha-secret-a").
		Script("run").Artifacts(gitlab.ArtifactSpec{Paths: []string{"out/"}}))
	b := e.Srv.Enqueue(gitlabtest.NewJob("b").Image("tenant-b").Var("GREETING", "bravo-secret-b").
		Script("run").Artifacts(gitlab.ArtifactSpec{Paths: []string{"out/"}}))
	ra, rb := e.Wait(t, a), e.Wait(t, b)
	for _, c := range []struct {
		rec         gitlabtest.JobRecord
		own, others string
	}{{ra, "alpha-secret-a", "bravo-secret-b"}, {rb, "bravo-secret-b", "alpha-secret-a"}} {
		tr := string(c.rec.Trace)
		if c.rec.State != gitlab.StateSuccess || !strings.Contains(tr, c.own) || strings.Contains(tr, c.others) {
			t.Errorf("job %d (%s):\n%s", c.rec.ID, c.rec.State, tr)
		}
		// Its file system holds only what it wrote.
		for _, line := range strings.Split(tr, "\n") {
			if strings.HasPrefix(line, "entry: ") && line != "entry: out" {
				t.Errorf("job %d sees %q", c.rec.ID, line)
			}
		}
		if len(c.rec.Artifacts) != 1 {
			t.Errorf("job %d artifacts: %d", c.rec.ID, len(c.rec.Artifacts))
		}
	}
}

// A guest filling the disk is stopped at its manifest's disk limit; the
// runner keeps serving.
func TestDiskLimit(t *testing.T) {
	dir := modulesDir(t, map[string]string{"fill": "diskfill", "cmd": "cmd"}, map[string]string{
		"fill": "[limits]\ndisk = \"4MiB\"\n",
	})
	e := start(t, dir, nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("fill").Image("fill").Script("run").
		Artifacts(gitlab.ArtifactSpec{Paths: []string{"big.bin"}}))
	rec := e.Wait(t, id)
	tr := string(rec.Trace)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s:\n%s", rec.State, tr)
	}
	// wazero reports ENOSPC to guests as EIO; the runner says why.
	for _, want := range []string{"wrote 4 MiB", "errno: I/O error", "reached the disk limit of 4MiB (limits.disk); writes past it failed"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
	if len(rec.Artifacts) != 1 {
		t.Fatalf("artifacts: %+v", rec.Artifacts)
	}
	files, err := rec.Artifacts[0].ZipFiles()
	if err != nil || len(files["big.bin"]) != 4<<20 {
		t.Errorf("big.bin: %d bytes, %v", len(files["big.bin"]), err)
	}
	id = e.Srv.Enqueue(gitlabtest.NewJob("after").Image("cmd").Script("run"))
	if rec := e.Wait(t, id); rec.State != gitlab.StateSuccess || strings.Contains(string(rec.Trace), "disk limit") {
		t.Errorf("after the disk filler: %s\n%s", rec.State, rec.Trace)
	}
}

// A guest creating files in a loop is stopped at its manifest's file count
// limit; the runner says why and keeps serving.
func TestFilesLimit(t *testing.T) {
	dir := modulesDir(t, map[string]string{"many": "manyfiles", "cmd": "cmd"}, map[string]string{
		"many": "[limits]\nfiles = 50\n",
	})
	e := start(t, dir, nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("many").Image("many").Script("run"))
	rec := e.Wait(t, id)
	tr := string(rec.Trace)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s:\n%s", rec.State, tr)
	}
	for _, want := range []string{"created 50 files", "errno: I/O error", "reached the limit of 50 files and directories (limits.files)"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
	if n := strings.Count(tr, "files and directories"); n != 1 {
		t.Errorf("%d warnings:\n%s", n, tr)
	}
	id = e.Srv.Enqueue(gitlabtest.NewJob("after").Image("cmd").Script("run"))
	if rec := e.Wait(t, id); rec.State != gitlab.StateSuccess || strings.Contains(string(rec.Trace), "files and directories") {
		t.Errorf("after the file creator: %s\n%s", rec.State, rec.Trace)
	}
}
