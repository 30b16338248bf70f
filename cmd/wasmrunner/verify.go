package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "check that GitLab accepts a runner token",
		Description: `verify asks GitLab (POST /api/v4/runners/verify) whether the token is a
valid runner authentication token, and says why when it cannot tell: GitLab
unreachable (DNS, connection, TLS, timeout), a server error (5xx), or a
reply that is not GitLab's. It exits 0 if the token is valid, 1 if GitLab
refused it or could not be asked, 2 on a usage error.

Example:
   wasmrunner verify --url https://gitlab.example.com --token-file ./token`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "url", Usage: "GitLab URL (required)", EnvVars: []string{"WASMRUNNER_URL"}},
			&cli.StringFlag{Name: "token", Usage: "runner authentication token", EnvVars: []string{"WASMRUNNER_TOKEN"}},
			&cli.StringFlag{Name: "token-file", Usage: "read the token from this file", EnvVars: []string{"WASMRUNNER_TOKEN_FILE"}},
		}, tlsFlags()...),
		Action: func(c *cli.Context) error {
			if err := noArgs(c); err != nil {
				return err
			}
			if c.String("url") == "" {
				return usageError("--url (or WASMRUNNER_URL) is required")
			}
			token, err := tokenFrom(c.String("token"), c.String("token-file"))
			if err != nil {
				return err
			}
			base, err := commandTransport(c)
			if err != nil {
				return err
			}
			rt := &recordingTransport{next: base}
			client, err := gitlab.New(c.String("url"), gitlab.WithHTTPClient(&http.Client{Transport: rt}), gitlab.WithRetryPolicy(verifyRetry))
			if err != nil {
				return usageError(err.Error())
			}
			systemID, _ := gitlab.SystemID(gitlab.DefaultMachineIDFile, filepath.Join(cacheDir(), ".runner_system_id"))
			rc, err := client.VerifyRunner(c.Context, token, systemID)
			if err != nil {
				return cli.Exit(verifyFailure(redactURL(c.String("url")), err, rt.lastError()), exitFailure)
			}
			fmt.Fprintf(c.App.Writer, "token is valid (runner id %d)\n", rc.ID)
			return nil
		},
	}
}

// verifyRetry is verify's retry policy: a few quick attempts, since a
// person or a script is waiting.
var verifyRetry = gitlab.RetryPolicy{
	MaxAttempts: 3, MaxElapsed: 20 * time.Second,
	InitialInterval: 500 * time.Millisecond, MaxInterval: 2 * time.Second,
	AttemptTimeout: 30 * time.Second,
}

// verifyFailure says why verify could not confirm the token: GitLab's
// refusal, a server error, an answer that is not GitLab's, or why GitLab
// could not be reached (transport, the last transport error, if any).
func verifyFailure(gitlabURL string, err, transport error) string {
	switch {
	case errors.Is(err, gitlab.ErrForbidden), errors.Is(err, gitlab.ErrUnauthorized):
		return fmt.Sprintf("token not valid: GitLab refused it (%v)", err)
	case errors.Is(err, gitlab.ErrServer):
		return fmt.Sprintf("GitLab at %s has a server error; the token was not checked (%v)", gitlabURL, err)
	case errors.Is(err, gitlab.ErrTooManyRequests):
		return fmt.Sprintf("GitLab at %s is rate-limiting requests; the token was not checked, try again later (%v)", gitlabURL, err)
	case errors.Is(err, gitlab.ErrNotFound), errors.Is(err, gitlab.ErrUnexpectedReply):
		return fmt.Sprintf("%s did not answer as GitLab's runner API does: is --url GitLab's address? The token was not checked (%v)", gitlabURL, err)
	case errors.Is(err, gitlab.ErrTransport):
		return fmt.Sprintf("GitLab at %s is unreachable: %s; the token was not checked (%v)", gitlabURL, transportCause(transport), err)
	}
	return fmt.Sprintf("the token could not be checked: %v", err)
}

// transportCause names the kind of a transport error.
func transportCause(err error) string {
	var (
		dnsErr  *net.DNSError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		verify  *tls.CertificateVerificationError
		record  tls.RecordHeaderError
		netErr  net.Error
	)
	switch {
	case err == nil:
		return "no reply"
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return fmt.Sprintf("host %s not found (DNS)", dnsErr.Name)
		}
		return fmt.Sprintf("resolving %s failed (DNS)", dnsErr.Name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens at that address and port)"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host"
	case errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid), errors.As(err, &verify):
		return "its TLS certificate is not trusted (for a private CA: --tls-ca-file, or SSL_CERT_FILE)"
	case errors.As(err, &record):
		return "TLS handshake failed (is it an http:// address?)"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	}
	return "no reply"
}

// redactURL is s without a password, if it has one.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "--url"
	}
	return u.Redacted()
}

// recordingTransport keeps the last error of its requests, which the
// GitLab client reports as text only.
type recordingTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	last error
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		t.mu.Lock()
		t.last = err
		t.mu.Unlock()
	}
	return resp, err
}

func (t *recordingTransport) lastError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}
