package engine_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/wasmrunner/wasmrunner/engine"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// echoHandler prints each script line, as a tiny shell would.
type echoHandler struct{ job *engine.Job }

func (h echoHandler) Step(ctx context.Context, script []string, phase engine.Phase) error {
	for _, line := range script {
		if line == "fail" {
			return engine.Exit(1)
		}
		h.job.Println(strings.TrimPrefix(line, "echo "))
	}
	return nil
}

func (h echoHandler) Cleanup(context.Context) {}

// A runner with a Go handler, against the fake GitLab.
func Example() {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	id := srv.Enqueue(gitlabtest.NewJob("greet").Script("echo hello", "echo world"))

	client, err := gitlab.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	builds, err := os.MkdirTemp("", "builds")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(builds)
	runner, err := engine.New(engine.Config{
		Client:    client,
		Token:     srv.RunnerToken,
		BuildsDir: builds,
		Handler: func(ctx context.Context, job *engine.Job) (engine.Handler, error) {
			return echoHandler{job: job}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	go runner.Run(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := srv.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed)
	if err != nil {
		log.Fatal(err)
	}
	_ = runner.Shutdown(ctx)

	fmt.Println("state:", rec.State)
	for _, line := range strings.Split(string(rec.Trace), "\n") {
		if line == "hello" || line == "world" {
			fmt.Println("log:", line)
		}
	}
	// Output:
	// state: success
	// log: hello
	// log: world
}

// labHandler logs through the job's logger and through library code
// that only knows log/slog.
type labHandler struct{ job *engine.Job }

func (h labHandler) Step(ctx context.Context, script []string, phase engine.Phase) error {
	h.job.Logger().Info("submitting", "lab", "hw-7")
	waitForLab(ctx, "hw-7")
	return nil
}

func (h labHandler) Cleanup(context.Context) {}

// waitForLab stands for a library: it logs with the default logger and
// the context it is given, and knows nothing of jobs.
func waitForLab(ctx context.Context, lab string) {
	slog.InfoContext(ctx, "lab finished", "lab", lab, "result", "pass")
}

// Handler code and the libraries it calls log with log/slog into the
// job's log: Job.Logger, and the default logger when its handler is
// NewLogHandler (records logged with a job's context go to that job;
// others go to the operator's handler).
func ExampleNewLogHandler() {
	slog.SetDefault(slog.New(engine.NewLogHandler(slog.NewTextHandler(os.Stderr, nil))))

	srv := gitlabtest.NewServer()
	defer srv.Close()
	id := srv.Enqueue(gitlabtest.NewJob("test-board"))

	client, err := gitlab.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	builds, err := os.MkdirTemp("", "builds")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(builds)
	runner, err := engine.New(engine.Config{
		Client:    client,
		Token:     srv.RunnerToken,
		BuildsDir: builds,
		Handler: func(ctx context.Context, job *engine.Job) (engine.Handler, error) {
			return labHandler{job: job}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	go runner.Run(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := srv.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed)
	if err != nil {
		log.Fatal(err)
	}
	_ = runner.Shutdown(ctx)

	ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
	for _, line := range strings.Split(string(rec.Trace), "\n") {
		if line = ansi.ReplaceAllString(line, ""); strings.HasPrefix(line, "INFO") {
			fmt.Println(line)
		}
	}
	// Output:
	// INFO submitting lab=hw-7
	// INFO lab finished lab=hw-7 result=pass
}
