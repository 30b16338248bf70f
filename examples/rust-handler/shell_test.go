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
	"github.com/wasmrunner/wasmrunner/hostfuncs"
	"github.com/wasmrunner/wasmrunner/hostfuncs/abi"
	"github.com/wasmrunner/wasmrunner/internal/runnertest"
	"github.com/wasmrunner/wasmrunner/internal/sandboxfs"
)

// shellWasm returns the handler built by build.sh.
func shellWasm(t testing.TB) []byte {
	t.Helper()
	return runnertest.Module(t, filepath.Join("..", "modules", "shell.wasm"), "bash examples/rust-handler/build.sh")
}

// modulesDir makes a modules dir holding shell.wasm.
func modulesDir(t testing.TB) string {
	t.Helper()
	return runnertest.ModulesDir(t, map[string][]byte{"shell": shellWasm(t)}, nil)
}

// start runs the engine with the modules of dir against a fake GitLab.
func start(t *testing.T, dir string) *runnertest.Env {
	t.Helper()
	return runnertest.Start(t, dir, func(_ *modules.Config, c *engine.Config) { c.Concurrency = 8 })
}

// echoed is how the shell echoes a command line.
func echoed(line string) string { return "\x1b[32;1m$ " + line + "\x1b[0;m\n" }

// out is a line of output (not the echo of a command that contains it).
func out(s string) string { return "\n" + s + "\n" }

type shellCase struct {
	name   string
	job    func(*gitlabtest.JobBuilder) *gitlabtest.JobBuilder // extra settings
	script []string
	after  []string

	state  gitlab.JobState // default success
	reason gitlab.FailureReason
	exit   int

	want   []string // in the trace
	absent []string // not in the trace
	check  func(t *testing.T, e *runnertest.Env, rec gitlabtest.JobRecord)
}

// TestShell runs many small jobs through the engine with shell.wasm, all
// at once, and checks their logs, states and artifacts.
func TestShell(t *testing.T) {
	e := start(t, modulesDir(t))
	dep := e.Srv.AddFinishedJob("build", gitlabtest.Zip(map[string]string{
		"dep.txt": "from the dependency\n", "bin/tool": "#!/bin/true\n",
	}))
	vars := func(b *gitlabtest.JobBuilder) *gitlabtest.JobBuilder {
		return b.Var("GREETING", "hello there").MaskedVar("SECRET", "hunter2-is-masked").Var("EMPTY", "")
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
			name: "variables", job: vars,
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
				out("X=local value"),
				out("unset=[]"),
			},
			absent: []string{"hunter2"},
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
			check: func(t *testing.T, e *runnertest.Env, rec gitlabtest.JobRecord) {
				// The guest sees its build dir as "/" (CI_PROJECT_DIR), never
				// the host's path.
				for _, want := range []string{
					echoed("pwd") + "/\n",
					echoed("pwd && ls") + "/sub\ndir\n",
					echoed("cd dir && touch here && cd .. && ls dir") + "here\n",
					echoed("cd ../.. && pwd") + "/\n",
				} {
					if !strings.Contains(string(rec.Trace), want) {
						t.Errorf("trace lacks %q", want)
					}
				}
				if strings.Contains(string(rec.Trace), e.BuildsDir) {
					t.Errorf("the trace shows the host's builds dir %s", e.BuildsDir)
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
			name: "string tests", job: vars,
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
			want:   []string{out("shell: nosuchcmd: command not found"), "exit code 127"},
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
				out("cd: nowhere: No such file or directory"), out("cd-failed"),
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
			want: []string{out("shell: syntax error: unterminated single quote")},
		},
		{
			name:   "redirection into a missing dir",
			script: []string{`echo x > no/such/dir.txt`},
			state:  gitlab.StateFailed, reason: gitlab.ScriptFailure, exit: 1,
			want: []string{out("shell: no/such/dir.txt: No such file or directory")},
		},
		{
			name: "artifacts",
			job: func(b *gitlabtest.JobBuilder) *gitlabtest.JobBuilder {
				return vars(b).Artifacts(gitlab.ArtifactSpec{Paths: []string{"out/"}})
			},
			script: []string{
				`mkdir -p out`,
				`echo "hello $GREETING" > out/greeting.txt`,
				`seq 3 >> out/greeting.txt`,
				`echo extra > extra.txt && artifact extra.txt`,
				`echo not-an-artifact > other.txt`,
			},
			check: func(t *testing.T, _ *runnertest.Env, rec gitlabtest.JobRecord) {
				if len(rec.Artifacts) != 1 {
					t.Fatalf("artifacts: %d uploads", len(rec.Artifacts))
				}
				files, err := rec.Artifacts[0].ZipFiles()
				if err != nil {
					t.Fatal(err)
				}
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
			name:   "dependency",
			job:    func(b *gitlabtest.JobBuilder) *gitlabtest.JobBuilder { return b.DependsOn(dep) },
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

	runCases(t, e, cases)
}

// runCases enqueues the jobs of cases at once, then checks each.
func runCases(t *testing.T, e *runnertest.Env, cases []shellCase) {
	ids := make([]int64, len(cases))
	for i, c := range cases {
		b := gitlabtest.NewJob(strings.ReplaceAll(c.name, " ", "-")).Image("shell").Script(c.script...)
		if c.after != nil {
			b = b.AfterScript(c.after...)
		}
		if c.job != nil {
			b = c.job(b)
		}
		ids[i] = e.Srv.Enqueue(b)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := e.Wait(t, ids[i])
			tr := string(rec.Trace)
			state := c.state
			if state == "" {
				state = gitlab.StateSuccess
			}
			if rec.State != state || rec.FailureReason != c.reason || rec.ExitCode != c.exit {
				t.Errorf("state %s reason %q exit %d, want %s %q %d", rec.State, rec.FailureReason, rec.ExitCode, state, c.reason, c.exit)
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
				c.check(t, e, rec)
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
	e := start(t, modulesDir(t))
	runCases(t, e, []shellCase{
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

// TestShellSleepStops checks that a sleeping script ends soon after a
// cancel or a timeout.
func TestShellSleepStops(t *testing.T) {
	e := start(t, modulesDir(t))
	canceled := e.Srv.Enqueue(gitlabtest.NewJob("cancel").Image("shell").Script("echo sleeping", "sleep 30", "echo woke"))
	timedOut := e.Srv.Enqueue(gitlabtest.NewJob("timeout").Image("shell").Timeout(time.Second).Script("sleep 30", "echo woke"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitFor(t, func() bool { return strings.Contains(string(e.Srv.Job(canceled).Trace), "$ sleep 30") }, "the sleep")
	time.Sleep(100 * time.Millisecond)
	signal := time.Now()
	e.Srv.Cancel(canceled)
	rec := e.Wait(t, canceled)
	if d := time.Since(signal); d > 2*time.Second {
		t.Errorf("cancelled job ended %v after the cancel", d)
	}
	if rec.State != gitlab.StateCanceled || strings.Contains(string(rec.Trace), out("woke")) {
		t.Errorf("cancelled job: %s\n%s", rec.State, rec.Trace)
	}

	if _, err := e.Srv.WaitForState(ctx, timedOut, gitlab.StateRunning, gitlab.StateFailed); err != nil {
		t.Fatal(err)
	}
	running := time.Now()
	rec = e.Wait(t, timedOut)
	if d := time.Since(running); d > 3*time.Second {
		t.Errorf("timed out job (1 s) ended %v after it started", d)
	}
	if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.JobExecutionTimeout || strings.Contains(string(rec.Trace), out("woke")) {
		t.Errorf("timed out job: %s %s\n%s", rec.State, rec.FailureReason, rec.Trace)
	}
	waitFor(t, func() bool { return e.Runner.Running() == 0 }, "jobs finished")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
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
	dir := modulesDir(b)
	wasm, err := os.ReadFile(filepath.Join(dir, "shell.wasm"))
	if err != nil {
		b.Fatal(err)
	}
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
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
			WithMemoryLimitPages(2048).WithCloseOnContextDone(true))
		defer rt.Close(ctx)
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
			b.Fatal(err)
		}
		if _, err := hostfuncs.Instantiate(ctx, rt); err != nil {
			b.Fatal(err)
		}
		compiled, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		fsys, err := sandboxfs.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer fsys.Close()
		var log bytes.Buffer
		env := &hostfuncs.Env{Log: &log, Script: []string{"echo hello"}, Stop: ctx}
		callCtx := hostfuncs.WithEnv(ctx, env)
		cfg := wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStderr(io.Discard).
			WithFSConfig(sandboxfs.Mount(wazero.NewFSConfig(), fsys, "/")).
			WithStartFunctions(abi.ExportInitialize)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			log.Reset()
			inst, err := rt.InstantiateModule(callCtx, compiled, cfg)
			if err != nil {
				b.Fatal(err)
			}
			res, err := inst.ExportedFunction(abi.ExportStep).Call(callCtx, uint64(abi.PhaseScript))
			if err != nil || res[0] != 0 {
				b.Fatalf("step: %v %v\n%s", res, err, log.String())
			}
			if _, err := inst.ExportedFunction(abi.ExportCleanup).Call(callCtx); err != nil {
				b.Fatal(err)
			}
			inst.Close(ctx)
		}
		b.StopTimer()
		if !strings.HasSuffix(log.String(), "\nhello\n") {
			b.Fatalf("log: %q", log.String())
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		b.ReportMetric(float64(len(wasm)), "wasm-bytes")
	})
}
