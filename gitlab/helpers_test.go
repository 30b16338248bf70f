package gitlab

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"token glrt-abc_DEF-123 rejected", "token glrt-[MASKED] rejected"},
		{"glpat-xyz and glcbt-64_q.w", "glpat-[MASKED] and glcbt-[MASKED]"},
		{"my secret s3cr3t here", "my secret [MASKED] here"},
		{"nothing to hide", "nothing to hide"},
	}
	for _, tt := range tests {
		if got := redact(tt.in, "s3cr3t", ""); got != tt.want {
			t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReplyMessage(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"message":"403 Forbidden"}`, "403 Forbidden"},
		{`{"error":"invalid token glrt-abcdef"}`, "invalid token glrt-[MASKED]"},
		{`{"message":{"base":["bad"]}}`, `{"base":["bad"]}`},
		{"<html>\n  Bad   Gateway\n</html>", "<html> Bad Gateway </html>"},
		{strings.Repeat("x", 2000), strings.Repeat("x", maxMessage) + "..."},
	}
	for _, tt := range tests {
		if got := replyMessage([]byte(tt.body), nil); got != tt.want {
			t.Errorf("replyMessage(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"0", 0}, {"-1", 0}, {"junk", 0},
		{"999999", time.Hour},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, now); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseRangeEnd(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0-10", 10, true}, {"0-0", 0, true}, {" 0-5 ", 5, true}, {"bytes=0-7", 7, true},
		{"", 0, false}, {"5-10", 0, false}, {"0-", 0, false}, {"0--1", 0, false}, {"abc", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRangeEnd(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRangeEnd(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseRangeEnd(f *testing.F) {
	for _, s := range []string{"0-10", "0-", "bytes=0-1", "1-2", "0-99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := parseRangeEnd(s); ok && n < 0 {
			t.Fatalf("parseRangeEnd(%q) = %d", s, n)
		}
	})
}

func TestStatusErrorIs(t *testing.T) {
	sentinels := []error{ErrUnauthorized, ErrForbidden, ErrNotFound, ErrConflict, ErrTooLarge,
		ErrTooManyRequests, ErrRangeNotSatisfiable, ErrServer, ErrUnexpectedReply}
	want := map[int]error{
		401: ErrUnauthorized, 403: ErrForbidden, 404: ErrNotFound, 409: ErrConflict, 413: ErrTooLarge,
		429: ErrTooManyRequests, 416: ErrRangeNotSatisfiable, 500: ErrServer, 503: ErrServer,
		400: ErrUnexpectedReply, 418: ErrUnexpectedReply, 302: ErrUnexpectedReply,
	}
	for code, w := range want {
		err := error(&StatusError{Op: "x", StatusCode: code})
		for _, s := range sentinels {
			if got := errors.Is(err, s); got != (s == w) {
				t.Errorf("errors.Is(%d, %v) = %v", code, s, got)
			}
		}
	}
}

func TestJobGone(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&StatusError{StatusCode: 403}, true},
		{&StatusError{StatusCode: 404}, true},
		{&StatusError{StatusCode: 500, JobStatus: StateCanceled}, true},
		{&StatusError{StatusCode: 500}, false},
		{errors.New("x"), false},
		{nil, false},
	} {
		if got := JobGone(tt.err); got != tt.want {
			t.Errorf("JobGone(%v) = %v", tt.err, got)
		}
	}
}

func TestSystemID(t *testing.T) {
	dir := t.TempDir()
	mid := filepath.Join(dir, "machine-id")
	if err := os.WriteFile(mid, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state", ".runner_system_id")

	id, err := SystemID(mid, state)
	if err != nil {
		t.Fatal(err)
	}
	if id != machineSystemID("0123456789abcdef0123456789abcdef") || !strings.HasPrefix(id, "s_") || len(id) != 14 {
		t.Errorf("machine id based system id = %q", id)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("a machine-derived id must not be persisted: %v", err)
	}

	// No machine id: a random r_ id, persisted and reused.
	r1, err := SystemID(filepath.Join(dir, "missing"), state)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r1, "r_") || !validSystemID(r1) {
		t.Fatalf("random system id = %q", r1)
	}
	r2, err := SystemID("", state)
	if err != nil || r2 != r1 {
		t.Fatalf("second call = %q, %v; want %q", r2, err, r1)
	}
	// A persisted id wins over the machine id, so the id never changes.
	if r3, _ := SystemID(mid, state); r3 != r1 {
		t.Fatalf("with machine id later = %q, want %q", r3, r1)
	}
	// A corrupt state file is replaced.
	os.WriteFile(state, []byte("garbage"), 0o600)
	if r4, _ := SystemID("", state); r4 == r1 || !validSystemID(r4) {
		t.Fatalf("after corruption = %q", r4)
	}
}

func TestNewClientURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://gitlab.example.com":               "https://gitlab.example.com/api/v4/",
		"https://gitlab.example.com/":              "https://gitlab.example.com/api/v4/",
		"https://gitlab.example.com/api/v4":        "https://gitlab.example.com/api/v4/",
		"https://u:p@example.com/gitlab/?x=1#frag": "https://example.com/gitlab/api/v4/",
	} {
		c, err := New(in)
		if err != nil {
			t.Fatalf("New(%q): %v", in, err)
		}
		if got := c.BaseURL(); got != want {
			t.Errorf("New(%q).BaseURL() = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"", "gitlab.example.com", "ftp://x", "http://", "http://[::1"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
}

func FuzzReplyMessage(f *testing.F) {
	f.Add([]byte(`{"message":"bad token glrt-abcdef123"}`), "s3cr3t-token")
	f.Add([]byte(`{"error":{"x":"s3cr3t-token"}}`), "s3cr3t-token")
	f.Add([]byte("\xff\xfe binary s3cr3t-token"), "s3cr3t-token")
	f.Fuzz(func(t *testing.T, body []byte, secret string) {
		msg := replyMessage(body, []string{secret})
		if len(msg) > maxMessage+3 {
			t.Fatalf("message of %d bytes", len(msg))
		}
		// A secret of a reasonable length never survives whole.
		if len(secret) >= 8 && !strings.Contains("[MASKED]", secret) && strings.Contains(msg, secret) {
			t.Fatalf("secret %q survived in %q", secret, msg)
		}
	})
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"5", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999999999999", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d := retryAfter(s, time.Now()); d < 0 || d > time.Hour {
			t.Fatalf("retryAfter(%q) = %v", s, d)
		}
	})
}
