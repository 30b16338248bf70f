package gitlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Client talks to one GitLab instance's runner API. It is safe for
// concurrent use.
type Client struct {
	base      *url.URL // ends in /api/v4/
	http      *http.Client
	logger    *slog.Logger
	retry     RetryPolicy
	userAgent string
}

// RetryPolicy bounds the retries of one call. Retries happen on transport
// errors and on 408, 429 and 5xx replies, with jittered exponential
// backoff; a Retry-After header replaces the computed delay.
type RetryPolicy struct {
	// MaxAttempts is the most requests one call makes (1 disables retries).
	MaxAttempts int
	// MaxElapsed is the most time one call spends retrying.
	MaxElapsed time.Duration
	// InitialInterval is the first delay; it grows by half again each
	// retry, with ±50% jitter, up to MaxInterval.
	InitialInterval time.Duration
	MaxInterval     time.Duration
	// AttemptTimeout bounds one request of a call that exchanges small JSON
	// bodies (it must outlast GitLab's long polling, ~50 s). Artifact
	// transfers are bounded by the caller's context only.
	AttemptTimeout time.Duration
}

// DefaultRetryPolicy returns the retry policy [New] uses: up to 10 attempts
// (as the official runner does for the final job update) within 5 minutes.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:     10,
		MaxElapsed:      5 * time.Minute,
		InitialInterval: 500 * time.Millisecond,
		MaxInterval:     30 * time.Second,
		AttemptTimeout:  2 * time.Minute,
	}
}

// Option configures a [Client].
type Option func(*Client)

// WithHTTPClient sets the HTTP client used for requests. Its redirect
// policy is replaced by one that drops job and access tokens when a
// redirect leaves the original host.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}

// WithLogger sets the logger for retries and other operator messages.
// Without it the client logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) { c.logger = l }
}

// WithRetryPolicy replaces [DefaultRetryPolicy].
func WithRetryPolicy(p RetryPolicy) Option {
	return func(c *Client) { c.retry = p }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a client for the GitLab instance at baseURL (for example
// "https://gitlab.example.com"; a trailing "/api/v4" is accepted).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil {
		return nil, fmt.Errorf("gitlab: invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("gitlab: invalid URL %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("gitlab: invalid URL %q: no host", u.Redacted())
	}
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/api/v4")
	u.Path = p + "/api/v4/"
	u.RawPath = ""

	c := &Client{
		base:      u,
		retry:     DefaultRetryPolicy(),
		userAgent: fmt.Sprintf("wasmrunner (%s; %s/%s)", runtime.Version(), runtime.GOOS, runtime.GOARCH),
	}
	for _, o := range opts {
		o(c)
	}
	hc := http.Client{Transport: http.DefaultTransport}
	if c.http != nil {
		hc = *c.http
	}
	hc.CheckRedirect = checkRedirect
	c.http = &hc
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.retry.MaxAttempts < 1 {
		c.retry.MaxAttempts = 1
	}
	return c, nil
}

// BaseURL returns the API root the client talks to, ending in "/api/v4/".
func (c *Client) BaseURL() string { return c.base.String() }

// secretHeaders are request headers that carry tokens.
var secretHeaders = []string{"JOB-TOKEN", "PRIVATE-TOKEN", "Authorization"}

// checkRedirect follows up to 10 redirects and keeps tokens from leaving
// the host they were meant for (object storage gets a signed URL instead).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if req.URL.Host != via[0].URL.Host {
		for _, h := range secretHeaders {
			req.Header.Del(h)
		}
	}
	return nil
}

// retryMode says which failures a call may retry.
type retryMode int

const (
	// retryAll retries transport errors and 408, 429, 5xx replies.
	retryAll retryMode = iota
	// retryUnprocessed retries only replies that say the request was not
	// acted on (408, 429, 502, 503, 504): for calls that are not idempotent.
	retryUnprocessed
)

// call describes one API call.
type call struct {
	op     string
	method string
	// target is a path relative to api/v4/ or an absolute URL.
	target string
	query  url.Values
	header http.Header
	// body returns a fresh body and its content type for each attempt; nil
	// for no body.
	body    func() (io.Reader, string, error)
	secrets []string // redacted from anything the call reports
	mode    retryMode
	// noAttemptTimeout leaves the attempt bounded only by ctx (streams).
	noAttemptTimeout bool
}

// send performs the call with retries and returns the first reply that is
// not retried (or the last one when retries are exhausted, as a
// *StatusError). The caller closes the reply's body.
func (c *Client) send(ctx context.Context, cl call) (*http.Response, int, error) {
	target, err := c.base.Parse(cl.target)
	if err != nil {
		return nil, 0, fmt.Errorf("gitlab: %s: invalid target: %w", cl.op, err)
	}
	if cl.query != nil {
		target.RawQuery = cl.query.Encode()
	}

	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.retry.InitialInterval
	bo.MaxInterval = c.retry.MaxInterval
	bo.RandomizationFactor = 0.5
	bo.Multiplier = 1.5
	bo.Reset()
	start := time.Now()

	for attempt := 1; ; attempt++ {
		resp, err := c.attempt(ctx, cl, target)
		var delay time.Duration
		var lastErr error
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, attempt, c.stopped(ctx, cl, attempt, err)
			}
			lastErr = fmt.Errorf("gitlab: %s: %w: %s", cl.op, ErrTransport, redact(describeTransportError(err), cl.secrets...))
			if cl.mode != retryAll {
				return nil, attempt, lastErr
			}
		case retryable(resp.StatusCode, cl.mode):
			serr := c.statusError(cl, resp, attempt)
			delay = serr.RetryAfter
			lastErr = serr
		default:
			return resp, attempt, nil
		}

		if delay <= 0 {
			delay = bo.NextBackOff()
		}
		if attempt >= c.retry.MaxAttempts || time.Since(start)+delay > c.retry.MaxElapsed {
			return nil, attempt, lastErr
		}
		c.logger.LogAttrs(ctx, slog.LevelWarn, "GitLab request failed, retrying",
			slog.String("op", cl.op), slog.Int("attempt", attempt),
			slog.Duration("delay", delay), slog.String("error", lastErr.Error()))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, attempt, c.stopped(ctx, cl, attempt, lastErr)
		}
	}
}

// stopped reports a call ended by its context, keeping the last failure.
func (c *Client) stopped(ctx context.Context, cl call, attempts int, last error) error {
	cause := context.Cause(ctx)
	if last == nil {
		return fmt.Errorf("gitlab: %s: %w", cl.op, cause)
	}
	msg := redact(last.Error(), cl.secrets...)
	return fmt.Errorf("gitlab: %s: %w after %d attempt(s); last error: %s", cl.op, cause, attempts, msg)
}

// attempt makes one request.
func (c *Client) attempt(ctx context.Context, cl call, target *url.URL) (*http.Response, error) {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if !cl.noAttemptTimeout && c.retry.AttemptTimeout > 0 {
		actx, cancel = context.WithTimeout(ctx, c.retry.AttemptTimeout)
	}
	var body io.Reader
	var contentType string
	if cl.body != nil {
		b, ct, err := cl.body()
		if err != nil {
			cancel()
			return nil, err
		}
		body, contentType = b, ct
	}
	req, err := http.NewRequestWithContext(actx, cl.method, target.String(), body)
	if err != nil {
		cancel()
		return nil, err
	}
	for k, vs := range cl.header {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// retryable reports whether a reply status is worth another attempt.
func retryable(code int, mode retryMode) bool {
	switch mode {
	case retryUnprocessed:
		switch code {
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	default:
		return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
			(code >= 500 && code <= 599 && code != http.StatusNotImplemented)
	}
}

// maxErrorBody bounds how much of an error reply is read.
const maxErrorBody = 16 << 10

// statusError reads and closes an error reply.
func (c *Client) statusError(cl call, resp *http.Response, attempts int) *StatusError {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &StatusError{
		Op:         cl.op,
		StatusCode: resp.StatusCode,
		JobStatus:  JobState(resp.Header.Get("Job-Status")),
		Message:    replyMessage(body, cl.secrets),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Attempts:   attempts,
	}
}

// retryAfter parses a Retry-After value: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > 3600 {
			s = 3600
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, time.Hour)
		}
	}
	return 0
}

// describeTransportError says what failed without the URL's secrets; the
// URL itself holds no tokens (tokens travel in headers and bodies).
func describeTransportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("%s %s: %v", ue.Op, ue.URL, ue.Err)
	}
	return err.Error()
}
