package modules_test

import (
	"crypto/rand"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/runnertest"
)

// observer records what a registry reports.
type observer struct {
	mu       sync.Mutex
	cuts     map[string]int // "module key"
	denied   map[string]int // "module resource"
	outlived map[string]int64
}

func newObserver() *observer {
	return &observer{cuts: map[string]int{}, denied: map[string]int{}, outlived: map[string]int64{}}
}

func (o *observer) ModuleCompiled(string, time.Duration)     {}
func (o *observer) ModuleInstantiated(string, time.Duration) {}
func (o *observer) CacheSize(int64)                          {}
func (o *observer) ManifestCut(module string, cuts []resource.Cut) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, c := range cuts {
		o.cuts[module+" "+c.Key]++
	}
}
func (o *observer) ResourceDenied(module, what string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.denied[module+" "+what]++
}
func (o *observer) GuestsOutlived(module string, n int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outlived[module] = n
}

func (o *observer) get(m map[string]int, k string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return m[k]
}

var _ modules.Observer = (*observer)(nil)

func traceHas(t *testing.T, rec gitlabtest.JobRecord, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(string(rec.Trace), w) {
			t.Errorf("trace lacks %q:\n%s", w, rec.Trace)
		}
	}
}

func traceLacks(t *testing.T, rec gitlabtest.JobRecord, bads ...string) {
	t.Helper()
	for _, b := range bads {
		if strings.Contains(string(rec.Trace), b) {
			t.Errorf("trace has %q:\n%s", b, rec.Trace)
		}
	}
}

// artifact_add_data is charged to the disk limit like the guest's writes.
func TestArtifactDataCountsAgainstDisk(t *testing.T) {
	dir := modulesDir(t, map[string]string{"lim": "limits"}, map[string]string{"lim": "[limits]\ndisk = \"1MiB\"\n"})
	obs := newObserver()
	e := start(t, dir, func(m *modules.Config, _ *engine.Config) { m.Observer = obs })
	id := e.Srv.Enqueue(gitlabtest.NewJob("a").Image("lim").Script("A"))
	rec := e.Wait(t, id)
	traceHas(t, rec, "refused\n", "artifact_add_data: limit reached: writing a016: the disk limit of 1MiB (limits.disk) is used up",
		"handler lim reached the disk limit of 1MiB (limits.disk); writes past it failed")
	if len(rec.Artifacts) != 1 {
		t.Fatalf("artifacts: %d", len(rec.Artifacts))
	}
	files, err := rec.Artifacts[0].ZipFiles()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, f := range files {
		total += len(f)
	}
	if len(files) != 16 || total > 1<<20 {
		t.Errorf("uploaded %d files, %d bytes; want 16 files within 1MiB", len(files), total)
	}
	if obs.get(obs.denied, "lim disk") != 1 {
		t.Errorf("denials: %v", obs.denied)
	}
}

// Section headers count against the handler's log limit.
func TestSectionsCountAgainstLogLimit(t *testing.T) {
	dir := modulesDir(t, map[string]string{"lim": "limits"}, map[string]string{"lim": "[limits]\nlog = \"4KiB\"\n"})
	e := start(t, dir, nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("s").Image("lim").Script("S"))
	rec := e.Wait(t, id)
	traceHas(t, rec, "reached its log limit of 4KiB (limits.log)")
	if n := len(rec.Trace); n > 8<<10 {
		t.Errorf("trace is %d bytes with a 4KiB handler log limit (200 sections of 2000 bytes asked)", n)
	}
}

// The log limit counts masked bytes: a cut never shows part of a secret.
func TestLogLimitCutsAfterMasking(t *testing.T) {
	const secret = "hunter2-is-a-long-secret"
	for _, limit := range []string{"34B", "40B", "45B"} {
		t.Run(limit, func(t *testing.T) {
			dir := modulesDir(t, map[string]string{"lim": "limits"}, map[string]string{"lim": "[limits]\nlog = \"" + limit + "\"\n"})
			e := start(t, dir, nil)
			id := e.Srv.Enqueue(gitlabtest.NewJob("p").Image("lim").MaskedVar("SECRET", secret).Script("P"))
			rec := e.Wait(t, id)
			traceLacks(t, rec, "hunt", "secret")
		})
	}
}

// A guest that ignores its handler's timeout and returns 0 is reported
// as timed out.
func TestGuestReturningAfterTimeout(t *testing.T) {
	dir := modulesDir(t, map[string]string{"lim": "limits"}, map[string]string{"lim": "[limits]\ntimeout = \"200ms\"\n"})
	e := start(t, dir, nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("r").Image("lim").Script("R"))
	rec := e.Wait(t, id)
	if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.JobExecutionTimeout {
		t.Fatalf("state %s reason %s:\n%s", rec.State, rec.FailureReason, rec.Trace)
	}
	traceHas(t, rec, "may run at most 200ms (limits.timeout)")
}

// after_script's environment has the runner's CI_JOB_STATUS, which no job
// variable can replace, and no host path.
func TestAfterScriptEnvironment(t *testing.T) {
	e := start(t, modulesDir(t, map[string]string{"lim": "limits"}, nil), nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("env").Image("lim").
		Var("CI_JOB_STATUS", "success").Var("CI_PROJECT_DIR", "/pretend").
		Script("E", "X").AfterScript("E"))
	rec := e.Wait(t, id)
	if rec.State != gitlab.StateFailed {
		t.Fatalf("state %s", rec.State)
	}
	tr := string(rec.Trace)
	after := tr[strings.Index(tr, "Running after_script"):]
	if !strings.Contains(after, "CI_JOB_STATUS=failed\n") || strings.Contains(after, "CI_JOB_STATUS=success") {
		t.Errorf("after_script environment:\n%s", after)
	}
	traceHas(t, rec, "CI_PROJECT_DIR=/\n", "CI_BUILDS_DIR=/\n")
	traceLacks(t, rec, e.BuildsDir, "CI_PROJECT_DIR=/pretend")
}

// A guest sees only the file variables its manifest allows, read-only,
// and no host path.
func TestFileVariables(t *testing.T) {
	dir := modulesDir(t, map[string]string{"files": "files"}, map[string]string{"files": "[variables]\ndeny = [\"SECRET_FILE\"]\n"})
	e := start(t, dir, nil)
	const fv = modules.FileVariablesPath
	id := e.Srv.Enqueue(gitlabtest.NewJob("f").Image("files").
		FileVar("ALLOWED_FILE", "allowed content\n").FileVar("SECRET_FILE", "top secret\n").
		Var("READ", fv+"/ALLOWED_FILE:"+fv+"/SECRET_FILE:"+fv).
		Var("WRITE", fv+"/ALLOWED_FILE:"+fv+"/NEW").
		Script("run"))
	rec := e.Wait(t, id)
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s:\n%s", rec.State, rec.Trace)
	}
	traceHas(t, rec,
		"CI_PROJECT_DIR=/\n", "CI_BUILDS_DIR=/\n",
		"read "+fv+"/ALLOWED_FILE: allowed content\n",
		"read "+fv+"/SECRET_FILE: No such file or directory\n",
		"write "+fv+"/ALLOWED_FILE: Read-only file system\n",
		"write "+fv+"/NEW: Read-only file system\n")
	traceLacks(t, rec, "top secret", e.BuildsDir)
}

// Guest memory is charged to the process's budget: a guest that grows
// until refused stops at the budget, and the budget is given back when
// the job ends.
func TestProcessMemoryBudget(t *testing.T) {
	dir := modulesDir(t, map[string]string{"lim": "limits"}, nil)
	proc := resource.NewProcess(resource.ProcessConfig{Jobs: 2, Memory: 8 << 20, Stop: runnertest.TestStop})
	e := start(t, dir, func(m *modules.Config, c *engine.Config) { c.Process, m.Process = proc, proc })
	for i := 0; i < 2; i++ {
		id := e.Srv.Enqueue(gitlabtest.NewJob("m").Image("lim").Script("M"))
		rec := e.Wait(t, id)
		if rec.State != gitlab.StateSuccess {
			t.Fatalf("state %s:\n%s", rec.State, rec.Trace)
		}
		traceHas(t, rec, "grow refused\n", "handler lim could not grow its memory: the process's guest memory budget of 8MiB (all jobs) is used up")
	}
	waitFor(t, func() bool { return proc.Memory.Used() == 0 }, "guest memory given back")
}

// A manifest asking for more than the operator's policy is cut, with one
// line in the job log and a count.
func TestPolicyCutsManifest(t *testing.T) {
	dir := modulesDir(t, map[string]string{"probe": "probe"}, map[string]string{
		"probe": "[limits]\nmemory = \"1GiB\"\ncpu = \"uninterrupted\"\n[http]\nallow = [\"*\", \"api.example.com\"]\n",
	})
	obs := newObserver()
	e := start(t, dir, func(m *modules.Config, _ *engine.Config) {
		m.Observer = obs
		m.Policy = &resource.Policy{Max: resource.Limits{Memory: 64 << 20}}
	})
	mods := e.Registry.Modules()
	if len(mods) != 1 || mods[0].Limits.Memory != 64<<20 || mods[0].Limits.CPU != resource.CPUInterrupt ||
		strings.Join(mods[0].Limits.HTTP.Allow, ",") != "api.example.com" || len(mods[0].Cuts) != 3 {
		t.Fatalf("modules: %+v", mods)
	}
	id := e.Srv.Enqueue(gitlabtest.NewJob("p").Image("probe").Script("e hi"))
	rec := e.Wait(t, id)
	traceHas(t, rec, "WARNING: handler probe's manifest asks for more than the operator allows; it gets limits.memory 1GiB -> 64MiB; "+
		"limits.cpu uninterrupted -> interrupt (the handler is not trusted); http.allow [*, api.example.com] -> [api.example.com]")
	if strings.Count(string(rec.Trace), "asks for more than") != 1 {
		t.Errorf("the cut is said more than once:\n%s", rec.Trace)
	}
	if obs.get(obs.cuts, "probe limits.memory") != 1 || obs.get(obs.cuts, "probe limits.cpu") != 1 || obs.get(obs.cuts, "probe http.allow") != 1 {
		t.Errorf("cuts counted: %v", obs.cuts)
	}
}

// An untrusted handler asking for cpu = "uninterrupted" is cut to
// interrupt, so its runaway guest is stopped at its timeout.
func TestUntrustedUninterruptedIsStopped(t *testing.T) {
	dir := modulesDir(t, map[string]string{"probe": "probe"}, map[string]string{"probe": "[limits]\ncpu = \"uninterrupted\"\ntimeout = \"300ms\"\n"})
	e := start(t, dir, nil)
	id := e.Srv.Enqueue(gitlabtest.NewJob("spin").Image("probe").Script("l"))
	rec := e.Wait(t, id)
	if rec.FailureReason != gitlab.JobExecutionTimeout {
		t.Fatalf("reason %s:\n%s", rec.FailureReason, rec.Trace)
	}
	// The guest stopped: its instance slot is free again.
	waitFor(t, func() bool { return e.Runner.Running() == 0 }, "job finished")
	proc := e.Registry.Process()
	waitFor(t, func() bool { return proc.Instances.InUse() == 0 }, "the spinning guest stopped")
}

// A trusted uninterrupted guest that outlives its job is counted; past
// the policy's max_outlived its handler takes no new jobs until it stops.
func TestOutlivedGuests(t *testing.T) {
	// A guest running uninterruptible code cannot be stopped for a
	// garbage collection either: a collection started while it spins waits
	// for it, and so does every goroutine of the process (the hazard
	// RATIONALE.md describes). The test needs the runner to go on while
	// the guest spins, so no collection may start meanwhile.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	dir := modulesDir(t, map[string]string{"lim": "limits"}, map[string]string{"lim": "[limits]\ncpu = \"uninterrupted\"\ntimeout = \"100ms\"\n"})
	obs := newObserver()
	proc := resource.NewProcess(resource.ProcessConfig{Jobs: 2, Stop: resource.Stop{Interrupt: 50 * time.Millisecond, Abandon: 5 * time.Second}})
	e := start(t, dir, func(m *modules.Config, c *engine.Config) {
		m.Observer, c.Process, m.Process = obs, proc, proc
		m.Policy = &resource.Policy{Trusted: []string{"lim"}, MaxOutlived: 1}
	})
	// B spins in guest code (no host call) for a second or more; the
	// handler's timeout and the grace after it end the job first.
	id := e.Srv.Enqueue(gitlabtest.NewJob("b").Image("lim").Script("B"))
	rec := e.Wait(t, id)
	if rec.FailureReason != gitlab.JobExecutionTimeout {
		t.Fatalf("reason %s:\n%s", rec.FailureReason, rec.Trace)
	}
	traceHas(t, rec, `handler lim's guest is still running after the job ended (cpu = "uninterrupted" cannot be interrupted)`)
	id2 := e.Srv.Enqueue(gitlabtest.NewJob("refused").Image("lim").Script("E"))
	rec2 := e.Wait(t, id2)
	if rec2.State != gitlab.StateFailed || rec2.FailureReason != gitlab.RunnerSystemFailure {
		t.Errorf("second job while a guest outlives its job: %s %s", rec2.State, rec2.FailureReason)
	}
	traceHas(t, rec2, "handler lim takes no new jobs: 1 of its guests are still running after their jobs ended (at most 1 may")
	// When the guest returns, its handler takes jobs again.
	// Seconds of spinning on an idle machine; a loaded one takes longer.
	runnertest.WaitFor(t, 2*time.Minute, func() bool { return proc.Instances.InUse() == 0 }, "the outliving guest returned")
	obs.mu.Lock()
	n := obs.outlived["lim"]
	obs.mu.Unlock()
	if n != 0 {
		t.Errorf("outlived gauge %d after the guest returned", n)
	}
	id3 := e.Srv.Enqueue(gitlabtest.NewJob("again").Image("lim").Script("E"))
	if rec := e.Wait(t, id3); rec.State != gitlab.StateSuccess {
		t.Errorf("after the guest returned: %s\n%s", rec.State, rec.Trace)
	}
}

// Handlers built with the SDKs see each step's environment through their
// language's own environment (os.Getenv, std::env): after_script has the
// runner's CI_JOB_STATUS, and nothing the handler set in an earlier step.
func TestSDKEnvironmentPerStep(t *testing.T) {
	for _, name := range []string{"envgo", "envrust"} {
		t.Run(name, func(t *testing.T) {
			wasm := runnertest.Module(t, "../../testdata/sdkguests/"+name+".wasm", "scripts/build-guests")
			e := start(t, runnertest.ModulesDir(t, map[string][]byte{name: wasm}, nil), nil)
			// CI_JOB_STATUS is the runner's, whatever the payload says:
			// running during the script, the result in after_script.
			id := e.Srv.Enqueue(gitlabtest.NewJob("env").Image(name).Var("GREETING", "hi").
				Var("CI_JOB_STATUS", "success").Script("fail").AfterScript("ok"))
			rec := e.Wait(t, id)
			lang := strings.TrimPrefix(name, "env")
			// What the handler set in the script is gone in after_script.
			traceHas(t, rec, lang+" script: CI_JOB_STATUS=running GREETING=hi MINE=(unset)\n", lang+" after_script: CI_JOB_STATUS=failed GREETING=hi MINE=(unset)\n")
		})
	}
}

// Dependency artifacts extracted for a job count against its handler's
// disk and file limits.
func TestDependencyArtifactsCountAgainstLimits(t *testing.T) {
	big := strings.Repeat("x", 2<<20) // compresses to a few KiB
	rnd := make([]byte, 2<<20)
	rand.Read(rnd)
	random := string(rnd) // does not compress
	many := map[string]string{}
	for i := 0; i < 30; i++ {
		many["f/"+strings.Repeat("n", i+1)] = "y"
	}
	tests := []struct {
		name     string
		manifest string
		files    map[string]string
		want     string
	}{
		{"bytes", "[limits]\ndisk = \"1MiB\"\n", map[string]string{"big.bin": big}, "the disk limit of 1MiB (limits.disk) is used up"},
		{"archive", "[limits]\ndisk = \"1MiB\"\n", map[string]string{"random.bin": random}, "the disk limit of 1MiB (limits.disk) is used up"},
		{"entries", "[limits]\nfiles = 10\n", many, "the limit of 10 files and directories (limits.files) is used up"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := start(t, modulesDir(t, map[string]string{"probe": "probe"}, map[string]string{"probe": tt.manifest}), nil)
			dep := e.Srv.AddFinishedJob("build", gitlabtest.Zip(tt.files))
			id := e.Srv.Enqueue(gitlabtest.NewJob("deps").Image("probe").DependsOn(dep).Script("e never"))
			rec := e.Wait(t, id)
			if rec.State != gitlab.StateFailed {
				t.Fatalf("state %s:\n%s", rec.State, rec.Trace)
			}
			traceHas(t, rec, tt.want)
			traceLacks(t, rec, "never")
		})
	}
}

// What guests do leaves no goroutine behind once their jobs are done:
// sleeps cut short, timeouts, cancels, traps and exits.
func TestNoGoroutinesLeft(t *testing.T) {
	e := start(t, modulesDir(t, map[string]string{"probe": "probe", "lim": "limits"}, map[string]string{"lim": "[limits]\ntimeout = \"100ms\"\n"}), nil)
	warm := e.Srv.Enqueue(gitlabtest.NewJob("warm").Image("probe").Script("e warm"))
	e.Wait(t, warm)
	waitFor(t, func() bool { return e.Runner.Running() == 0 }, "idle")
	base := ownGoroutines()
	var ids []int64
	for i := 0; i < 4; i++ {
		ids = append(ids,
			e.Srv.Enqueue(gitlabtest.NewJob("sleep").Image("probe").Timeout(time.Second).Script("s")),
			e.Srv.Enqueue(gitlabtest.NewJob("spin").Image("probe").Timeout(time.Second).Script("l")),
			e.Srv.Enqueue(gitlabtest.NewJob("trap").Image("probe").Script("t")),
			e.Srv.Enqueue(gitlabtest.NewJob("exit").Image("probe").Script("p")),
			e.Srv.Enqueue(gitlabtest.NewJob("ignore").Image("lim").Script("R")))
	}
	cancelMe := e.Srv.Enqueue(gitlabtest.NewJob("cancel").Image("probe").Script("c"))
	waitFor(t, func() bool { return e.Srv.Job(cancelMe).State == gitlab.StateRunning }, "running")
	e.Srv.Cancel(cancelMe)
	for _, id := range append(ids, cancelMe) {
		e.Wait(t, id)
	}
	waitFor(t, func() bool { return e.Runner.Running() == 0 }, "idle")
	// A leak keeps the count up; a goroutine that comes and goes (a
	// timer's function, the journal's flush) does not fail the test.
	deadline := time.Now().Add(10 * time.Second)
	for n := ownGoroutines(); n > base; n = ownGoroutines() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the jobs:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ownGoroutines counts the goroutines but those of HTTP connections (the
// GitLab client's pool, which the jobs share, and the fake's server side).
func ownGoroutines() int {
	buf := make([]byte, 4<<20)
	n := 0
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if !strings.Contains(g, "net/http.") {
			n++
		}
	}
	return n
}

// limits.instances bounds a handler's instances at once: a second job
// waits for the first's instance.
func TestInstanceLimits(t *testing.T) {
	e := start(t, modulesDir(t, map[string]string{"probe": "probe"}, map[string]string{"probe": "[limits]\ninstances = 1\n"}), nil)
	first := e.Srv.Enqueue(gitlabtest.NewJob("first").Image("probe").Script("e first started", "c"))
	waitFor(t, func() bool { return strings.Contains(string(e.Srv.Job(first).Trace), "first started") }, "the first job's guest runs")
	second := e.Srv.Enqueue(gitlabtest.NewJob("second").Image("probe").Script("e second ran"))
	waitFor(t, func() bool { return e.Srv.Job(second).State == gitlab.StateRunning }, "the runner took the second job")
	time.Sleep(300 * time.Millisecond)
	if tr := string(e.Srv.Job(second).Trace); strings.Contains(tr, "second ran") {
		t.Fatalf("the second job ran while the first held the only instance:\n%s", tr)
	}
	e.Srv.Cancel(first)
	if rec := e.Wait(t, second); rec.State != gitlab.StateSuccess || !strings.Contains(string(rec.Trace), "second ran") {
		t.Errorf("second job: %s\n%s", rec.State, rec.Trace)
	}
}

// A table declared without a maximum cannot grow past its size, and when
// the module's code may grow it, the job log says so.
func TestCappedTableGrowthIsSaid(t *testing.T) {
	wasm := runnertest.Module(t, "../../testdata/hostile/tablegrow.wasm", "scripts/build-guests")
	e := start(t, runnertest.ModulesDir(t, map[string][]byte{"tg": wasm}, nil), nil)
	rec := e.Wait(t, e.Srv.Enqueue(gitlabtest.NewJob("grow").Image("tg").Script("grow")))
	if rec.State != gitlab.StateSuccess {
		t.Fatalf("state %s:\n%s", rec.State, rec.Trace)
	}
	traceHas(t, rec, "guest: table.grow refused", "NOTE: handler tg's code may grow table 0 (1 elements), declared without a maximum")
}
