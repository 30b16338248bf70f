package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/ocisource/ocitest"
	"github.com/wasmrunner/wasmrunner/internal/syncbuf"
)

// TestServeReplicasFollowATag: two replicas of one runner (two serves,
// each with its own config file, caches, build dirs and listen address, as
// two pods of the Helm chart; one token, one GitLab) whose handlers are a
// tag of one registry. A new version pushed under the tag reaches both,
// without a restart, within a few pull intervals: both say they serve the
// new digest, and the jobs after it run the new version, whichever replica
// takes them. (The runner names differ only because the two share this
// process's cache dir, which pods do not.)
func TestServeReplicasFollowATag(t *testing.T) {
	reg := ocitest.New(t)
	tag := reg.Ref("ci/handlers:stable")
	d1 := pushCLI(t, shellDir(t, manifestV1), tag)
	gl := gitlabtest.NewServer()
	defer gl.Close()

	type replica struct {
		name, addr string
		sigs       chan os.Signal
		done       chan error
		log        *syncbuf.Buffer
	}
	var replicas []*replica
	for i := range 2 {
		r := &replica{name: fmt.Sprintf("replica-%d", i), addr: freeAddr(t), sigs: make(chan os.Signal, 2),
			done: make(chan error, 1), log: &syncbuf.Buffer{}}
		cfg := filepath.Join(t.TempDir(), "config.toml")
		content := fmt.Sprintf("pull_interval = \"100ms\"\nlisten = %q\ntoken_rotation = false\n\n"+
			"[[runners]]\nname = %q\nurl = %q\ntoken = %q\nmodules = %q\ncheck_interval = \"20ms\"\n",
			r.addr, r.name, gl.URL, gl.RunnerToken, tag)
		if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		base := serveOptions{buildsDir: t.TempDir(), concurrency: 2, checkInterval: 20 * time.Millisecond,
			shutdownTimeout: 10 * time.Second, reloadInterval: time.Second, outputLimit: 1 << 20, updateInterval: 50 * time.Millisecond}
		logger := slog.New(slog.NewJSONHandler(r.log, nil))
		go func() { r.done <- serveSet(context.Background(), configSet(cfg, base), logger, r.sigs) }()
		replicas = append(replicas, r)
	}
	stopped := false
	defer func() {
		if stopped {
			return
		}
		for _, r := range replicas {
			r.sigs <- syscall.SIGTERM
		}
		for _, r := range replicas {
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				t.Errorf("%s did not stop", r.name)
			}
		}
	}()

	serves := func(r *replica, d fmt.Stringer) bool {
		resp, err := http.Get("http://" + r.addr + "/metrics")
		if err != nil {
			return false // not listening yet
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), fmt.Sprintf(`wasmrunner_modules_source_digest_info{digest=%q,runner=%q} 1`, d, r.name))
	}
	runJobs := func(n int, prefix string) []string {
		t.Helper()
		var ids []int64
		for i := range n {
			ids = append(ids, gl.Enqueue(versionJob(fmt.Sprintf("%s-%d", prefix, i), false)))
		}
		var versions []string
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			rec, err := gl.WaitForState(ctx, id, gitlab.StateSuccess, gitlab.StateFailed)
			cancel()
			if err != nil || rec.State != gitlab.StateSuccess {
				t.Fatalf("job %d: %s %v\n%s", id, rec.State, err, rec.Trace)
			}
			versions = append(versions, versionOf(rec.Trace))
		}
		return versions
	}

	for _, r := range replicas {
		eventually(t, r.name+" serving the first version", func() bool { return serves(r, d1) })
	}
	for _, v := range runJobs(4, "before") {
		if v != "one" {
			t.Fatalf("a job before the push ran version %q", v)
		}
	}

	logged := make([]int, len(replicas))
	for i, r := range replicas {
		logged[i] = len(r.log.String())
	}
	d2 := pushCLI(t, shellDir(t, manifestV2), tag)
	for i, r := range replicas {
		eventually(t, r.name+" serving the pushed version", func() bool { return serves(r, d2) && !serves(r, d1) })
		// The digest is exported once pulled; its handlers serve new
		// jobs once the registry has loaded them.
		eventually(t, r.name+" loading the pushed handlers", func() bool {
			for _, line := range strings.Split(r.log.String()[logged[i]:], "\n") {
				if strings.Contains(line, `"msg":"handler replaced"`) && strings.Contains(line, `"module":"shell"`) {
					return true
				}
			}
			return false
		})
	}
	for _, v := range runJobs(6, "after") {
		if v != "two" {
			t.Errorf("a job after both replicas swapped ran version %q", v)
		}
	}
	for _, r := range replicas {
		select {
		case err := <-r.done:
			t.Fatalf("%s stopped: %v\n%s", r.name, err, r.log.String())
		default:
		}
		if !strings.Contains(r.log.String(), d2.String()) {
			t.Errorf("%s's log does not name the pushed digest", r.name)
		}
	}

	// Each drains on SIGQUIT, as a pod being replaced.
	stopped = true
	for _, r := range replicas {
		r.sigs <- syscall.SIGQUIT
	}
	for _, r := range replicas {
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("%s after SIGQUIT: %v", r.name, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop after SIGQUIT\n%s", r.name, r.log.String())
		}
	}
}
