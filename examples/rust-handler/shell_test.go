package shell_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/engine/modules"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/handlertest"
	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/runnertest"
	"github.com/wasmrunner/wasmrunner/internal/sandboxfs"
)

const shellPath = "../modules/shell.wasm"

// start runs shell.wasm through the engine against a fake GitLab until the
// test ends, and returns the engine's builds dir too.
func start(t *testing.T) (*handlertest.Runner, string) {
	t.Helper()
	var buildsDir string
	r := handlertest.Load(t, shellPath, handlertest.Configure(func(_ *modules.Config, c *engine.Config) {
		c.Concurrency = 8
		buildsDir = c.BuildsDir
	}))
	return r, buildsDir
}

// echoed is how the shell echoes a command line.
func echoed(line string) string { return "\x1b[32;1m$ " + line + "\x1b[0;m\n" }

// out is a line of output (not the echo of a command that contains it).
func out(s string) string { return "\n" + s + "\n" }

type shellCase struct {
	name   string
	job    handlertest.Job // extra settings
	script []string
	after  []string

	state  gitlab.JobState // default success
	reason gitlab.FailureReason
	exit   int

	want   []string // in the trace
	absent []string // not in the trace
	check  func(t *testing.T, res *handlertest.Result)
}

// TestShell runs many small jobs through the engine with shell.wasm, all
// at once, and checks their logs, states and artifacts.
func TestShell(t *testing.T) {
	r, buildsDir := start(t)
	vars := []handlertest.Variable{
		handlertest.Var("GREETING", "hello there"), handlertest.MaskedVar("SECRET", "hunter2-is-masked"), handlertest.Var("EMPTY", ""),
	}
	cases := []shellCase{
		{
			name:   "echo and quotes",
			script: []string{`echo hello   world`, `echo -n no-newline; echo " end"`, `echo 'single $HOME' "a  b" \$x a\ b`, `echo "it's" 'say "hi"' "back\\slash"`},
			want: []string{
				echoed("echo hello   world") + "hello world\n",
				out("no-newline end"),
				out("single $HOME a  b $x a b"),
				out(`it's say "hi" back\slash`),
			},
		},
		{
			name: "variables", job: handlertest.Job{Variables: vars},
			script: []string{
				`echo "g=$GREETING" ${GREETING}!`,
				`echo secret=$SECRET`,
				`echo "unset=[$NOPE] empty=[$EMPTY]"`,
				`echo ${NOPE:-fallback} ${EMPTY:-dflt}`,
				`printenv GREETING`,
				`X="local value"; echo "$X" $X`,
				`export Y=exported && printenv Y`,
				`env`,
				`unset GREETING; printenv GREETING || echo "unset=[$GREETING]"`,
			},
			want: []string{
				out("g=hello there hello there!"),
				out("secret=[MASKED]"),
				out("unset=[] empty=[]"),
				out("fallback dflt"),
				out("hello there"),
				out("local value local value"),
				out("exported"),
				out("GREETING=hello there"),
				out("SECRET=[MASKED]"),
				out("unset=[]"),
			},
			// env lists exported variables only, as sh's does.
			absent: []string{"hunter2", out("X=local value")},
		},
		{
			name: "status and operators",
			script: []string{
				`false || echo "status $?"`,
				`true && echo and-ok`,
				`false && echo never-printed`,
				`echo last=$?`,
				`! false && echo negated`,
				`true; echo after-true`,
				`false || true || echo not-either`,
				`# a comment; echo commented-out`,
				`echo visible # trailing comment`,
			},
			want:   []string{out("status 1"), out("and-ok"), out("last=1"), out("negated"), out("after-true"), out("visible")},
			absent: []string{out("never-printed"), out("not-either"), out("commented-out")},
		},
		{
			name: "files",
			script: []string{
				`mkdir -p a/b && mkdir c`,
				`echo one > a/b/f.txt`,
				`echo two >> a/b/f.txt; echo three >> a/b/f.txt`,
				`cat a/b/f.txt`,
				`cp a/b/f.txt g.txt && wc -l g.txt`,
				`head -n 2 g.txt`,
				`touch t.txt && ls`,
				`ls a/b`,
				`test -f g.txt && [ -d a ] && test -e t.txt && echo tests-ok`,
				`rm g.txt; test -f g.txt || echo g-gone`,
				`mv t.txt c/ && ls c`,
				`cp -r a copy && cat copy/b/f.txt`,
				`rm -r a copy && ls`,
				`rm -f no-such-file && echo rm-f-ok`,
				`echo to-null > /dev/null`,
				`mkdir -p out; echo x > out/x 2>&1`,
			},
			want: []string{
				echoed("cat a/b/f.txt") + "one\ntwo\nthree\n",
				out("3 g.txt"),
				echoed("head -n 2 g.txt") + "one\ntwo\n" + echoed("touch t.txt && ls") + "a\nc\ng.txt\nt.txt\n",
				echoed("ls a/b") + "f.txt\n",
				out("tests-ok"),
				out("g-gone"),
				echoed("mv t.txt c/ && ls c") + "t.txt\n",
				echoed("cp -r a copy && cat copy/b/f.txt") + "one\ntwo\nthree\n",
				echoed("rm -r a copy && ls") + "c\n",
				out("rm-f-ok"),
			},
			absent: []string{out("to-null")},
		},
		{
			name: "cd and pwd",
			script: []string{
				`pwd`,
				`mkdir -p sub/dir && cd sub`,
				`pwd && ls`,
				`cd dir && touch here && cd .. && ls dir`,
				`cd ../.. && pwd`,
			},
			check: func(t *testing.T, res *handlertest.Result) {
				// The guest sees its build dir as "/" (CI_PROJECT_DIR), never
				// the host's path.
				for _, want := range []string{
					echoed("pwd") + "/\n",
					echoed("pwd && ls") + "/sub\ndir\n",
					echoed("cd dir && touch here && cd .. && ls dir") + "here\n",
					echoed("cd ../.. && pwd") + "/\n",
				} {
					if !strings.Contains(string(res.Trace), want) {
						t.Errorf("trace lacks %q", want)
					}
				}
				if strings.Contains(string(res.Trace), buildsDir) {
					t.Errorf("the trace shows the host's builds dir %s", buildsDir)
				}
			},
		},
		{
			name: "seq and pipes",
			script: []string{
				`seq 3`,
				`seq 4 6`,
				`seq 1 2 7 | wc -l`,
				`seq 100 | head -n 2`,
				`echo a b c | wc -w`,
				`seq 5 | cat`,
			},
			want: []string{
				echoed("seq 3") + "1\n2\n3\n",
				echoed("seq 4 6") + "4\n5\n6\n",
				echoed("seq 1 2 7 | wc -l") + "4\n",
				echoed("seq 100 | head -n 2") + "1\n2\n",
				echoed("echo a b c | wc -w") + "3\n",
				echoed("seq 5 | cat") + "1\n2\n3\n4\n5\n",
			},
		},
		{
			name: "string tests", job: handlertest.Job{Variables: vars},
			script: []string{
				`[ "$GREETING" = "hello there" ] && echo equal`,
				`[ "$GREETING" != "hello" ] && echo different`,
				`test -n "$GREETING" && test -z "$EMPTY" && echo lengths`,
				`[ a = b ]`,
				`echo not-reached`,
			},
			state: gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 1,
			want:   []string{out("equal"), out("different"), out("lengths")},
			absent: []string{out("not-reached")},
		},
		{
			name:   "sleep",
			script: []string{`sleep 0.05 && echo slept`},
			want:   []string{out("slept")},
		},
		{
			name:   "exit 3",
			script: []string{`echo before`, `exit 3`, `echo after`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 3,
			want:   []string{out("before"), "exit code 3"},
			absent: []string{out("after")},
		},
		{
			name:   "exit 0 ends the script",
			script: []string{`exit 0`, `echo after-exit`},
			absent: []string{out("after-exit")},
		},
		{
			name:   "unknown command",
			script: []string{`nosuchcmd --flag`, `echo after`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 127,
			want:   []string{out("sh: nosuchcmd: command not found"), "exit code 127"},
			absent: []string{out("after")},
		},
		{
			name:   "false",
			script: []string{`false`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 1,
		},
		{
			name:   "set -e within a line",
			script: []string{`false; echo not-reached`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 1,
			absent: []string{out("not-reached")},
		},
		{
			name:   "cat missing",
			script: []string{`cat missing.txt`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 1,
			want: []string{out("cat: missing.txt: No such file or directory")},
		},
		{
			name:   "builtin errors",
			script: []string{`mkdir d && touch d/f`, `rm d || echo rm-failed`, `cd nowhere || echo cd-failed`, `ls nowhere || mkdir d`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 1,
			want: []string{
				out("rm: cannot remove 'd': Is a directory"), out("rm-failed"),
				out("sh: cd: nowhere: No such file or directory"), out("cd-failed"),
				out("ls: cannot access 'nowhere': No such file or directory"),
				out("mkdir: cannot create directory 'd': File exists"),
			},
		},
		{
			name:   "printenv of an unset variable",
			script: []string{`printenv NOPE`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 1,
		},
		{
			name:   "syntax error",
			script: []string{`echo 'unterminated`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 2,
			want: []string{out("sh: unexpected EOF while looking for matching `''")},
		},
		{
			name:   "redirection into a missing dir",
			script: []string{`echo x > no/such/dir.txt`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 1,
			want: []string{out("sh: no/such/dir.txt: No such file or directory")},
		},
		{
			name: "artifacts",
			job:  handlertest.Job{Variables: vars, Artifacts: []string{"out/"}},
			script: []string{
				`mkdir -p out`,
				`echo "hello $GREETING" > out/greeting.txt`,
				`seq 3 >> out/greeting.txt`,
				`echo extra > extra.txt && artifact extra.txt`,
				`echo not-an-artifact > other.txt`,
			},
			check: func(t *testing.T, res *handlertest.Result) {
				if len(res.Record.Artifacts) != 1 {
					t.Fatalf("artifacts: %d uploads", len(res.Record.Artifacts))
				}
				files := res.Artifacts
				want := map[string]string{"out/greeting.txt": "hello hello there\n1\n2\n3\n", "extra.txt": "extra\n"}
				if len(files) != len(want) {
					t.Errorf("archive holds %d files: %v", len(files), files)
				}
				for name, content := range want {
					if string(files[name]) != content {
						t.Errorf("%s: %q, want %q", name, files[name], content)
					}
				}
			},
		},
		{
			name: "dependency",
			job: handlertest.Job{Dependencies: []handlertest.Dependency{{Files: map[string]string{
				"dep.txt": "from the dependency\n", "bin/tool": "#!/bin/true\n",
			}}}},
			script: []string{`cat dep.txt`, `ls bin`},
			want:   []string{echoed("cat dep.txt") + "from the dependency\n", echoed("ls bin") + "tool\n"},
		},
		{
			name:   "after_script runs in a fresh shell",
			script: []string{`mkdir sub && cd sub && X=1`, `exit 4`},
			after:  []string{`ls && echo "x=[$X]"`, `false`, `echo not-reached`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 4,
			want:   []string{echoed(`ls && echo "x=[$X]"`) + "sub\nx=[]\n", "WARNING: after_script failed: exit code 1"},
			absent: []string{out("not-reached")},
		},
	}

	runCases(t, r, cases)
}

// runCases starts the jobs of cases at once, then checks each.
func runCases(t *testing.T, r *handlertest.Runner, cases []shellCase) {
	runs := make([]*handlertest.JobRun, len(cases))
	for i, c := range cases {
		job := c.job
		job.Name, job.Script, job.AfterScript = strings.ReplaceAll(c.name, " ", "-"), c.script, c.after
		runs[i] = r.Start(job)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			res, err := runs[i].Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tr := string(res.Trace)
			state := c.state
			if state == "" {
				state = gitlab.StateSuccess
			}
			if res.State != state || res.FailureReason != c.reason || res.ExitCode != c.exit {
				t.Errorf("state %s reason %q exit %d, want %s %q %d", res.State, res.FailureReason, res.ExitCode, state, c.reason, c.exit)
			}
			for _, w := range c.want {
				if !strings.Contains(tr, w) {
					t.Errorf("trace lacks %q", w)
				}
			}
			for _, a := range c.absent {
				if strings.Contains(tr, a) {
					t.Errorf("trace has %q", a)
				}
			}
			if c.check != nil {
				c.check(t, res)
			}
			if t.Failed() {
				t.Logf("trace:\n%s", tr)
			}
		})
	}
}

// TestShellAfterScriptSeesJobStatus checks that after_script sees how the
// script ended in CI_JOB_STATUS (docs/abi.md promises it to handlers).
func TestShellAfterScriptSeesJobStatus(t *testing.T) {
	r, _ := start(t)
	runCases(t, r, []shellCase{
		{
			name:   "after_script after success",
			script: []string{`mkdir sub && cd sub`},
			after:  []string{`echo "status=$CI_JOB_STATUS"`, `ls`},
			want:   []string{out("status=success"), echoed("ls") + "sub\n"},
		},
		{
			name:   "after_script after failure",
			script: []string{`exit 4`},
			after:  []string{`echo "status=$CI_JOB_STATUS"`, `false`, `echo not-reached`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 4,
			want:   []string{out("status=failed")},
			absent: []string{out("not-reached")},
		},
	})
}

// TestShellSleepStops checks that a sleeping script ends on a cancel or
// a timeout rather than when its sleep would: the sleeps last an hour, so
// a job still sleeping would outlast the test's context. No wall-clock
// window is asserted (a loaded machine may take seconds to react).
func TestShellSleepStops(t *testing.T) {
	r, _ := start(t)
	canceled := r.Start(handlertest.Job{Name: "cancel", Script: []string{"echo sleeping", "sleep 3600", "echo woke"}})
	timedOut := r.Start(handlertest.Job{Name: "timeout", Script: []string{"sleep 3600", "echo woke"}, Timeout: time.Second})

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := canceled.WaitLog(ctx, "$ sleep 3600"); err != nil {
		t.Fatal(err)
	}
	canceled.Cancel()
	res, err := canceled.Wait(ctx)
	if err != nil {
		t.Fatalf("cancelled job did not end: %v", err)
	}
	if res.State != gitlab.StateCanceled || strings.Contains(res.Log, out("woke")) {
		t.Errorf("cancelled job: %s\n%s", res.State, res.Log)
	}

	res, err = timedOut.Wait(ctx)
	if err != nil {
		t.Fatalf("timed out job did not end: %v", err)
	}
	if res.State != gitlab.StateFailed || res.FailureReason != gitlab.JobExecutionTimeout || strings.Contains(res.Log, out("woke")) {
		t.Errorf("timed out job: %s %s\n%s", res.State, res.FailureReason, res.Log)
	}
	for r.Engine().Running() != 0 {
		if ctx.Err() != nil {
			t.Fatal("jobs still running")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkShellJob measures what a one-line shell.wasm job ("echo
// hello") costs, and reports the module's size:
//   - engine: whole jobs through the modules registry and the engine at
//     concurrency 8 (instantiate, step, cleanup, close, and the fake
//     GitLab's requests), as jobs/s, like engine/modules'
//     BenchmarkSandboxTax does for its WAT probe;
//   - instance: the handler alone, one job after the other: instantiate
//     (with _initialize), wasmrunner_step, wasmrunner_cleanup, close.
func BenchmarkShellJob(b *testing.B) {
	wasm := runnertest.Module(b, shellPath, "bash examples/rust-handler/build.sh")
	dir := runnertest.ModulesDir(b, map[string][]byte{"shell": wasm}, nil)
	b.Run("engine", func(b *testing.B) {
		reg, err := modules.Open(context.Background(), modules.Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		defer reg.Close(context.Background())
		runnertest.BenchJobs(b, 8, reg.Factory(), func() *gitlabtest.JobBuilder {
			return gitlabtest.NewJob("t").Image("shell").Script("echo hello")
		})
		b.ReportMetric(float64(len(wasm)), "wasm-bytes")
	})
	b.Run("instance", func(b *testing.B) {
		ctx := context.Background()
		inst := newInstances(b, wasm)
		b.ReportAllocs()
		b.ResetTimer()
		var log string
		for range b.N {
			var code uint64
			var err error
			code, log, err = inst.run(ctx, "echo hello")
			if err != nil || code != 0 {
				b.Fatalf("step: %v %v\n%s", code, err, log)
			}
		}
		b.StopTimer()
		if !strings.HasSuffix(log, "\nhello\n") {
			b.Fatalf("log: %q", log)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		b.ReportMetric(float64(len(wasm)), "wasm-bytes")
	})
}

// TestShellHostile runs scripts that nest, recurse or allocate without
// bound: each must end the job with a clear error (script_failure and the
// shell's message), never a trap of the module (its 64 KiB stack or its
// memory) nor a hang.
func TestShellHostile(t *testing.T) {
	r, _ := start(t)
	nest := func(n int, open, close, mid string) string {
		return strings.Repeat(open, n) + mid + strings.Repeat(close, n)
	}
	cases := []struct {
		name, script, want string
		exit               int
	}{
		{"deep subshells", nest(500, "( ", " )", "echo deep"), "sh: nesting too deep", 2},
		{"deep ifs", nest(300, "if true; then ", "; fi", "echo deep"), "sh: nesting too deep", 2},
		{"deep substitutions", nest(300, "echo $(", ")", "echo x"), "sh: nesting too deep", 2},
		{"deep braces", nest(500, "{ ", "; }", "echo x"), "sh: nesting too deep", 2},
		{"deep parameter defaults", nest(500, "${x:-", "}", "y"), "sh: nesting too deep", 2},
		{"deep arithmetic", "echo $((" + nest(2000, "(", ")", "1") + "))", "expression nested too deeply", 1},
		{"deep test brackets", "[[ " + nest(500, "( ", " )", "-n x") + " ]]", "sh: nesting too deep", 2},
		{"recursive function", "f() { f; }; f", "sh: nesting too deep", 2},
		{"recursion through nested bodies", "f() { if true; then while true; do case x in x) { f; } ;; esac; done; fi; }; f", "sh: nesting too deep", 2},
		{"recursive eval", "f() { eval f; }; f", "sh: nesting too deep", 2},
		{"doubling variable", "x=a; while true; do x=$x$x; done", "sh: x: value too long", 1},
		{"endless pipe", "seq 1 1000000000 | head -1", "buffer limit exceeded", 1},
		{"huge substitution", "x=$(seq 1 100000000)", "buffer limit exceeded", 1},
		{"catastrophic regex", "echo " + strings.Repeat("a", 60) + " | grep -E '(a*)*(a*)*(a*)*c'", "", 1},
	}
	runs := make([]*handlertest.JobRun, len(cases))
	for i, c := range cases {
		runs[i] = r.Start(handlertest.Job{Name: strings.ReplaceAll(c.name, " ", "-"), Script: []string{c.script}})
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			res, err := runs[i].Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if res.State != gitlab.StateFailed || res.FailureReason != gitlab.ScriptFailure || res.ExitCode != c.exit ||
				!strings.Contains(res.Log, c.want) || strings.Contains(res.Log, "wasm error") {
				t.Errorf("%s %s exit %d, want failed script_failure exit %d and %q:\n%s", res.State, res.FailureReason, res.ExitCode, c.exit, c.want, res.Log)
			}
		})
	}
}

// instances runs one-step jobs of a module directly on wazero, as the
// engine does (WASI, the host functions, the sandboxed build dir), one
// instance per run.
type instances struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	fsys     *sandboxfs.FS
}

func newInstances(tb testing.TB, wasm []byte) *instances {
	tb.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithMemoryLimitPages(2048).WithCloseOnContextDone(true))
	tb.Cleanup(func() { rt.Close(ctx) })
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		tb.Fatal(err)
	}
	if _, err := hostfuncs.Instantiate(ctx, rt); err != nil {
		tb.Fatal(err)
	}
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		tb.Fatal(err)
	}
	fsys, err := sandboxfs.New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fsys.Close() })
	return &instances{rt: rt, compiled: compiled, fsys: fsys}
}

// run instantiates the module, runs a script step and closes it: the
// step's result, the log, and an error if the instance failed (a trap, or
// ctx ending).
func (in *instances) run(ctx context.Context, script string) (uint64, string, error) {
	var log bytes.Buffer
	env := &hostfuncs.Env{Log: &cappedWriter{w: &log, n: 1 << 20}, Script: []string{script}, Stop: ctx}
	callCtx := hostfuncs.WithEnv(ctx, env)
	cfg := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStderr(io.Discard).
		WithFSConfig(sandboxfs.Mount(wazero.NewFSConfig(), in.fsys, "/")).
		WithStartFunctions(abi.ExportInitialize)
	inst, err := in.rt.InstantiateModule(callCtx, in.compiled, cfg)
	if err != nil {
		return 0, log.String(), err
	}
	defer inst.Close(context.Background())
	res, err := inst.ExportedFunction(abi.ExportStep).Call(callCtx, uint64(abi.PhaseScript))
	if err != nil {
		return 0, log.String(), err
	}
	if _, err := inst.ExportedFunction(abi.ExportCleanup).Call(callCtx); err != nil {
		return 0, log.String(), err
	}
	return res[0], log.String(), nil
}

// cappedWriter takes at most n bytes, as the engine's log limit would:
// past it, writes fail.
type cappedWriter struct {
	w io.Writer
	n int
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	if len(p) > c.n {
		return 0, io.ErrShortWrite
	}
	c.n -= len(p)
	return c.w.Write(p)
}

// FuzzShell runs arbitrary scripts in shell.wasm: whatever the script,
// the module must end the step with a status (or be stopped by the
// step's deadline, for endless loops), never trap (a panic, a stack
// overflow, running out of memory). The seeds are the differential
// corpus and hostile nesting.
func FuzzShell(f *testing.F) {
	wasm := runnertest.Module(f, shellPath, "bash examples/rust-handler/build.sh")
	paths, _ := filepath.Glob(filepath.Join(corpusDir, "*.sh"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, s := range []string{
		strings.Repeat("( ", 300), strings.Repeat("$(", 300), strings.Repeat("${x:-", 300), "f() { f; }; f",
		"echo ${x:1é}", "sleep 1é", "printf '%é'", "echo é | tr é-a x", "[[ é =~ (é ]]", "case é in [é-) ;; esac",
		"cat <<EOF\n$(", "echo $((1<<63)) $((-9223372036854775807-1)) $(( (-9223372036854775807-1) / -1 ))",
		"head -c -5 /dev/null; tail -c +0", "seq 9223372036854775806 9223372036854775807", "cut -f 9223372036854775807",
		"printf '%*d' 99999999999 1", "echo x | sed 's/x/\\9/'", "x=é; echo ${x:0:1} ${#x} ${x^^}",
		"echo $'\\x' $'\\u' $'\\c' $'\\777' $'é\\", "echo ${!} ${!x[@]:1} ${!é} ${!x*}; x=x; echo ${!x}",
		"declare -A m; m[é]=1; m+=([a]=2 b); echo ${m[é]} ${!m[@]} ${m[@]:1}; unset 'm[é]'",
		"echo '1/0; 2^99999; 99999999999999999999999999999999999999999; scale=99; -.é' | bc",
		"find . -printf '%P %é %' -exec {} + -size -é", "set -- -ab; getopts ab o; set -- x; getopts ab o; getopts ab o",
		"exec 9>&1; exec 10>x; exec 3>&-; echo >&7", "od -t é; od -t ''; od -w0; split -a 20 -b 0; fold -w 0; nl -w 0",
		"stat --printf '%' .; printf %q $'\\x01é'; printf '\\xff' | cat -A; date -d '99999999999-01-01'; date -d '9999999999999 days'",
	} {
		f.Add(s)
	}
	inst := newInstances(f, wasm)
	f.Fuzz(func(t *testing.T, script string) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, log, err := inst.run(ctx, script)
		if err != nil && ctx.Err() == nil {
			t.Fatalf("the step failed: %v\nlog:\n%s", err, log)
		}
	})
}
