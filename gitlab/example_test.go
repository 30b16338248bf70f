package gitlab_test

import (
	"context"
	"fmt"
	"hash/crc32"
	"log"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// A runner's life in four calls: take a job, stream its log, finish it.
func Example() {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	srv.Enqueue(gitlabtest.NewJob("hello").Script("echo hello"))

	ctx := context.Background()
	client, err := gitlab.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	res, err := client.RequestJob(ctx, gitlab.JobRequest{
		Token: srv.RunnerToken,
		Info:  gitlab.RunnerMeta{Name: "example", Features: gitlab.DefaultFeatures()},
	})
	if err != nil {
		log.Fatal(err)
	}
	job := res.Job
	script, _ := job.Step(gitlab.StepScript)
	fmt.Println("job:", job.JobInfo.Name, script.Script)

	trace := []byte("$ echo hello\nhello\n")
	p, err := client.PatchTrace(ctx, job.ID, job.Token, 0, trace)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("trace accepted:", p.Accepted, "offset:", p.Offset, "status:", p.JobStatus)

	u, err := client.UpdateJob(ctx, job.ID, gitlab.UpdateJobRequest{
		Token:  job.Token,
		State:  gitlab.StateSuccess,
		Output: gitlab.NewJobOutput(crc32.ChecksumIEEE(trace), int64(len(trace))),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("final update done:", u.Done(), "state:", srv.Job(job.ID).State)

	// Output:
	// job: hello [echo hello]
	// trace accepted: true offset: 19 status: running
	// final update done: true state: success
}
