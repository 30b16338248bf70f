package gitlabtest

import (
	"fmt"
	"time"
)

type faultKind int

const (
	faultStatus      faultKind = iota // reply a status without acting
	faultDelay                        // wait, then handle normally
	faultReset                        // close the connection with RST
	faultRedirect                     // 307 an upload to itself
	faultDrop                         // 202 a trace patch, store nothing
	faultAcceptFinal                  // 202 a final update, finish nothing
)

// fault is one queued fault; left counts the requests it still applies to.
type fault struct {
	ep         Endpoint
	kind       faultKind
	status     int
	retryAfter time.Duration
	delay      time.Duration
	left       int
}

func (f *fault) String() string {
	switch f.kind {
	case faultStatus:
		if f.retryAfter > 0 {
			return fmt.Sprintf("status %d retry-after %s", f.status, f.retryAfter)
		}
		return fmt.Sprintf("status %d", f.status)
	case faultDelay:
		return fmt.Sprintf("delay %s", f.delay)
	case faultReset:
		return "reset"
	case faultRedirect:
		return "redirect"
	case faultDrop:
		return "drop patch"
	case faultAcceptFinal:
		return "accept final update"
	}
	return "unknown fault"
}

func (s *Server) addFault(f *fault) {
	if f.kind == faultStatus && (f.status < 100 || f.status > 999) {
		panic(fmt.Sprintf("gitlabtest: invalid fault status %d", f.status))
	}
	if f.left <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// takeFaultLocked consumes one use of the first queued fault for ep that
// match accepts, and returns a copy of it, or nil.
func (s *Server) takeFaultLocked(ep Endpoint, match func(*fault) bool) *fault {
	for i, f := range s.faults {
		if f.ep != ep || !match(f) {
			continue
		}
		f.left--
		if f.left == 0 {
			s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
		}
		c := *f
		return &c
	}
	return nil
}

func (s *Server) takeKindLocked(ep Endpoint, kind faultKind) *fault {
	return s.takeFaultLocked(ep, func(f *fault) bool { return f.kind == kind })
}

// FailNext makes the next times requests to ep fail with status (500, 502,
// 503, 408, 429, 409, ...) and body {"message":"fault injected"}, without
// acting on them. It panics for a status outside 100-999.
func (s *Server) FailNext(ep Endpoint, status int, times int) {
	s.addFault(&fault{ep: ep, kind: faultStatus, status: status, left: times})
}

// FailNextRetryAfter is FailNext with a Retry-After header of retryAfter,
// in whole seconds (rounded up).
func (s *Server) FailNextRetryAfter(ep Endpoint, status int, retryAfter time.Duration, times int) {
	s.addFault(&fault{ep: ep, kind: faultStatus, status: status, retryAfter: retryAfter, left: times})
}

// DelayNext makes the next times requests to ep wait d (or until the
// client gives up or the server closes) before they are handled normally.
func (s *Server) DelayNext(ep Endpoint, d time.Duration, times int) {
	s.addFault(&fault{ep: ep, kind: faultDelay, delay: d, left: times})
}

// ResetNext makes the next times requests to ep end with a TCP reset of
// their connection, without a reply and without acting on them.
func (s *Server) ResetNext(ep Endpoint, times int) {
	s.addFault(&fault{ep: ep, kind: faultReset, left: times})
}

// DropNextPatches loses the next times trace patches that would have been
// accepted: they are answered 202, but nothing is stored and the Range
// header reports the unchanged trace size.
func (s *Server) DropNextPatches(times int) {
	s.addFault(&fault{ep: EndpointTrace, kind: faultDrop, left: times})
}

// AcceptNextFinalUpdates makes the next times valid final updates (state
// success or failed) answer 202, "accepted, not complete", without
// finishing the job, as GitLab does while it still processes the trace.
func (s *Server) AcceptNextFinalUpdates(times int) {
	s.addFault(&fault{ep: EndpointUpdate, kind: faultAcceptFinal, left: times})
}

// RedirectNextUploads answers the next times artifact uploads with 307 and
// a Location of the same URL plus the query parameter redirected=1; the
// redirected upload is handled normally.
func (s *Server) RedirectNextUploads(times int) {
	s.addFault(&fault{ep: EndpointUpload, kind: faultRedirect, left: times})
}
