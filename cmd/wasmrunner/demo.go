package main

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "talk to a fake GitLab on 127.0.0.1 as a runner does, and show what GitLab saw",
		Description: `demo starts the project's fake GitLab on a loopback port, queues a job that
depends on an earlier job's artifacts, and plays the runner's side of the
protocol with the real client: request the job, download the dependency's
artifacts, stream the trace (through an injected 502 that the client retries),
upload an artifact and send the final update with the trace checksum. It
then prints the job as the fake GitLab stored it. Job execution itself (the
engine and WebAssembly handlers) comes in later releases.

Example:
   wasmrunner demo`,
		Action: func(c *cli.Context) error {
			logger, err := newLogger(c.App.ErrWriter, c.String("log-level"))
			if err != nil {
				return err
			}
			return runDemo(c.Context, c.App.Writer, gitlab.WithLogger(logger))
		},
	}
}

// runDemo plays one job through the fake GitLab and prints the result.
func runDemo(ctx context.Context, out io.Writer, opts ...gitlab.Option) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	srv := gitlabtest.NewServer(gitlabtest.WithTraceUpdateInterval(time.Second))
	defer srv.Close()
	fmt.Fprintf(out, "fake GitLab listening at %s\n", srv.URL)

	depZip, err := zipOf(map[string]string{"greeting.txt": "hello from the prepare job\n"})
	if err != nil {
		return err
	}
	prep := srv.AddFinishedJob("prepare", depZip)
	id := srv.Enqueue(gitlabtest.NewJob("build").
		Stage("build").
		MaskedVar("DEPLOY_PASSWORD", "s3cr3t-value").
		Script(`echo "building $CI_PROJECT_NAME"`, "make all").
		AfterScript("echo cleaning up").
		Artifacts(gitlab.ArtifactSpec{Name: "build-output", Paths: []string{"out/"}, ExpireIn: "1 day"}).
		DependsOn(prep))

	client, err := gitlab.New(srv.URL, append([]gitlab.Option{gitlab.WithRetryPolicy(gitlab.RetryPolicy{
		MaxAttempts: 5, MaxElapsed: 30 * time.Second,
		InitialInterval: 100 * time.Millisecond, MaxInterval: time.Second, AttemptTimeout: 30 * time.Second,
	})}, opts...)...)
	if err != nil {
		return err
	}

	res, err := client.RequestJob(ctx, gitlab.JobRequest{
		Token:    srv.RunnerToken,
		SystemID: "r_demo00000000",
		Info: gitlab.RunnerMeta{
			Name: "wasmrunner", Version: version, Platform: runtime.GOOS, Architecture: runtime.GOARCH,
			Executor: "wasm", Features: gitlab.DefaultFeatures(),
		},
	})
	if err != nil {
		return fmt.Errorf("requesting a job: %w", err)
	}
	if res.Job == nil {
		return fmt.Errorf("the fake GitLab offered no job")
	}
	job := res.Job
	fmt.Fprintf(out, "got job %d %q (stage %s, %d variables, timeout %s)\n",
		job.ID, job.JobInfo.Name, job.JobInfo.Stage, len(job.Variables), job.Timeout())

	var trace bytes.Buffer
	fmt.Fprintf(&trace, "Running with wasmrunner %s\n", version)
	for _, dep := range job.Dependencies {
		var buf bytes.Buffer
		n, err := client.DownloadArtifact(ctx, dep.ID, dep.Token, &buf)
		if err != nil {
			return fmt.Errorf("downloading artifacts of %s: %w", dep.Name, err)
		}
		names, err := zipNames(buf.Bytes())
		if err != nil {
			return fmt.Errorf("artifacts of %s: %w", dep.Name, err)
		}
		fmt.Fprintf(&trace, "Downloaded artifacts of %s (%d bytes): %s\n", dep.Name, n, strings.Join(names, ", "))
	}
	for _, step := range job.Steps {
		for _, line := range step.Script {
			fmt.Fprintf(&trace, "\x1b[32;1m$ %s\x1b[0m\n", line)
		}
	}

	// A 502 on the first patch shows the client's retry.
	srv.FailNext(gitlabtest.EndpointTrace, 502, 1)
	p, err := client.PatchTrace(ctx, job.ID, job.Token, 0, trace.Bytes())
	if err != nil {
		return fmt.Errorf("sending the trace: %w", err)
	}
	fmt.Fprintf(out, "trace accepted up to byte %d, job status %q, update interval %s\n", p.Offset, p.JobStatus, p.UpdateInterval)

	artifact, err := zipOf(map[string]string{"out/result.txt": "built by the demo\n"})
	if err != nil {
		return err
	}
	if err := client.UploadArtifact(ctx, job.ID, job.Token,
		gitlab.ArtifactUpload{Name: job.Artifacts[0].Name, ExpireIn: job.Artifacts[0].ExpireIn},
		bytes.NewReader(artifact), int64(len(artifact))); err != nil {
		return fmt.Errorf("uploading artifacts: %w", err)
	}

	u, err := client.UpdateJob(ctx, job.ID, gitlab.UpdateJobRequest{
		Token:  job.Token,
		State:  gitlab.StateSuccess,
		Output: gitlab.NewJobOutput(crc32.ChecksumIEEE(trace.Bytes()), int64(trace.Len())),
	})
	if err != nil {
		return fmt.Errorf("finishing the job: %w", err)
	}
	if !u.Done() {
		return fmt.Errorf("finishing the job: GitLab answered %d", u.StatusCode)
	}

	rec := srv.Job(job.ID)
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
	if id != job.ID {
		return fmt.Errorf("expected job %d, got %d", id, job.ID)
	}
	return nil
}

func zipOf(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(filepath.ToSlash(name))
		if err != nil {
			return nil, err
		}
		if _, err := io.WriteString(w, content); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func zipNames(data []byte) ([]string, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return names, nil
}
