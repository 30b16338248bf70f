package gitlab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxJobPayload bounds the size of a job payload the client accepts.
const maxJobPayload = 64 << 20

// JobRequestResult is the outcome of a successful POST jobs/request.
type JobRequestResult struct {
	// Job is the assigned job, or nil when GitLab had none (204).
	Job *Job
	// LastUpdate is the X-GitLab-Last-Update reply header: echo it as
	// JobRequest.LastUpdate in the next request.
	LastUpdate string
}

// RequestJob asks GitLab for a job (POST jobs/request). A 204 reply is a
// result with a nil Job, not an error. A 403 (the runner token is invalid)
// matches [ErrForbidden], a 409 [ErrConflict] (ask again), exhausted
// retries on 5xx [ErrServer] and on network failures [ErrTransport]. A 201
// whose payload cannot be decoded matches [ErrBadPayload]; it still
// carries LastUpdate.
func (c *Client) RequestJob(ctx context.Context, req JobRequest) (JobRequestResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return JobRequestResult{}, fmt.Errorf("gitlab: request job: %w", err)
	}
	cl := call{
		op:      "request job",
		method:  http.MethodPost,
		target:  "jobs/request",
		header:  jsonHeader(),
		body:    bytesBody(body, "application/json"),
		secrets: []string{req.Token},
	}
	resp, attempts, err := c.send(ctx, cl)
	if err != nil {
		return JobRequestResult{}, err
	}
	defer resp.Body.Close()
	res := JobRequestResult{LastUpdate: resp.Header.Get("X-GitLab-Last-Update")}
	switch resp.StatusCode {
	case http.StatusNoContent:
		return res, nil
	case http.StatusCreated:
		data, err := readPayload(resp)
		if err != nil {
			return res, fmt.Errorf("gitlab: request job: %w: reading payload: %s", ErrTransport, redact(err.Error(), req.Token))
		}
		if len(data) > maxJobPayload {
			return res, fmt.Errorf("gitlab: request job: %w: payload larger than %d bytes", ErrBadPayload, maxJobPayload)
		}
		job, err := DecodeJob(data)
		if err != nil {
			return res, fmt.Errorf("gitlab: request job: %w", err)
		}
		res.Job = job
		return res, nil
	default:
		return res, c.statusError(cl, resp, attempts)
	}
}

// readPayload reads a job payload of at most maxJobPayload bytes (one
// more tells it is larger), into a buffer of the size the response
// announces when it does: growing one as it fills was a tenth of the
// allocations of a short job.
func readPayload(resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= maxJobPayload {
		data := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, data); err != nil {
			return nil, err
		}
		return data, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxJobPayload+1))
}

// UpdateResult is GitLab's answer to a job update.
type UpdateResult struct {
	// StatusCode is 200 (done), 202 (accepted, not complete: update again
	// after UpdateInterval) or 412 (the trace failed validation: resend it
	// from offset 0, then update again).
	StatusCode int
	// UpdateInterval is X-GitLab-Trace-Update-Interval, or zero.
	UpdateInterval time.Duration
	// JobStatus is the Job-Status reply header, or "".
	JobStatus JobState
}

// Done reports whether GitLab accepted the update completely.
func (r UpdateResult) Done() bool { return r.StatusCode == http.StatusOK }

// Pending reports a 202: GitLab will complete the update later.
func (r UpdateResult) Pending() bool { return r.StatusCode == http.StatusAccepted }

// ResendTrace reports a 412: GitLab wants the whole trace sent again.
func (r UpdateResult) ResendTrace() bool { return r.StatusCode == http.StatusPreconditionFailed }

// UpdateJob sets the job's state (PUT jobs/:id): "running" as a keep-alive,
// or the final "success"/"failed". When req.Output is set its checksum is
// also sent as the top-level checksum. 200, 202 and 412 are results; 403
// and 404 are errors matching [ErrForbidden] and [ErrNotFound] (see
// [JobGone]); transport errors and 5xx replies are retried.
func (c *Client) UpdateJob(ctx context.Context, jobID int64, req UpdateJobRequest) (UpdateResult, error) {
	if req.Output != nil && req.Checksum == "" {
		req.Checksum = req.Output.Checksum
	}
	body, err := json.Marshal(req)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("gitlab: update job %d: %w", jobID, err)
	}
	cl := call{
		op:      fmt.Sprintf("update job %d", jobID),
		method:  http.MethodPut,
		target:  "jobs/" + strconv.FormatInt(jobID, 10),
		header:  jsonHeader(),
		body:    bytesBody(body, "application/json"),
		secrets: []string{req.Token},
	}
	resp, attempts, err := c.send(ctx, cl)
	if err != nil {
		return UpdateResult{}, err
	}
	res := UpdateResult{
		StatusCode:     resp.StatusCode,
		UpdateInterval: updateInterval(resp.Header),
		JobStatus:      JobState(resp.Header.Get("Job-Status")),
	}
	switch resp.StatusCode {
	case http.StatusOK, http.StatusAccepted, http.StatusPreconditionFailed:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
		return res, nil
	default:
		return res, c.statusError(cl, resp, attempts)
	}
}

// NewJobOutput describes a trace for the final update: its CRC-32 (IEEE)
// checksum as "crc32:%08x" and its size.
func NewJobOutput(crc uint32, size int64) *JobOutput {
	return &JobOutput{Checksum: TraceChecksum(crc), Bytesize: size}
}

// TraceChecksum formats a CRC-32 (IEEE) as GitLab expects it.
func TraceChecksum(crc uint32) string { return fmt.Sprintf("crc32:%08x", crc) }

// ChecksumOf returns the GitLab checksum of trace bytes.
func ChecksumOf(trace []byte) string { return TraceChecksum(crc32.ChecksumIEEE(trace)) }

func jsonHeader() http.Header {
	return http.Header{"Accept": {"application/json"}}
}

func bytesBody(b []byte, contentType string) func() (io.Reader, string, error) {
	return func() (io.Reader, string, error) { return bytes.NewReader(b), contentType, nil }
}

// updateInterval parses X-GitLab-Trace-Update-Interval (whole seconds).
func updateInterval(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("X-GitLab-Trace-Update-Interval"))
	if v == "" {
		return 0
	}
	s, err := strconv.ParseInt(v, 10, 64)
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(min(s, 3600)) * time.Second
}
