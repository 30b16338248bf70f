package handlertest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/handlertest"
)

// The kit is tested with the shell handler (examples/rust-handler), whose
// build is committed.
const shellPath = "../examples/modules/shell.wasm"

// shell runs shell.wasm until the test ends; its jobs run in parallel
// subtests.
func shell(t *testing.T, opts ...handlertest.Option) *handlertest.Runner {
	t.Helper()
	return handlertest.Load(t, shellPath, opts...)
}

func run(t *testing.T, r *handlertest.Runner, job handlertest.Job) *handlertest.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := r.Run(ctx, job)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRun(t *testing.T) {
	r := shell(t)

	t.Run("variables, dependencies, artifacts, after_script", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, handlertest.Job{
			Name: "build",
			Script: []string{
				`echo "greeting=$GREETING secret=$SECRET"`,
				`cat $CONFIG`,
				`cat from-files.txt from-zip.txt`,
				`mkdir -p out && echo result > out/r.txt`,
				`echo extra > extra.txt && artifact extra.txt`,
			},
			AfterScript: []string{`echo "after: $CI_JOB_STATUS"`},
			Variables: []handlertest.Variable{
				handlertest.Var("GREETING", "hello"),
				handlertest.MaskedVar("SECRET", "hunter2-is-masked"),
				handlertest.FileVar("CONFIG", "config file content"),
			},
			Dependencies: []handlertest.Dependency{
				{Name: "prepare", Files: map[string]string{"from-files.txt": "one"}},
				{Zip: gitlabtest.Zip(map[string]string{"from-zip.txt": "two"})},
			},
			Artifacts: []string{"out/"},
		})
		if res.State != "success" || res.ExitCode != 0 || res.FailureReason != "" {
			t.Fatalf("state %s (%s, exit %d):\n%s", res.State, res.FailureReason, res.ExitCode, res.Log)
		}
		for _, want := range []string{
			"$ echo \"greeting=$GREETING secret=$SECRET\"\ngreeting=hello secret=[MASKED]\n",
			"config file content",
			"onetwo",
			"after: success",
		} {
			if !strings.Contains(res.Log, want) {
				t.Errorf("log lacks %q:\n%s", want, res.Log)
			}
		}
		if strings.Contains(string(res.Trace), "hunter2") || strings.Contains(res.Log, "\x1b[") || !strings.Contains(string(res.Trace), "\x1b[32;1m$ ") {
			t.Errorf("trace:\n%q", res.Trace)
		}
		if len(res.Artifacts) != 2 || string(res.Artifacts["out/r.txt"]) != "result\n" || string(res.Artifacts["extra.txt"]) != "extra\n" {
			t.Errorf("artifacts %q", res.Artifacts)
		}
	})

	t.Run("failure", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, handlertest.Job{Script: []string{"echo before", "exit 3", "echo after"}})
		if res.State != "failed" || res.FailureReason != "script_failure" || res.ExitCode != 3 {
			t.Errorf("state %s (%s, exit %d)", res.State, res.FailureReason, res.ExitCode)
		}
		if !strings.Contains(res.Log, "\nbefore\n") || strings.Contains(res.Log, "\nafter\n") || len(res.Artifacts) != 0 {
			t.Errorf("log:\n%s", res.Log)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		res := run(t, r, handlertest.Job{Script: []string{"sleep 3600"}, Timeout: time.Second})
		if res.State != "failed" || res.FailureReason != "job_execution_timeout" {
			t.Errorf("state %s (%s)", res.State, res.FailureReason)
		}
		if d := time.Since(start); d > time.Minute {
			t.Errorf("a job with a 1 s timeout took %v", d)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		j := r.Start(handlertest.Job{Script: []string{"echo sleeping", "sleep 30", "echo woke"}, AfterScript: []string{"echo after"}})
		if err := j.WaitLog(t.Context(), "$ sleep 30"); err != nil {
			t.Fatal(err)
		}
		j.Cancel()
		res, err := j.Wait(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if res.State != "canceled" || strings.Contains(res.Log, "\nwoke\n") || strings.Contains(res.Log, "\nafter\n") {
			t.Errorf("state %s:\n%s", res.State, res.Log)
		}
	})

	t.Run("graceful cancel", func(t *testing.T) {
		t.Parallel()
		j := r.Start(handlertest.Job{Script: []string{"sleep 30", "echo woke"}, AfterScript: []string{`echo "after: $CI_JOB_STATUS"`}})
		if err := j.WaitLog(t.Context(), "$ sleep 30"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(j.Log(), "$ sleep 30\n") {
			t.Errorf("log so far:\n%s", j.Log())
		}
		j.CancelGracefully()
		res, err := j.Wait(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if res.State != "canceled" || strings.Contains(res.Log, "\nwoke\n") || !strings.Contains(res.Log, "after: canceled") {
			t.Errorf("state %s:\n%s", res.State, res.Log)
		}
	})

	t.Run("WaitLog fails when the job ends without the text", func(t *testing.T) {
		t.Parallel()
		j := r.Start(handlertest.Job{Script: []string{"echo done"}})
		err := j.WaitLog(t.Context(), "never printed")
		if err == nil || !strings.Contains(err.Error(), "ended (success) without") {
			t.Errorf("WaitLog: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := r.Start(handlertest.Job{Script: []string{"sleep 1"}}).WaitLog(ctx, "x"); err == nil {
			t.Error("WaitLog with a done context succeeded")
		}
	})

	t.Run("Edit", func(t *testing.T) {
		t.Parallel()
		res := run(t, r, handlertest.Job{
			Script: []string{`echo "$CI_JOB_NAME in $CI_JOB_STAGE of $CI_PROJECT_NAME: $FROM_EDIT"`},
			Stage:  "deploy",
			Edit:   func(b *gitlabtest.JobBuilder) { b.Var("FROM_EDIT", "edited") },
		})
		if !strings.Contains(res.Log, "\ntest in deploy of demo: edited\n") {
			t.Errorf("log:\n%s", res.Log)
		}
	})
}

func TestManifest(t *testing.T) {
	r := shell(t, handlertest.Manifest("[variables]\ndeny = [\"HIDDEN_*\"]\n"))
	res := run(t, r, handlertest.Job{
		Script:    []string{`echo "[$HIDDEN_A] [$SHOWN]"`},
		Variables: []handlertest.Variable{handlertest.Var("HIDDEN_A", "a"), handlertest.Var("SHOWN", "b")},
	})
	if !strings.Contains(res.Log, "\n[] [b]\n") {
		t.Errorf("log:\n%s", res.Log)
	}
}

func TestLoadDirAndImages(t *testing.T) {
	wasm, err := os.ReadFile(shellPath)
	if err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"sh-a", "sh-b"} {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), wasm, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "sh-b.toml"), []byte("[variables]\ndeny = [\"X\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := handlertest.LoadDir(t, dir, handlertest.Name("sh-a"))
	// A job without an image goes to the Runner's handler (Name).
	for image, want := range map[string]string{"": "\n[x]\n", "sh-a": "\n[x]\n", "sh-b": "\n[]\n"} {
		res := run(t, r, handlertest.Job{
			Image:     image,
			Script:    []string{`echo "[$X]"`},
			Variables: []handlertest.Variable{handlertest.Var("X", "x")},
		})
		if !strings.Contains(res.Log, want) {
			t.Errorf("image %q: log lacks %q:\n%s", image, want, res.Log)
		}
	}
}

func TestNewAndOpen(t *testing.T) {
	wasm, err := os.ReadFile(shellPath)
	if err != nil {
		t.Skip(err)
	}
	r := handlertest.New(t, wasm, handlertest.Name("sh"), handlertest.CacheDir(t.TempDir()))
	if res := run(t, r, handlertest.Job{Script: []string{"echo hi"}}); !strings.Contains(res.Log, `Using handler for image "sh"`) {
		t.Errorf("log:\n%s", res.Log)
	}
	if _, err := handlertest.Open(t.Context(), []byte("not a module")); err == nil || !strings.Contains(err.Error(), "handler does not load") {
		t.Errorf("Open of a bad module: %v", err)
	}
}

func TestLoadSkipsMissingModule(t *testing.T) {
	t.Setenv("CI", "")
	var skipped bool
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		handlertest.Load(t, "testdata/missing.wasm")
	})
	if !skipped {
		t.Error("Load of a missing module did not skip the test")
	}
}
