package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/internal/journal"
	"github.com/wasmrunner/wasmrunner/internal/trace"
)

// journalState is the runner's partition of its journal (Config.JournalDir).
type journalState struct {
	mu  sync.Mutex
	j   *journal.Journal
	err error // why it could not be opened, last time it was tried
}

// openJournal opens the runner's partition of the journal. When that
// fails (a full disk, a read-only dir) it is logged and tried again at
// each job, whose recording then fails: a job the runner could not
// report after a crash is not started.
func (r *Runner) openJournal() {
	if r.cfg.JournalDir == "" {
		return
	}
	if _, err := r.currentJournal(); err != nil {
		r.log.Error("the journal of jobs in flight cannot be opened; jobs fail until it can", "dir", r.cfg.JournalDir, "error", err)
	}
}

// currentJournal returns the open journal, opening it if need be.
func (r *Runner) currentJournal() (*journal.Journal, error) {
	js := &r.journal
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.j == nil {
		js.j, js.err = journal.Open(r.cfg.JournalDir)
	}
	return js.j, js.err
}

func (r *Runner) closeJournal() {
	js := &r.journal
	js.mu.Lock()
	defer js.mu.Unlock()
	if js.j != nil {
		_ = js.j.Close()
		js.j = nil
	}
}

// entry is the job's journal entry.
func (jr *jobRun) entry() journal.Entry {
	return journal.Entry{
		JobID: jr.payload.ID, Token: jr.payload.Token, Offset: jr.trace.Sent(),
		Runner: jr.r.cfg.Info.Name, SystemID: jr.r.cfg.SystemID, Name: jr.payload.JobInfo.Name, Started: jr.started,
	}
}

// journalAdd records the job before it starts.
func (jr *jobRun) journalAdd() error {
	if jr.r.cfg.JournalDir == "" {
		return nil
	}
	j, err := jr.r.currentJournal()
	if err != nil {
		return err
	}
	if err := jr.r.hostWrite("journal"); err != nil {
		return err
	}
	if err := j.Add(jr.entry()); err != nil {
		return err
	}
	jr.journaled = j
	return nil
}

// reportingDelay is how long a job's report may take before its journal
// entry is rewritten with how the job ended.
const reportingDelay = time.Second

// journalReporting rewrites the job's entry with how it ended, for the
// report of a crash that would come before GitLab took the job's final
// update, once the report has taken reportingDelay: a report that
// GitLab takes at once (nearly all) costs no second write. The function
// it returns cancels the rewrite, or waits for it if it began.
func (jr *jobRun) journalReporting(state gitlab.JobState, reason gitlab.FailureReason) (stop func()) {
	if jr.journaled == nil {
		return func() {}
	}
	e := jr.entry()
	e.Result = string(state)
	if state == gitlab.StateFailed {
		e.FailureReason = string(reason)
	}
	done := make(chan struct{})
	t := time.AfterFunc(reportingDelay, func() {
		defer close(done)
		e.Offset = jr.trace.Sent()
		if err := jr.journaled.Add(e); err != nil {
			jr.log.Warn("updating the job's journal entry failed", "error", err)
		}
	})
	return func() {
		if !t.Stop() {
			<-done
		}
	}
}

// journalRemove forgets the job once it was reported (or given up).
func (jr *jobRun) journalRemove() {
	if jr.journaled == nil {
		return
	}
	if err := jr.journaled.Remove(jr.payload.ID); err != nil {
		jr.log.Warn("removing the job's journal entry failed", "error", err)
	}
}

// maxRecovering is how many lost jobs are reported at once.
const maxRecovering = 8

// recoverLoop reports the jobs of processes that are gone, at once and
// every RecoverInterval, until ctx ends.
func (r *Runner) recoverLoop(ctx context.Context) {
	if r.cfg.JournalDir == "" {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxRecovering)
	for {
		orphans, err := journal.Orphans(r.cfg.JournalDir)
		if err != nil {
			r.log.Warn("searching the journal for jobs of runners that stopped failed", "dir", r.cfg.JournalDir, "error", err)
		}
		for _, o := range orphans {
			for _, p := range o.Problems {
				r.log.Error("a journal entry cannot be read; its job (if any) cannot be reported", "error", p)
			}
			if len(o.Entries) > 0 {
				r.log.Warn("jobs of a runner process that stopped unexpectedly found in the journal; reporting them to GitLab",
					"jobs", len(o.Entries), "partition", o.Dir())
			}
			var pending sync.WaitGroup
			for _, e := range o.Entries {
				pending.Add(1)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer pending.Done()
					select {
					case sem <- struct{}{}:
					case <-ctx.Done():
						return
					}
					defer func() { <-sem }()
					if r.reportLost(ctx, e) {
						if err := o.Done(e.JobID); err != nil {
							r.log.Warn("removing a journal entry failed", "job", e.JobID, "error", err)
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				pending.Wait()
				o.Close()
			}()
		}
		t := time.NewTimer(r.cfg.RecoverInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// lostLine is the line appended to the log of a job lost in a crash.
func lostLine(e journal.Entry, systemID string) string {
	on := ""
	if systemID != "" {
		on = " (system id " + systemID + ")"
	}
	what := "while it ran this job"
	if e.Result != "" {
		what = "after this job ended (" + e.Result
		if e.FailureReason != "" {
			what += ": " + e.FailureReason
		}
		what += ") but before GitLab accepted its final update; what GitLab did not receive of its log is lost"
	}
	return fmt.Sprintf("\n\x1b[31;1mERROR: Job failed (system failure): the runner stopped unexpectedly %s "+
		"(killed, crashed, or its machine was lost); wasmrunner%s found it in the runner's journal of jobs in flight. The job was lost.\x1b[0;m\n", what, on)
}

// reportLost reports a job a process that is gone left in the journal:
// a last line in its log, then failed with runner_system_failure. It
// retries while GitLab is unreachable or failing, for ReportDeadline or
// until ctx ends, and reports whether the entry can go (reported, or
// GitLab says the job is over).
func (r *Runner) reportLost(ctx context.Context, e journal.Entry) bool {
	log := r.log.With("job", e.JobID, "job_name", e.Name)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReportDeadline)
	defer cancel()
	line := []byte(lostLine(e, r.cfg.SystemID))
	offset, patched := e.Offset, false
	failures := 0
	for {
		err := r.reportLostOnce(ctx, e, line, &offset, &patched)
		switch {
		case err == nil:
			log.Info("job lost when a runner process stopped reported to GitLab as failed (runner_system_failure)")
			return true
		case gitlab.JobGone(err):
			log.Info("job lost when a runner process stopped had already ended in GitLab", "error", err)
			return true
		case ctx.Err() != nil:
			if context.Cause(ctx) == context.DeadlineExceeded {
				log.Error("reporting a job lost when a runner process stopped: GitLab did not take it within the report deadline; giving it up",
					"report_deadline", r.cfg.ReportDeadline, "error", err)
				return true
			}
			return false // stopping: left for the next start
		}
		failures++
		wait := backoffWait(r.cfg.UpdateInterval, r.cfg.MaxBackoff, failures)
		if !trace.Transient(err) && failures >= trace.DefaultMaxFinalAttempts {
			log.Error("reporting a job lost when a runner process stopped failed; giving it up", "error", err)
			return true
		}
		log.Warn("reporting a job lost when a runner process stopped failed; retrying", "error", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// reportLostOnce appends line to the job's log (once: patched says it
// was) at offset, following GitLab's size, then sends the final update.
func (r *Runner) reportLostOnce(ctx context.Context, e journal.Entry, line []byte, offset *int64, patched *bool) error {
	for tries := 0; !*patched; tries++ {
		res, err := r.cfg.Client.PatchTrace(ctx, e.JobID, e.Token, *offset, line)
		if err != nil {
			return err
		}
		if res.Accepted && res.Offset >= *offset+int64(len(line)) {
			*patched = true
			break
		}
		if tries >= 3 {
			return fmt.Errorf("GitLab does not take the job's last log line at byte %d (its size: %d)", *offset, res.Offset)
		}
		*offset = res.Offset // a 416: GitLab has another size
	}
	res, err := r.cfg.Client.UpdateJob(ctx, e.JobID, gitlab.UpdateJobRequest{
		Token: e.Token, State: gitlab.StateFailed, FailureReason: gitlab.RunnerSystemFailure,
	})
	switch {
	case err != nil:
		return err
	case res.Done():
		return nil
	case res.Pending():
		return errors.New("GitLab answered 202: update not complete")
	default:
		return fmt.Errorf("unexpected reply %d to the final update", res.StatusCode)
	}
}
