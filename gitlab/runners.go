package gitlab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// VerifyRunner checks a runner authentication token (POST runners/verify).
// A valid token returns GitLab's view of the runner; an invalid one is an
// error matching [ErrForbidden].
func (c *Client) VerifyRunner(ctx context.Context, token, systemID string) (RunnerCredentials, error) {
	return c.runnerCall(ctx, call{
		op:      "verify runner",
		method:  http.MethodPost,
		target:  "runners/verify",
		secrets: []string{token},
	}, VerifyRunnerRequest{Token: token, SystemID: systemID}, http.StatusOK)
}

// RegisterRunner registers a runner with a legacy registration token (POST
// runners) and returns its new runner token. An invalid registration token
// is an error matching [ErrForbidden]. Only replies that say GitLab did not
// act are retried, so a runner is never registered twice.
func (c *Client) RegisterRunner(ctx context.Context, req RegisterRunnerRequest) (RunnerCredentials, error) {
	return c.runnerCall(ctx, call{
		op:      "register runner",
		method:  http.MethodPost,
		target:  "runners",
		secrets: []string{req.Token},
		mode:    retryUnprocessed,
	}, req, http.StatusCreated)
}

// CreateRunner creates a runner with a personal access token (POST
// user/runners, GitLab 16 and later) and returns its runner token. An
// invalid access token is an error matching [ErrUnauthorized], missing
// rights [ErrForbidden]. Only replies that say GitLab did not act are
// retried.
func (c *Client) CreateRunner(ctx context.Context, accessToken string, req CreateRunnerRequest) (RunnerCredentials, error) {
	return c.runnerCall(ctx, call{
		op:      "create runner",
		method:  http.MethodPost,
		target:  "user/runners",
		header:  http.Header{"Private-Token": {accessToken}},
		secrets: []string{accessToken},
		mode:    retryUnprocessed,
	}, req, http.StatusCreated)
}

// runnerCall sends a JSON body and decodes RunnerCredentials from a reply
// with the wanted status.
func (c *Client) runnerCall(ctx context.Context, cl call, body any, want int) (RunnerCredentials, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return RunnerCredentials{}, fmt.Errorf("gitlab: %s: %w", cl.op, err)
	}
	if cl.header == nil {
		cl.header = http.Header{}
	}
	cl.header.Set("Accept", "application/json")
	cl.body = bytesBody(data, "application/json")
	resp, attempts, err := c.send(ctx, cl)
	if err != nil {
		return RunnerCredentials{}, err
	}
	if resp.StatusCode != want {
		return RunnerCredentials{}, c.statusError(cl, resp, attempts)
	}
	defer resp.Body.Close()
	var rc RunnerCredentials
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return RunnerCredentials{}, fmt.Errorf("gitlab: %s: %w: %s", cl.op, ErrTransport, redact(err.Error(), cl.secrets...))
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &rc); err != nil {
			return RunnerCredentials{}, fmt.Errorf("gitlab: %s: %w: %s", cl.op, ErrUnexpectedReply, describeJSONError(err))
		}
	}
	if cl.op != "verify runner" && rc.Token == "" {
		return RunnerCredentials{}, fmt.Errorf("gitlab: %s: %w: reply has no runner token", cl.op, ErrUnexpectedReply)
	}
	return rc, nil
}
