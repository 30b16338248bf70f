package gitsource_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/gitsource"
)

// env is a fake GitLab with repositories, a runner's clone cache, and a
// client that takes jobs as a runner.
type env struct {
	t      *testing.T
	srv    *gitlabtest.Server
	client *gitlab.Client
	cache  *gitsource.Cache
	cached string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := gitlabtest.NewServer()
	t.Cleanup(srv.Close)
	client, err := gitlab.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	return &env{t: t, srv: srv, client: client, cache: gitsource.NewCache(dir, 0), cached: dir}
}

// take enqueues b and takes it as the runner: its token is then valid.
func (e *env) take(b *gitlabtest.JobBuilder) *gitlab.Job {
	e.t.Helper()
	id := e.srv.Enqueue(b)
	res, err := e.client.RequestJob(context.Background(), gitlab.JobRequest{Token: e.srv.RunnerToken})
	if err != nil || res.Job == nil || res.Job.ID != id {
		e.t.Fatalf("taking job %d: %v %v", id, res.Job, err)
	}
	return res.Job
}

// logger collects the job log.
type logger struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logger) Printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", a...)
}

func (l *logger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// budget is a job's disk and entry limits.
type budget struct {
	mu                   sync.Mutex
	maxBytes, maxEntries int64
	bytes, entries       int64
}

func (b *budget) Take(bytes, entries int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.maxBytes > 0 && b.bytes+bytes > b.maxBytes {
		return errors.New("the disk limit of 1KiB (limits.disk) is used up")
	}
	if b.maxEntries > 0 && b.entries+entries > b.maxEntries {
		return errors.New("the limit of 3 files and directories (limits.files) is used up")
	}
	b.bytes += bytes
	b.entries += entries
	return nil
}

func (b *budget) Give(bytes, entries int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bytes -= bytes
	b.entries -= entries
}

func (b *budget) used() (int64, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes, b.entries
}

// result is what get did.
type result struct {
	dir string
	log string
	err error
	b   *budget
}

// get runs get_sources for p into a new build dir.
func (e *env) get(p *gitlab.Job, b *budget) result {
	e.t.Helper()
	return e.getWith(e.cache, p, b)
}

// getWith is get with another cache.
func (e *env) getWith(cache *gitsource.Cache, p *gitlab.Job, b *budget) result {
	e.t.Helper()
	if b == nil {
		b = &budget{}
	}
	base := e.t.TempDir()
	dir := filepath.Join(base, "build")
	if err := os.Mkdir(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	tmp := filepath.Join(base, "tmp")
	l := &logger{}
	err := cache.Get(context.Background(), gitsource.Job{
		Payload: p, Vars: p.Variables, Dir: dir, Budget: b, Log: l,
		Tmp: func() (string, error) { return tmp, os.MkdirAll(tmp, 0o700) },
	})
	r := result{dir: dir, log: l.String(), err: err, b: b}
	if strings.Contains(r.log, p.Token) || (err != nil && strings.Contains(err.Error(), p.Token)) {
		e.t.Errorf("the job token is in the log or the error:\n%s\n%v", r.log, err)
	}
	return r
}

// must fails the test unless r succeeded.
func (r result) must(t *testing.T) result {
	t.Helper()
	if r.err != nil {
		t.Fatalf("get: %v\n%s", r.err, r.log)
	}
	return r
}

// files lists the build dir: path -> content, "-> target" for links, "/"
// for dirs.
func (r result) files(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(r.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.dir, p)
		if rel == "." {
			return nil
		}
		switch {
		case d.Type()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[rel] = "-> " + target
		case d.IsDir():
			out[rel] = "/"
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// contains checks that log has each of want, in order.
func contains(t *testing.T, log string, want ...string) {
	t.Helper()
	rest := log
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("log lacks %q (in order) in:\n%s", w, log)
			return
		}
		rest = rest[i+len(w):]
	}
}
