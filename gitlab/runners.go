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

// ResetToken replaces a runner authentication token with a new one (POST
// runners/reset_authentication_token, GitLab 16.x and later) and returns
// it with its expiry; the old token stops working at once. A token GitLab
// does not take (wrong, expired) is an error matching [ErrForbidden]. Only
// replies that say GitLab did not act are retried: a reset that went
// through cannot be asked again with the old token.
func (c *Client) ResetToken(ctx context.Context, token string) (RunnerCredentials, error) {
	return c.runnerCall(ctx, call{
		op:      "reset runner token",
		method:  http.MethodPost,
		target:  "runners/reset_authentication_token",
		secrets: []string{token},
		mode:    retryUnprocessed,
	}, VerifyRunnerRequest{Token: token}, http.StatusCreated)
}

// UnregisterRunner deletes the runner of an authentication token from
// GitLab (DELETE runners). A token GitLab does not take is an error
// matching [ErrForbidden]; only replies that say GitLab did not act are
// retried.
func (c *Client) UnregisterRunner(ctx context.Context, token string) error {
	data, err := json.Marshal(VerifyRunnerRequest{Token: token})
	if err != nil {
		return fmt.Errorf("gitlab: unregister runner: %w", err)
	}
	cl := call{
		op:      "unregister runner",
		method:  http.MethodDelete,
		target:  "runners",
		header:  http.Header{"Accept": {"application/json"}},
		body:    bytesBody(data, "application/json"),
		secrets: []string{token},
		mode:    retryUnprocessed,
	}
	resp, attempts, err := c.send(ctx, cl)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return c.statusError(cl, resp, attempts)
	}
	resp.Body.Close()
	return nil
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
