package adversarial_test

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// TestBaselineFootprint runs ordinary jobs of both tenants, 8 at once,
// under the caps every case uses, and reports the runner's peak address
// space: the cap (-adversarial.as) must leave room for normal operation,
// or every case would fail for the wrong reason.
func TestBaselineFootprint(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigConfig{attacker: tenant{modules: map[string][]byte{"hostile.wasm": guest(t, "hostile")}, concurrency: 4},
		canary: tenant{concurrency: 4}})
	var jobs []int64
	for i := range 4 {
		jobs = append(jobs, r.srv.Enqueue(r.job(fmt.Sprintf("ordinary-%d", i), "hostile",
			"echo ordinary work", "write out.bin 4000000", "entries 100", "sleepms 1500", "log 100000")))
	}
	var canaries []int64
	for range 4 {
		canaries = append(canaries, r.canaryJob("sleep 1.5"))
	}
	for _, id := range jobs {
		if rec := r.mustFinish(id, 60e9); rec.State != gitlab.StateSuccess {
			r.errorf("ordinary job %d: %s (%s)\n%s", id, rec.State, rec.FailureReason, traceText(rec))
		}
	}
	for _, id := range canaries {
		r.checkCanary(id, 60e9)
	}
	peak, err := r.vmPeak()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("runner's peak address space with 8 ordinary jobs at once: %d MiB (cap %d MiB)", peak>>20, *asLimitMiB)
	r.alive()
	r.stop(syscall.SIGQUIT)
}
