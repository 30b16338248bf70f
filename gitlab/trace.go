package gitlab

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxPatchSize is the most trace bytes to send in one PATCH.
const MaxPatchSize = 1 << 20

// PatchResult is GitLab's answer to a trace patch.
type PatchResult struct {
	// Accepted is true for a 202 and false for a 416 (the offset did not
	// match GitLab's trace: resend from Offset).
	Accepted bool
	// Offset is GitLab's trace size after the reply: where the next patch
	// starts, or where to resend from after a 416.
	Offset int64
	// UpdateInterval is X-GitLab-Trace-Update-Interval, or zero.
	UpdateInterval time.Duration
	// JobStatus is the Job-Status reply header: "running", "canceling"
	// (stop the script, run after_script, then finish), "canceled" or
	// "failed" (abort the job), or "".
	JobStatus JobState
}

// PatchTrace appends content at offset to the job's trace (PATCH
// jobs/:id/trace). content must not exceed [MaxPatchSize]; empty content
// sends nothing. A 202 or 416 is a result; a 403 (the job is no longer
// running) or 404 (stop patching) is an error matching [ErrForbidden] or
// [ErrNotFound], and its result still carries the Job-Status.
func (c *Client) PatchTrace(ctx context.Context, jobID int64, jobToken string, offset int64, content []byte) (PatchResult, error) {
	if len(content) == 0 {
		return PatchResult{Accepted: true, Offset: offset}, nil
	}
	if len(content) > MaxPatchSize {
		return PatchResult{}, fmt.Errorf("gitlab: patch trace of job %d: %d bytes exceed the %d-byte patch limit", jobID, len(content), MaxPatchSize)
	}
	if offset < 0 {
		return PatchResult{}, fmt.Errorf("gitlab: patch trace of job %d: negative offset %d", jobID, offset)
	}
	end := offset + int64(len(content)) - 1
	cl := call{
		op:     fmt.Sprintf("patch trace of job %d", jobID),
		method: http.MethodPatch,
		target: "jobs/" + strconv.FormatInt(jobID, 10) + "/trace",
		header: http.Header{
			"Job-Token":     {jobToken},
			"Content-Range": {fmt.Sprintf("%d-%d", offset, end)},
		},
		body:    bytesBody(content, "text/plain"),
		secrets: []string{jobToken},
	}
	resp, attempts, err := c.send(ctx, cl)
	if err != nil {
		return PatchResult{}, err
	}
	res := PatchResult{
		UpdateInterval: updateInterval(resp.Header),
		JobStatus:      JobState(resp.Header.Get("Job-Status")),
	}
	rangeEnd, hasRange := parseRangeEnd(resp.Header.Get("Range"))
	switch resp.StatusCode {
	case http.StatusAccepted:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		res.Accepted = true
		res.Offset = end + 1
		if hasRange {
			res.Offset = rangeEnd
		}
		return res, nil
	case http.StatusRequestedRangeNotSatisfiable:
		if !hasRange {
			return res, c.statusError(cl, resp, attempts)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		res.Offset = rangeEnd
		return res, nil
	default:
		return res, c.statusError(cl, resp, attempts)
	}
}

// parseRangeEnd reads GitLab's "0-N" Range reply header and returns N, the
// size of the trace GitLab holds.
func parseRangeEnd(v string) (int64, bool) {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "bytes=")
	v = strings.TrimPrefix(v, "bytes ")
	start, end, ok := strings.Cut(v, "-")
	if !ok || strings.TrimSpace(start) != "0" {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(end), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
