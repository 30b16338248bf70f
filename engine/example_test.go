package engine_test

import (
	"context"
	"fmt"
	"log"
	"os"
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
