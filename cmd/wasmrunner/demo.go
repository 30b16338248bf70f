package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run one job through the engine against a fake GitLab on 127.0.0.1",
		Description: `demo starts the project's fake GitLab on a loopback port, queues a job that
depends on an earlier job's artifacts, and runs it with the real client and
engine and a small Go handler: the engine takes the job, extracts the
dependency's artifacts into the build dir, runs script and after_script,
streams the masked log (through an injected 502 that the client retries),
uploads the artifacts and sends the final update with the trace checksum.
It then prints the job as the fake GitLab stored it. WebAssembly handlers
come in a later release.

Example:
   wasmrunner demo
   wasmrunner --log-level debug demo`,
		Action: func(c *cli.Context) error {
			logger, err := loggerFor(c)
			if err != nil {
				return err
			}
			return runDemo(c.Context, c.App.Writer, logger)
		},
	}
}

// runDemo runs one job through the engine and the fake GitLab and prints
// what GitLab stored.
func runDemo(ctx context.Context, out io.Writer, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	srv := gitlabtest.NewServer(gitlabtest.WithTraceUpdateInterval(time.Second))
	defer srv.Close()
	fmt.Fprintf(out, "fake GitLab listening at %s\n", srv.URL)

	prep := srv.AddFinishedJob("prepare", gitlabtest.Zip(map[string]string{"greeting.txt": "hello from the prepare job\n"}))
	id := srv.Enqueue(gitlabtest.NewJob("build").
		Stage("build").
		MaskedVar("DEPLOY_PASSWORD", "s3cr3t-value").
		Script(`echo "building $CI_PROJECT_NAME with password $DEPLOY_PASSWORD"`, "make all").
		AfterScript("echo cleaning up").
		Artifacts(gitlab.ArtifactSpec{Name: "build-output", Paths: []string{"out/"}, ExpireIn: "1 day"}).
		DependsOn(prep))

	client, err := gitlab.New(srv.URL, gitlab.WithLogger(logger), gitlab.WithRetryPolicy(gitlab.RetryPolicy{
		MaxAttempts: 5, MaxElapsed: 30 * time.Second,
		InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, AttemptTimeout: 30 * time.Second,
	}))
	if err != nil {
		return err
	}
	builds, err := os.MkdirTemp("", "wasmrunner-demo-builds-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(builds)

	// A 502 on the first trace patch shows the client's retry.
	srv.FailNext(gitlabtest.EndpointTrace, 502, 1)
	runner, err := engine.New(engine.Config{
		Client:         client,
		Token:          srv.RunnerToken,
		SystemID:       "r_demo00000000",
		Info:           gitlab.RunnerMeta{Version: version, Executor: "wasm", Features: gitlab.DefaultFeatures()},
		BuildsDir:      builds,
		UpdateInterval: 200 * time.Millisecond,
		Handler: func(_ context.Context, job *engine.Job) (engine.Handler, error) {
			return demoHandler{job: job}, nil
		},
		Logger: logger,
	})
	if err != nil {
		return err
	}
	go func() { _ = runner.Run(ctx) }()
	rec, err := srv.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed, gitlab.StateCanceled)
	if err != nil {
		return err
	}
	if err := runner.Shutdown(ctx); err != nil {
		return err
	}

	fmt.Fprintf(out, "\nGitLab's view of job %d: state %s\n--- trace ---\n%s--- artifacts ---\n", rec.ID, rec.State, rec.Trace)
	for _, a := range rec.Artifacts {
		files, err := a.ZipFiles()
		if err != nil {
			return err
		}
		for name, data := range files {
			fmt.Fprintf(out, "%s: %s (%d bytes)\n", a.Filename, name, len(data))
		}
	}
	fmt.Fprintln(out, "--- requests ---")
	for _, r := range srv.Requests() {
		fault := ""
		if r.Fault != "" {
			fault = " (injected: " + r.Fault + ")"
		}
		fmt.Fprintf(out, "%-5s %-32s %d%s\n", r.Method, r.Path, r.Status, fault)
	}
	if rec.State != gitlab.StateSuccess {
		return fmt.Errorf("job %d ended %s (%s)", rec.ID, rec.State, rec.FailureReason)
	}
	return nil
}

// demoHandler runs "echo" lines and writes out/result.txt, reading the
// dependency's greeting from the build dir.
type demoHandler struct{ job *engine.Job }

func (h demoHandler) Step(ctx context.Context, script []string, phase engine.Phase) error {
	for _, line := range script {
		h.job.Printf("\x1b[32;1m$ %s\x1b[0;m", line)
		switch {
		case strings.HasPrefix(line, "echo "):
			h.job.Println(os.Expand(strings.Trim(strings.TrimPrefix(line, "echo "), `"`), func(k string) string {
				v, _ := h.job.Variable(k)
				return v.Value
			}))
		case line == "make all":
			greeting, err := os.ReadFile(filepath.Join(h.job.BuildDir(), "greeting.txt"))
			if err != nil {
				return err
			}
			h.job.Printf("dependency says: %s", strings.TrimSpace(string(greeting)))
			if err := os.MkdirAll(filepath.Join(h.job.BuildDir(), "out"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(h.job.BuildDir(), "out", "result.txt"), []byte("built by the demo\n"), 0o644); err != nil {
				return err
			}
		default:
			h.job.Printf("demo: %s: command not found", line)
			return engine.Exit(127)
		}
	}
	return nil
}

func (demoHandler) Cleanup(context.Context) {}
