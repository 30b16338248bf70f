package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/fleet"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
	"github.com/wasmrunner/wasmrunner/internal/journal"
	"github.com/wasmrunner/wasmrunner/internal/syncbuf"
)

// serveProcess is `wasmrunner serve` run as a child process (this test
// binary as wasmrunner), so that a test can kill it with SIGKILL.
type serveProcess struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan struct{}
}

// startServeProcess starts serve with args (after serve's defaults for
// tests) and waits until it is ready.
func startServeProcess(t *testing.T, args ...string) *serveProcess {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := &serveProcess{t: t, log: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(self, append([]string{"--log-format", "json", "serve", "--listen", addr, "--check-interval", "20ms",
		"--token-rotation=false"}, args...)...)
	// A cache dir of its own, as a pod has: processes compiling into one
	// compilation cache at once is not what this is about.
	p.cmd.Env = append(os.Environ(), "WASMRUNNER_TEST_AS_CLI=1", "XDG_CACHE_HOME="+t.TempDir())
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("serve exited before it was ready\n%s", p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not become ready\n%s", p.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL, as an OOM kill does, and waits.
func (p *serveProcess) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop ends the process with SIGTERM (its jobs are aborted and reported)
// and waits.
func (p *serveProcess) stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.t.Errorf("serve did not stop after SIGTERM\n%s", p.log.String())
		p.kill()
	}
}

// journaled returns the jobs in a runner's journal.
func journaled(t *testing.T, r fleet.Runner) []int64 {
	t.Helper()
	entries, err := journal.Entries(fleet.JournalDir(r))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, e := range entries {
		ids = append(ids, e.JobID)
	}
	return ids
}

func jobState(srv *gitlabtest.Server, id int64) gitlab.JobState { return srv.Job(id).State }

// TestServeKilledMidJob: serve killed with SIGKILL in the middle of jobs
// and started again on the same builds dir reports them to GitLab: a last
// line in their log, failed with runner_system_failure, their journal
// entries gone. Processes sharing the builds dir never touch each other's
// jobs: a replica of the same runner (same token, same entry) and a
// process of another runner keep theirs running while the killed one's
// are reported.
func TestServeKilledMidJob(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	other := srv.AddRunner()
	builds, mods := t.TempDir(), shellDir(t, "")
	common := []string{"--url", srv.URL, "--modules", mods, "--builds-dir", builds, "--concurrency", "1"}
	// Runners given by --url and --token are all named "default": the
	// three processes share one journal dir, each in a partition of its
	// own.
	runner := fleet.Runner{Name: "default", URL: srv.URL, BuildsDir: builds}
	var ids []int64
	for i := range 2 {
		ids = append(ids, srv.Enqueue(gitlabtest.NewJob(fmt.Sprintf("sleeper-%d", i)).Image("shell").Script("echo started", "sleep 600").ForRunner(srv.RunnerToken)))
	}
	otherID := srv.Enqueue(gitlabtest.NewJob("other-runner").Image("shell").Script("echo started", "sleep 600").ForRunner(other))

	replica1 := startServeProcess(t, append(common, "--token", srv.RunnerToken)...)
	replica2 := startServeProcess(t, append(common, "--token", srv.RunnerToken)...)
	otherProc := startServeProcess(t, append(common, "--token", other)...)
	// Each job's log has reached GitLab (an update interval, 3 s) when
	// the process dies: the last line goes after it, whatever offset the
	// journal had.
	started := func(id int64) bool {
		rec := srv.Job(id)
		return rec.State == gitlab.StateRunning && strings.Contains(string(rec.Trace), "started")
	}
	deadline := time.Now().Add(time.Minute)
	for !(started(ids[0]) && started(ids[1]) && started(otherID) && len(journaled(t, runner)) == 3) {
		if time.Now().After(deadline) {
			t.Fatalf("jobs %s %s %s, journal %v\n%s\n%s\n%s", jobState(srv, ids[0]), jobState(srv, ids[1]), jobState(srv, otherID),
				journaled(t, runner), replica1.log.String(), replica2.log.String(), otherProc.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Kill the second replica and start it again: its job, and only its,
	// is reported; the first replica's goes on.
	replica2.kill()
	restarted := startServeProcess(t, append(common, "--token", srv.RunnerToken)...)
	var lost, kept int64
	eventually(t, "one of the runner's jobs reported failed", func() bool {
		for i, id := range ids {
			if jobState(srv, id) == gitlab.StateFailed {
				lost, kept = id, ids[1-i]
				return true
			}
		}
		return false
	})
	rec := srv.Job(lost)
	if rec.FailureReason != gitlab.RunnerSystemFailure {
		t.Errorf("lost job: failure reason %q, want runner_system_failure", rec.FailureReason)
	}
	log := string(rec.Trace)
	if !strings.Contains(log, "the runner stopped unexpectedly while it ran this job") || !strings.HasSuffix(log, "The job was lost.\x1b[0;m\n") {
		t.Errorf("lost job's log does not end with the lost line:\n%s", log)
	}
	if got := strings.Count(log, "The job was lost."); got != 1 {
		t.Errorf("the lost line is in the log %d times", got)
	}
	// What the killed process had sent stays in front of it.
	if i, j := strings.Index(log, "$ sleep 600"), strings.Index(log, "stopped unexpectedly"); i < 0 || i > j {
		t.Errorf("the log the killed process had sent is not kept before the last line:\n%s", log)
	}
	eventually(t, "the lost job's entry removed", func() bool { return len(journaled(t, runner)) == 2 })
	if jobState(srv, kept) != gitlab.StateRunning || jobState(srv, otherID) != gitlab.StateRunning {
		t.Fatalf("another process's job was touched: replica's %s, other runner's %s", jobState(srv, kept), jobState(srv, otherID))
	}

	// Kill the other runner's process and start it again.
	otherProc.kill()
	otherAgain := startServeProcess(t, append(common, "--token", other)...)
	r, err := srv.WaitForState(ctxFor(t, time.Minute), otherID, gitlab.StateFailed)
	if err != nil || r.FailureReason != gitlab.RunnerSystemFailure || !strings.Contains(string(r.Trace), "The job was lost.") {
		t.Fatalf("other runner's job: %s %s %v\n%s", r.State, r.FailureReason, err, r.Trace)
	}
	if jobState(srv, kept) != gitlab.StateRunning {
		t.Fatalf("the first replica's job: %s", jobState(srv, kept))
	}
	eventually(t, "the other runner's lost job's entry removed", func() bool { return len(journaled(t, runner)) == 1 })

	// A clean stop reports the running job (aborted) and leaves no entry.
	replica1.stop()
	r, err = srv.WaitForState(ctxFor(t, time.Minute), kept, gitlab.StateFailed)
	if err != nil || strings.Contains(string(r.Trace), "The job was lost.") {
		t.Errorf("the first replica's job after SIGTERM: %s %v\n%s", r.State, err, r.Trace)
	}
	restarted.stop()
	otherAgain.stop()
	if m := journaled(t, runner); len(m) != 0 {
		t.Errorf("entries left after every process stopped: %v", m)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// smallDisk mounts a tmpfs of size bytes on a new dir: a disk that really
// fills up. It needs root (CAP_SYS_ADMIN); the test is skipped without.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Skipf("mounting a small tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// TestServeDiskFull: serve on a builds dir whose disk really fills up (a
// 2 MiB tmpfs). A job whose script fills it fails with
// runner_system_failure and a log saying the disk is full, and the
// runner keeps serving: the next job succeeds. With the disk full
// (something else filled it), a job that writes fails the same way; a
// process that starts then cannot make its journal's first slot, and its
// job is not run; once there is room again, jobs succeed.
func TestServeDiskFull(t *testing.T) {
	builds := smallDisk(t, 2<<20)
	srv := gitlabtest.NewServer()
	defer srv.Close()
	other := srv.AddRunner()
	start := func(token string) *serveProcess {
		return startServeProcess(t, "--url", srv.URL, "--token", token, "--modules", shellDir(t, ""),
			"--builds-dir", builds, "--concurrency", "1")
	}
	p := start(srv.RunnerToken)
	run := func(token, name string, script ...string) gitlabtest.JobRecord {
		t.Helper()
		id := srv.Enqueue(gitlabtest.NewJob(name).Image("shell").Script(script...).ForRunner(token))
		rec, err := srv.WaitForState(ctxFor(t, time.Minute), id, gitlab.StateSuccess, gitlab.StateFailed)
		if err != nil {
			t.Fatalf("job %s: %v\n%s", name, err, p.log.String())
		}
		return rec
	}
	wantDiskFull := func(rec gitlabtest.JobRecord, more ...string) {
		t.Helper()
		if rec.State != gitlab.StateFailed || rec.FailureReason != gitlab.RunnerSystemFailure {
			t.Errorf("job %s: %s %s, want failed runner_system_failure\n%s", rec.Name, rec.State, rec.FailureReason, rec.Trace)
		}
		for _, w := range append([]string{"the disk under the runner's builds dir is full"}, more...) {
			if !strings.Contains(string(rec.Trace), w) {
				t.Errorf("job %s: log lacks %q:\n%s", rec.Name, w, rec.Trace)
			}
		}
	}
	const guestWarning = "WARNING: the disk under the runner's builds dir is full (no space left on device)"

	// The guest fills the disk: its writes fail (EIO in the guest), the
	// job log says why, and the failed step is the machine's fault.
	rec := run(srv.RunnerToken, "fills-the-disk", "seq 1 2000000 > big.txt", "echo not reached")
	wantDiskFull(rec, guestWarning)
	if strings.Contains(string(rec.Trace), "\nnot reached") {
		t.Errorf("the script went on after its write failed:\n%s", rec.Trace)
	}
	if rec := run(srv.RunnerToken, "fits", "echo small > small.txt", "cat small.txt"); rec.State != gitlab.StateSuccess {
		t.Fatalf("a job after the disk was freed: %s %s\n%s", rec.State, rec.FailureReason, rec.Trace)
	}

	// Something else fills the disk.
	filler := filepath.Join(builds, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{64 << 10, 4 << 10, 1} {
		for err == nil {
			_, err = f.Write(make([]byte, chunk))
		}
		if chunk > 1 {
			err = nil
		}
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the disk: %v", err)
	}
	// The running process's journal has its slot already: its jobs run,
	// and one that writes fails as the machine's fault.
	wantDiskFull(run(srv.RunnerToken, "writes", "echo x > out.txt"), guestWarning)
	// A process that starts now cannot journal its jobs: they are not run.
	q := start(other)
	rec = run(other, "no-room", "echo should not run")
	wantDiskFull(rec, "recording the job in the journal of jobs in flight", "no space left on device")
	if strings.Contains(string(rec.Trace), "$ echo should not run") {
		t.Errorf("a job that could not be journaled ran:\n%s", rec.Trace)
	}
	if !strings.Contains(q.log.String(), "the disk under the builds dir is full: a job failed") {
		t.Errorf("the operator log does not say the disk is full:\n%s", q.log.String())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{srv.RunnerToken, other} {
		if rec := run(token, "room-again", "echo ok > ok.txt"); rec.State != gitlab.StateSuccess {
			t.Fatalf("a job once there was room again: %s %s\n%s", rec.State, rec.FailureReason, rec.Trace)
		}
	}
	p.stop()
	q.stop()
	if ids := journaled(t, fleet.Runner{Name: "default", URL: srv.URL, BuildsDir: builds}); len(ids) != 0 {
		t.Errorf("journal entries left: %v", ids)
	}
}

// TestServeGitLabOutage: GitLab goes down (503 to everything) while a
// job runs and ends, and comes back: serve keeps the job's log and sends
// it, and the result, once GitLab is back; nothing twice. (Minutes of
// outage under a simulated clock: engine's TestGitLabOutage.)
func TestServeGitLabOutage(t *testing.T) {
	srv := gitlabtest.NewServer()
	defer srv.Close()
	p := startServeProcess(t, "--url", srv.URL, "--token", srv.RunnerToken, "--modules", shellDir(t, ""),
		"--builds-dir", t.TempDir(), "--concurrency", "1")
	id := srv.Enqueue(gitlabtest.NewJob("through").Image("shell").Script("echo before", "sleep 2", "echo after"))
	eventually(t, "the job running", func() bool { return jobState(srv, id) == gitlab.StateRunning })
	srv.Down()
	time.Sleep(6 * time.Second) // the job ends meanwhile
	if rec := srv.Job(id); rec.State != gitlab.StateRunning {
		t.Fatalf("the job changed while GitLab was down: %s", rec.State)
	}
	srv.Up()
	rec, err := srv.WaitForState(ctxFor(t, 2*time.Minute), id, gitlab.StateSuccess, gitlab.StateFailed)
	if err != nil || rec.State != gitlab.StateSuccess {
		t.Fatalf("after the outage: %s %v\n%s\n%s", rec.State, err, rec.Trace, p.log.String())
	}
	log := string(rec.Trace)
	for _, line := range []string{"\nbefore\n", "\nafter\n", "Job succeeded"} {
		if strings.Count(log, line) != 1 {
			t.Errorf("%q is in GitLab's log %d times:\n%s", line, strings.Count(log, line), log)
		}
	}
	if !strings.Contains(p.log.String(), "GitLab request failed, retrying") {
		t.Errorf("the operator log does not show requests retried:\n%s", p.log.String())
	}
	refused := 0
	for _, r := range srv.Requests() {
		if r.Fault == "down" && strings.HasPrefix(r.Path, fmt.Sprintf("/api/v4/jobs/%d", id)) {
			refused++
		}
	}
	if refused == 0 {
		t.Error("no request of the job reached GitLab while it was down")
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("violations: %v", v)
	}
}
