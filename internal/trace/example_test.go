package trace_test

import (
	"context"
	"fmt"
	"log"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/trace"
)

// Stream a job's log while it runs, then finish the job.
func Example() {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	srv.Enqueue(gitlabtest.NewJob("build"))
	client, err := gitlab.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	res, err := client.RequestJob(ctx, gitlab.JobRequest{Token: srv.RunnerToken})
	if err != nil {
		log.Fatal(err)
	}

	tr := trace.New(client, trace.Config{
		JobID: res.Job.ID,
		Token: res.Job.Token,
		OnStatus: func(s gitlab.JobState) {
			// Tell the engine: stop the script (canceling) or abort.
			fmt.Println("GitLab says:", s)
		},
	})
	tr.Start(ctx)
	fmt.Fprintln(tr, "$ make")
	fmt.Fprintln(tr, "ok")
	if err := tr.Finish(ctx, trace.Final{State: gitlab.StateSuccess}); err != nil {
		log.Fatal(err)
	}
	job := srv.Job(res.Job.ID)
	fmt.Printf("%s %q\n", job.State, job.Trace)
	// Output:
	// success "$ make\nok\n"
}
