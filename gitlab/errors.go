package gitlab

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors for GitLab's replies. A [*StatusError] matches the one
// for its status code under [errors.Is].
var (
	ErrUnauthorized        = errors.New("unauthorized")          // 401
	ErrForbidden           = errors.New("forbidden")             // 403: bad token, or the job is no longer running
	ErrNotFound            = errors.New("not found")             // 404
	ErrConflict            = errors.New("conflict")              // 409: try again
	ErrTooLarge            = errors.New("too large")             // 413
	ErrTooManyRequests     = errors.New("too many requests")     // 429
	ErrServer              = errors.New("server error")          // 5xx
	ErrUnexpectedReply     = errors.New("unexpected reply")      // any other status, or a reply that cannot be decoded
	ErrTransport           = errors.New("transport error")       // the request did not get a reply
	ErrRangeNotSatisfiable = errors.New("range not satisfiable") // 416 where the caller cannot resume
)

// StatusError is a reply from GitLab that ends a call unsuccessfully.
type StatusError struct {
	// Op names the call: "request job", "patch trace", ...
	Op string
	// StatusCode is the HTTP status of the final reply.
	StatusCode int
	// JobStatus is the Job-Status reply header, if GitLab sent one.
	JobStatus JobState
	// Message is GitLab's message from the reply body, with tokens
	// redacted and length bounded.
	Message string
	// RetryAfter is the Retry-After reply header, if any.
	RetryAfter time.Duration
	// Attempts is how many requests were made.
	Attempts int
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gitlab: %s: %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if e.JobStatus != "" {
		fmt.Fprintf(&b, " (job status %s)", e.JobStatus)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Is reports whether target is the sentinel error for e's status code.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge
	case ErrTooManyRequests:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrRangeNotSatisfiable:
		return e.StatusCode == http.StatusRequestedRangeNotSatisfiable
	case ErrServer:
		return e.StatusCode >= 500 && e.StatusCode <= 599
	case ErrUnexpectedReply:
		switch e.StatusCode {
		case 401, 403, 404, 409, 413, 416, 429:
			return false
		}
		return e.StatusCode < 500 || e.StatusCode > 599
	}
	return false
}

// JobGone reports whether err means GitLab no longer lets the runner work
// on the job: a 403 or 404 reply, or a Job-Status of canceled or failed.
// Since GitLab invalidates the job token when a job ends, a plain 403 also
// means the job was canceled.
func JobGone(err error) bool {
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	return se.StatusCode == http.StatusForbidden || se.StatusCode == http.StatusNotFound ||
		se.JobStatus == StateCanceled || se.JobStatus == StateFailed
}

// tokenPrefixes are GitLab's token prefixes; a word starting with one is a
// secret wherever it appears.
var tokenPrefixes = []string{
	"glpat-", "glrt-", "gldt-", "glcbt-", "glptt-", "glft-", "glimt-", "glagent-",
	"glsoat-", "gloas-", "gltok-", "GR1348941",
}

// TokenPrefixes returns GitLab's well-known token prefixes.
func TokenPrefixes() []string { return append([]string(nil), tokenPrefixes...) }

var tokenPattern = func() *regexp.Regexp {
	quoted := make([]string, len(tokenPrefixes))
	for i, p := range tokenPrefixes {
		quoted[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(`(` + strings.Join(quoted, "|") + `)[A-Za-z0-9_.\-]+`)
}()

// redact removes the given secrets and anything that looks like a GitLab
// token from s.
func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[MASKED]")
		}
	}
	return tokenPattern.ReplaceAllString(s, "${1}[MASKED]")
}

// maxMessage bounds how much of a reply body an error quotes.
const maxMessage = 512

// replyMessage extracts GitLab's message from an error reply body: the
// "message" or "error" member of a JSON object, else the text itself.
func replyMessage(body []byte, secrets []string) string {
	var obj struct {
		Message json.RawMessage `json:"message"`
		Error   json.RawMessage `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &obj) == nil {
		raw := obj.Message
		if len(raw) == 0 {
			raw = obj.Error
		}
		if len(raw) > 0 {
			var s string
			if json.Unmarshal(raw, &s) == nil {
				msg = s
			} else {
				msg = string(raw)
			}
		}
	}
	// Redact before and after folding white space: a secret may hold
	// white space of its own.
	msg = redact(msg, secrets...)
	msg = strings.Join(strings.Fields(msg), " ")
	msg = strings.ToValidUTF8(redact(msg, secrets...), "\uFFFD")
	if len(msg) > maxMessage {
		cut := maxMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	return msg
}
