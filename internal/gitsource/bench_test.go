package gitsource_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/gitsource"
)

// largeRepo makes a repository of 10,000 files (100 directories of 100
// files of about 1 KiB) and 1,000 commits, each changing 10 files.
func largeRepo(b *testing.B, srv *gitlabtest.Server) *gitlabtest.Repo {
	b.Helper()
	repo := srv.NewRepo(7, "group/large")
	content := func(d, f, v int) string {
		return fmt.Sprintf("dir %d file %d version %d\n%s", d, f, v, strings.Repeat(fmt.Sprintf("line of file %d/%d\n", d, f), 48))
	}
	var files []gitlabtest.File
	for d := range 100 {
		for f := range 100 {
			files = append(files, gitlabtest.Text(fmt.Sprintf("d%02d/f%02d.txt", d, f), content(d, f, 0)))
		}
	}
	repo.Commit("main", "initial", files...)
	for c := 1; c < 1000; c++ {
		var changes []gitlabtest.File
		for k := range 10 {
			n := (c*10 + k) * 7919 % 10000
			changes = append(changes, gitlabtest.Text(fmt.Sprintf("d%02d/f%02d.txt", n/100, n%100), content(n/100, n%100, c)))
		}
		repo.Commit("main", fmt.Sprintf("commit %d", c), changes...)
	}
	return repo
}

// benchGet runs get_sources for a new job of repo into a new build dir.
func benchGet(b *testing.B, srv *gitlabtest.Server, client *gitlab.Client, cache *gitsource.Cache, repo *gitlabtest.Repo, vars ...string) {
	b.Helper()
	job := gitlabtest.NewJob("bench").Sources(repo, "main")
	for i := 0; i+1 < len(vars); i += 2 {
		job.Var(vars[i], vars[i+1])
	}
	id := srv.Enqueue(job)
	res, err := client.RequestJob(context.Background(), gitlab.JobRequest{Token: srv.RunnerToken})
	if err != nil || res.Job == nil || res.Job.ID != id {
		b.Fatalf("taking the job: %v", err)
	}
	dir := b.TempDir()
	build := filepath.Join(dir, "build")
	_ = os.Mkdir(build, 0o755)
	l := &logger{}
	err = cache.Get(context.Background(), gitsource.Job{
		Payload: res.Job, Vars: res.Job.Variables, Dir: build, Log: l,
		Tmp: func() (string, error) { return dir, nil },
	})
	if err != nil {
		b.Fatalf("%v\n%s", err, l)
	}
	if _, err := client.UpdateJob(context.Background(), id, gitlab.UpdateJobRequest{Token: res.Job.Token, State: gitlab.StateSuccess}); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	_ = os.RemoveAll(dir)
	b.StartTimer()
}

// serverTime sums how long the fake GitLab took to answer repo's git
// requests since the n-th.
func serverTime(repo *gitlabtest.Repo, n int) time.Duration {
	var d time.Duration
	for _, f := range repo.Fetches()[n:] {
		d += f.Duration
	}
	return d
}

func maxRSS(b *testing.B) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MiB")
	}
}

// BenchmarkLargeRepo: get_sources of a repository of 10,000 files and
// 1,000 commits over the fake GitLab's smart HTTP on loopback: a first
// clone into an empty cache (whole history, and GitLab's default depth
// of 20), and a fetch of one new commit into a warm cache; each with the
// checkout of the 10,000 files into a new build dir. The fake GitLab runs
// in the same process: its pack encoding is in the time and the memory.
func BenchmarkLargeRepo(b *testing.B) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	client, err := gitlab.New(srv.URL)
	if err != nil {
		b.Fatal(err)
	}
	repo := largeRepo(b, srv)
	for _, depth := range []string{"0", "20"} {
		b.Run("clone/depth="+depth, func(b *testing.B) {
			b.ReportAllocs()
			before, ops := len(repo.Fetches()), 0
			for b.Loop() {
				ops++
				benchGet(b, srv, client, gitsource.NewCache(b.TempDir(), 0), repo, "GIT_DEPTH", depth)
			}
			b.ReportMetric(serverTime(repo, before).Seconds()/float64(ops), "server-s/op")
			maxRSS(b)
		})
	}
	for _, depth := range []string{"0", "20"} {
		b.Run("fetch-one-commit/depth="+depth, func(b *testing.B) {
			cache := gitsource.NewCache(b.TempDir(), 0)
			benchGet(b, srv, client, cache, repo, "GIT_DEPTH", depth)
			b.ReportAllocs()
			b.ResetTimer()
			n := 0
			before := len(repo.Fetches())
			for b.Loop() {
				b.StopTimer()
				n++
				repo.Commit("main", "new", gitlabtest.Text(fmt.Sprintf("d00/new%d.txt", n), "new"))
				b.StartTimer()
				benchGet(b, srv, client, cache, repo, "GIT_DEPTH", depth)
			}
			b.ReportMetric(serverTime(repo, before).Seconds()/float64(n), "server-s/op")
			maxRSS(b)
		})
	}
}
