package fleet

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Health is what a runner's last job request said of GitLab.
type Health int

const (
	// Unknown: no job request has been answered yet.
	Unknown Health = iota
	// OK: GitLab answered a job request (with a job or none).
	OK
	// Unreachable: the last job request got no answer, or a server error
	// (502/503/504 of a proxy while GitLab is down, 5xx of GitLab).
	Unreachable
	// Rejected: GitLab refused the runner's token (403).
	Rejected
)

func (h Health) String() string {
	switch h {
	case OK:
		return "ok"
	case Unreachable:
		return "unreachable"
	case Rejected:
		return "token rejected"
	}
	return "unknown"
}

// health follows one runner's job requests.
type health struct {
	mu    sync.Mutex
	state Health
	since time.Time
	err   string
}

func (h *health) set(s Health, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s != h.state {
		h.since = time.Now()
	}
	h.state, h.err = s, detail
}

// healthTransport watches each attempt of a runner's job requests (and
// token checks), retries included: readiness follows GitLab at once, not
// after a call's retries are spent.
type healthTransport struct {
	next http.RoundTripper
	h    *health
}

func (t healthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if !runnerTokenCall(req) {
		return resp, err
	}
	switch {
	case err != nil:
		// A request canceled (a drain ends the long poll) says nothing of
		// GitLab; one that timed out does.
		if !errors.Is(req.Context().Err(), context.Canceled) {
			t.h.set(Unreachable, err.Error())
		}
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		t.h.set(Rejected, resp.Status)
	case resp.StatusCode >= 500:
		t.h.set(Unreachable, resp.Status)
	default:
		t.h.set(OK, "")
	}
	return resp, err
}

// runnerTokenCall says whether req is authenticated by the runner token:
// a job request or a token check. 403 to other calls (a job's token)
// says nothing of the runner's.
func runnerTokenCall(req *http.Request) bool {
	p := strings.TrimRight(req.URL.Path, "/")
	return req.Method == http.MethodPost && (strings.HasSuffix(p, "/api/v4/jobs/request") || strings.HasSuffix(p, "/api/v4/runners/verify"))
}

// RunnerStatus is one serving runner's view of GitLab.
type RunnerStatus struct {
	Name   string
	Health Health
	// Detail is the last failure ("" when OK).
	Detail string
	// Since is when Health last changed.
	Since time.Time
}

// Status returns the serving runners' health, sorted by name.
func (f *Fleet) Status() []RunnerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []RunnerStatus
	for _, name := range sortedKeys(f.live) {
		h := f.live[name].health
		h.mu.Lock()
		out = append(out, RunnerStatus{Name: name, Health: h.state, Detail: h.err, Since: h.since})
		h.mu.Unlock()
	}
	return out
}

// Ready reports whether the fleet takes jobs: it is not shutting down, a
// runner serves or is loading its handlers, and no serving runner's last
// job request found GitLab unreachable or its token rejected. When not
// ready, why says why.
func (f *Fleet) Ready() (ready bool, why string) {
	f.mu.Lock()
	stopping, n := f.stopping, len(f.live)+len(f.loading)
	f.mu.Unlock()
	switch {
	case stopping:
		return false, "shutting down"
	case n == 0:
		return false, "no runner: none configured, or none could load its handlers"
	}
	var bad []string
	for _, s := range f.Status() {
		if s.Health == Unreachable || s.Health == Rejected {
			msg := s.Name + ": GitLab " + s.Health.String()
			if s.Health == Rejected {
				msg = s.Name + ": the runner token was rejected"
			}
			if s.Detail != "" {
				msg += " (" + s.Detail + ")"
			}
			bad = append(bad, msg)
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	return true, ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
