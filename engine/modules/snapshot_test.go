package modules_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/goguest"
	"github.com/wasmrunner/wasmrunner/internal/runnertest"
)

// stateGuest is a Go handler that shows, at the start of each step, the
// state a job could leave behind: a package variable, a heap object, a
// map, a string literal and an array computed by an init function; its
// environment (now and at init); and random bytes. Script lines: "set V"
// puts V in all of them; "scribble" overwrites the literal, the array and
// a megabyte of fresh heap (as a hostile guest writing its memory would);
// "hold" waits until the job ends.
const stateGuest = `package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"time"
	"unsafe"

	wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"
)

var (
	counter int
	secret  = "pristine"
	heap    = &struct{ s string }{"pristine"}
	table   = map[string]string{"k": "pristine"}
	initEnv = os.Getenv("JOB_SECRET")
	literal = "literal-0123456789abcdef"
	pattern [1 << 16]byte
)

func init() {
	for i := range pattern {
		pattern[i] = byte(i * 7)
	}
	println("init ran")
	wasmrunner.Handle(handler{})
}

func sum() (s int) {
	for i, b := range pattern {
		s += int(b) * (i + 1)
	}
	return s
}

type handler struct{}

func (handler) Step(script []string, phase wasmrunner.Phase) int {
	var r [8]byte
	rand.Read(r[:])
	wasmrunner.Printf("seen: counter=%d secret=%s heap=%s map=%s/%d literal=%s sum=%d\n",
		counter, secret, heap.s, table["k"], len(table), literal, sum())
	wasmrunner.Printf("env=%q init-env=%q cwd-ok=%v random=%s\n", os.Getenv("JOB_SECRET"), initEnv, cwdOK(), hex.EncodeToString(r[:]))
	if p := os.Getenv("CONFIG_FILE"); p != "" {
		b, err := os.ReadFile(p)
		wasmrunner.Printf("file variable: %q %v\n", b, err)
	}
	for _, line := range script {
		switch {
		case strings.HasPrefix(line, "set "):
			v := strings.TrimPrefix(line, "set ")
			counter++
			secret, heap.s, table["k"], table[v] = v, v, v, v
		case line == "scribble":
			b := unsafe.Slice(unsafe.StringData(literal), len(literal))
			for i := range b {
				b[i] = 'X'
			}
			for i := range pattern {
				pattern[i] = 0xff
			}
			junk := make([]byte, 1<<20)
			for i := range junk {
				junk[i] = 0xee
			}
			wasmrunner.Printf("scribbled %d\n", len(junk))
		case line == "hold":
			wasmrunner.Println("holding")
			wasmrunner.Sleep(time.Hour)
		}
	}
	return 0
}

func (handler) Cleanup() {}

func cwdOK() bool {
	if err := os.WriteFile("probe.txt", []byte("x"), 0o644); err != nil {
		return false
	}
	_, err := os.Stat("/probe.txt")
	return err == nil
}

func main() {}
`

var seenLine = regexp.MustCompile(`seen: [^\n]*`)
var envLine = regexp.MustCompile(`env=[^\n]*`)

// No state of one job reaches another, whether jobs start from the
// module's snapshot or initialize their own instance ([start] snapshot =
// false: the module loaded as it is): each job's first
// step sees the values the program initialized, never a job's, even one
// running at the same time or one that overwrote its memory; each sees
// its own environment, and the build dir as its working directory, with
// or without file variables.
func TestSnapshotIsolation(t *testing.T) {
	wasm := goguest.Module(t, stateGuest, true)
	dir := runnertest.ModulesDir(t, map[string][]byte{"snap": wasm, "fresh": wasm},
		map[string]string{"fresh": "[start]\nsnapshot = false\n"})
	e := runnertest.Start(t, dir, func(_ *modules.Config, c *engine.Config) { c.Concurrency = 3 })
	if !modules.StartsFromSnapshot(e.Registry, "snap") {
		t.Fatalf("no snapshot of the handler: %s", modules.NoSnapshotReason(e.Registry, "snap"))
	}
	if modules.StartsFromSnapshot(e.Registry, "fresh") {
		t.Fatal("a snapshot despite [start] snapshot = false")
	}
	const pristine = "seen: counter=0 secret=pristine heap=pristine map=pristine/1 literal=literal-0123456789abcdef sum="
	for _, image := range []string{"snap", "fresh"} {
		t.Run(image, func(t *testing.T) {
			run := func(secret string, script ...string) *gitlabtest.JobBuilder {
				return gitlabtest.NewJob(image+"-"+secret).Image(image).Var("JOB_SECRET", secret).
					Script(script...).AfterScript("after")
			}
			// A job holds its instance, with its secret set, while others
			// run.
			holder := e.Srv.Enqueue(run("holder", "set holder-secret", "hold"))
			runnertest.WaitFor(t, 20e9, func() bool { return strings.Contains(string(e.Srv.Job(holder).Trace), "holding") }, "the holder to hold")
			var seen []string
			var randoms []string
			for i, script := range [][]string{
				{"set first-secret", "scribble"},
				{"set second-secret"},
				{"set third-secret"},
			} {
				secret := fmt.Sprintf("job%d", i)
				job := run(secret, script...)
				if i == 1 { // one job has a file variable (its dir is mounted), the others none
					job = job.FileVar("CONFIG_FILE", "config of "+secret)
				}
				rec := e.Wait(t, e.Srv.Enqueue(job))
				tr := string(rec.Trace)
				if rec.State != gitlab.StateSuccess {
					t.Fatalf("job %d: %s\n%s", i, rec.State, tr)
				}
				steps := seenLine.FindAllString(tr, -1)
				envs := envLine.FindAllString(tr, -1)
				if len(steps) != 2 || len(envs) != 2 {
					t.Fatalf("job %d: %d steps seen:\n%s", i, len(steps), tr)
				}
				if !strings.HasPrefix(steps[0], pristine) {
					t.Errorf("job %d started with %q, want %q...", i, steps[0], pristine)
				}
				// The job's own state persists from its script to its
				// after_script: one instance per job, as before.
				v := strings.TrimPrefix(script[0], "set ")
				if want := fmt.Sprintf("counter=1 secret=%s heap=%s map=%s/2", v, v, v); !strings.Contains(steps[1], want) {
					t.Errorf("job %d's after_script saw %q, want %q", i, steps[1], want)
				}
				// Init functions of a snapshot ran outside any job: they
				// saw no job's variables.
				initEnv := ""
				if image == "fresh" {
					initEnv = secret
				}
				if !strings.Contains(envs[0], fmt.Sprintf(`env=%q init-env=%q cwd-ok=true`, secret, initEnv)) {
					t.Errorf("job %d: %s", i, envs[0])
				}
				if n := strings.Count(tr, "init ran"); n != 1 {
					t.Errorf("job %d's log has the init output %d times:\n%s", i, n, tr)
				}
				if hasFile := strings.Contains(tr, fmt.Sprintf("file variable: %q <nil>", "config of "+secret)); hasFile != (i == 1) {
					t.Errorf("job %d: file variable read %v:\n%s", i, hasFile, tr)
				}
				seen = append(seen, steps[0])
				randoms = append(randoms, envs[0][strings.Index(envs[0], "random="):])
			}
			if seen[1] != seen[0] || seen[2] != seen[0] {
				t.Errorf("jobs started differently (after one scribbled its memory):\n%s", strings.Join(seen, "\n"))
			}
			if randoms[0] == randoms[1] || randoms[1] == randoms[2] {
				t.Errorf("crypto/rand gave jobs the same bytes: %v", randoms)
			}
			e.Srv.Cancel(holder)
			rec := e.Wait(t, holder)
			if steps := seenLine.FindAllString(string(rec.Trace), -1); len(steps) == 0 || !strings.HasPrefix(steps[0], pristine) {
				t.Errorf("the holder saw %q", steps)
			}
		})
	}
}

// hostInitGuest calls a host function of the runner in an init function:
// its jobs cannot start from a snapshot (the call belongs to a job), so
// each initializes its own instance, and its init sees the job.
const hostInitGuest = `package main

import wasmrunner "github.com/wasmrunner/wasmrunner/guest-sdk/go"

var jobAtInit = wasmrunner.JobInfo().Name

type handler struct{}

func (handler) Step(script []string, phase wasmrunner.Phase) int {
	wasmrunner.Printf("job at init: %s\n", jobAtInit)
	return 0
}

func (handler) Cleanup() {}

func init() { wasmrunner.Handle(handler{}) }

func main() {}
`

func TestNoSnapshotWhenInitCallsHost(t *testing.T) {
	dir := runnertest.ModulesDir(t, map[string][]byte{"hostinit": goguest.Module(t, hostInitGuest, true)}, nil)
	e := runnertest.Start(t, dir, nil)
	if modules.StartsFromSnapshot(e.Registry, "hostinit") {
		t.Fatal("a snapshot of a module whose init calls a host function")
	}
	if why := modules.NoSnapshotReason(e.Registry, "hostinit"); !strings.Contains(why, "host functions") {
		t.Errorf("no snapshot because %q", why)
	}
	for _, name := range []string{"first", "second"} {
		rec := e.Wait(t, e.Srv.Enqueue(gitlabtest.NewJob(name).Image("hostinit").Script("x")))
		if rec.State != gitlab.StateSuccess || !strings.Contains(string(rec.Trace), "job at init: "+name+"\n") {
			t.Errorf("%s: %s\n%s", name, rec.State, rec.Trace)
		}
	}
}

// The instances of a reactor that is not Go map its data segments from an
// image; each still runs its own initialization, and no job sees what
// another wrote in its memory (the data segment, the stack or heap, a
// page past the data), whether it runs at the same time or after it, in
// a memory kept from it: one job at a time reuses the same memories.
func TestDataImageIsolation(t *testing.T) {
	dir := modulesDir(t, map[string]string{"img": "probe", "plain": "probe"}, map[string]string{"plain": "[start]\nsnapshot = false\n"})
	e := start(t, dir, func(_ *modules.Config, c *engine.Config) { c.Concurrency = 2 })
	if !modules.MapsDataImage(e.Registry, "img") {
		t.Fatalf("no data image: %s", modules.NoSnapshotReason(e.Registry, "img"))
	}
	if modules.MapsDataImage(e.Registry, "plain") || modules.StartsFromSnapshot(e.Registry, "plain") {
		t.Fatal("a data image despite [start] snapshot = false")
	}
	for _, image := range []string{"img", "plain"} {
		t.Run(image, func(t *testing.T) {
			// A job holds its scribbled memory while others run.
			holder := e.Srv.Enqueue(gitlabtest.NewJob("holder").Image(image).Script("w", "k", "e holding", "c"))
			waitFor(t, func() bool { return strings.Contains(string(e.Srv.Job(holder).Trace), "holding") }, "the holder to hold")
			for i := range 5 {
				rec := e.Wait(t, e.Srv.Enqueue(gitlabtest.NewJob(fmt.Sprint("job", i)).Image(image).
					Script("k", "w", "k").AfterScript("k")))
				if rec.State != gitlab.StateSuccess {
					t.Fatalf("job %d: %s\n%s", i, rec.State, rec.Trace)
				}
				// The script starts pristine and sees its own writes; its
				// after_script runs in the same instance.
				if got := regexp.MustCompile(`pristine|dirty`).FindAllString(string(rec.Trace), -1); strings.Join(got, " ") != "pristine dirty dirty" {
					t.Errorf("job %d saw %v, want [pristine dirty dirty]:\n%s", i, got, rec.Trace)
				}
			}
			e.Srv.Cancel(holder)
			rec := e.Wait(t, holder)
			if !strings.Contains(string(rec.Trace), "dirty") || strings.Contains(string(rec.Trace), "pristine") {
				t.Errorf("the holder: %s", rec.Trace)
			}
		})
	}
}

// The Rust shell's jobs map its data segments from an image, and none
// sees what another left in its shell (variables, exported or not,
// functions, options, the working directory) or its memory, whether the
// other holds its instance or ended before it (its memory then reused).
func TestShellDataImageIsolation(t *testing.T) {
	shell, err := os.ReadFile("../../examples/modules/shell.wasm")
	if err != nil {
		t.Fatal(err)
	}
	dir := runnertest.ModulesDir(t, map[string][]byte{"shell": shell}, nil)
	e := start(t, dir, func(_ *modules.Config, c *engine.Config) { c.Concurrency = 2 })
	if !modules.MapsDataImage(e.Registry, "shell") {
		t.Fatalf("no data image of the shell: %s", modules.NoSnapshotReason(e.Registry, "shell"))
	}
	leave := func(v string) []string {
		return []string{
			"export LEAK_EXPORTED=" + v + "; LEAK_VAR=" + v,
			"leakfn() { echo leaked-function; }",
			`s=x; for i in $(seq 1 14); do s="$s$s"; done; BIG="$s"`, // 16 KiB of heap
			"mkdir -p sub && cd sub && set -u",
		}
	}
	const check = `echo "seen: var=${LEAK_VAR-unset} exported=${LEAK_EXPORTED-unset} env=$(printenv LEAK_EXPORTED || echo unset) big=${#BIG} fn=$(leakfn 2>/dev/null || echo none) opts=$- dir=$(basename "$PWD")"`
	holder := e.Srv.Enqueue(gitlabtest.NewJob("holder").Image("shell").
		Script(append(leave("holder"), "echo holding", "sleep 3600")...))
	waitFor(t, func() bool { return strings.Contains(string(e.Srv.Job(holder).Trace), "\nholding") }, "the holder to hold")
	const want = "\nseen: var=unset exported=unset env=unset big=0 fn=none opts=e dir=/"
	for i := range 4 {
		rec := e.Wait(t, e.Srv.Enqueue(gitlabtest.NewJob(fmt.Sprint("job", i)).Image("shell").
			Script(append([]string{check}, leave(fmt.Sprint("secret", i))...)...)))
		if rec.State != gitlab.StateSuccess {
			t.Fatalf("job %d: %s\n%s", i, rec.State, rec.Trace)
		}
		seen := regexp.MustCompile(`\nseen: [^\n]*`).FindString(string(rec.Trace))
		if seen != want {
			t.Errorf("job %d: %q, want %q", i, seen, want)
		}
	}
	e.Srv.Cancel(holder)
	e.Wait(t, holder)
}
