package main

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVerifyFailures: verify tells a refused token from a GitLab it
// cannot reach, a server error and an address that is not GitLab's.
func TestVerifyFailures(t *testing.T) {
	old := verifyRetry
	verifyRetry.InitialInterval, verifyRetry.MaxInterval = 10*time.Millisecond, 10*time.Millisecond
	t.Cleanup(func() { verifyRetry = old })

	status := func(code int) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"message":"boom"}`, code)
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)
	refused := freeAddr(t) // nothing listens there now
	tests := []struct{ name, url, want string }{
		{"refused", "http://" + refused, "is unreachable: connection refused"},
		{"untrusted TLS", tlsSrv.URL, "is unreachable: its TLS certificate is not trusted"},
		{"plain HTTP at a TLS port", strings.Replace(status(200), "http://", "https://", 1), "is unreachable: TLS handshake failed"},
		{"server error", status(502), "has a server error; the token was not checked"},
		{"not GitLab", status(404), "did not answer as GitLab's runner API does"},
		{"forbidden", status(403), "token not valid: GitLab refused it"},
		{"unauthorized", status(401), "token not valid: GitLab refused it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, context.Background(), "verify", "--url", tt.url, "--token", "glrt-secretsecret")
			if code != exitFailure || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "secretsecret") {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, exitFailure, tt.want)
			}
		})
	}
}

func TestTransportCause(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{&net.DNSError{Name: "gitlab.invalid", IsNotFound: true}, "host gitlab.invalid not found (DNS)"},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Name: "x", IsTimeout: true}}, "resolving x failed (DNS)"},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "connection refused"},
		{&net.OpError{Op: "dial", Err: syscall.EHOSTUNREACH}, "no route to the host"},
		{x509.UnknownAuthorityError{}, "TLS certificate is not trusted"},
		{timeoutError{}, "timed out"},
		{errors.New("other"), "no reply"},
		{nil, "no reply"},
	} {
		if got := transportCause(tt.err); !strings.Contains(got, tt.want) {
			t.Errorf("transportCause(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	if got := redactURL("https://user:pw@gitlab.example.com/x"); strings.Contains(got, "pw") {
		t.Errorf("redactURL = %q", got)
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
