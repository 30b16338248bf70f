package fleet_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/engine/fleet"
	"github.com/wasmrunner/wasmrunner/engine/resource"
	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

func TestRotateAt(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name              string
		obtained, expires time.Time
		want              time.Time
	}{
		{"never expires", t0, time.Time{}, time.Time{}},
		{"three quarters of its life", t0, t0.Add(4 * time.Hour), t0.Add(3 * time.Hour)},
		{"a 30-day token", t0, t0.Add(30 * 24 * time.Hour), t0.Add(22*24*time.Hour + 12*time.Hour)},
		{"obtained unknown: at expiry", time.Time{}, t0, t0},
		{"obtained after expiry (a bad file): at expiry", t0.Add(time.Hour), t0, t0},
	} {
		if got := fleet.RotateAt(tc.obtained, tc.expires); !got.Equal(tc.want) {
			t.Errorf("%s: RotateAt = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// fakeClock is a simulated clock: time moves when the test says.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	changed chan struct{}
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{c.now.Add(d), ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// advance moves the clock by d, waking the waiters that are due.
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// waitFor waits until someone waits for the clock to reach at.
func (c *fakeClock) waitFor(t *testing.T, at time.Time) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for _, w := range c.waiters {
			if w.at.Equal(at) {
				c.mu.Unlock()
				return
			}
		}
		ch, ws := c.changed, c.waiters
		c.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("nobody waits for %v (waiters: %v)", at, ws)
		}
	}
}

// TestTokenRotation: with a simulated clock, a runner's token that
// expires in 4 hours is replaced at 3 hours (not before), saved, and used:
// the runner keeps taking jobs; the next rotation is planned from the new
// token's times.
func TestTokenRotation(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clk := newFakeClock(t0)
	srv := gitlabtest.NewServer(gitlabtest.WithTokenLifetime(4*time.Hour), gitlabtest.WithClock(clk.Now))
	defer srv.Close()
	saved := make(chan fleet.Token, 4)
	f, err := fleet.New(context.Background(), fleet.Config{
		Process: resource.NewProcess(resource.ProcessConfig{Jobs: 4}), CacheDir: t.TempDir(), Version: "test",
		ReloadInterval: time.Hour, Clock: clk,
		TokenRotated: func(runner string, tok fleet.Token) error {
			if runner != "team-a" {
				t.Errorf("rotated runner %q", runner)
			}
			saved <- tok
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		f.Shutdown(false)
		f.Wait()
	}()
	old := srv.RunnerToken
	// The entry says nothing of the expiry: GitLab's verify tells it.
	entry := runnerOf(t, srv, "team-a", old, probeDir(t))
	entry.RotateToken = true
	if err := f.Apply([]fleet.Runner{entry}); err != nil {
		t.Fatal(err)
	}
	clk.waitFor(t, t0.Add(3*time.Hour))
	clk.advance(3*time.Hour - time.Second)
	select {
	case tok := <-saved:
		t.Fatalf("rotated before three quarters of the token's life: %+v", tok)
	default:
	}
	if !srv.RunnerValid(old) {
		t.Fatal("the token was reset early")
	}
	clk.advance(time.Second)
	var tok fleet.Token
	select {
	case tok = <-saved:
	case <-time.After(20 * time.Second):
		t.Fatal("the token was not rotated")
	}
	if tok.Token == old || !srv.RunnerValid(tok.Token) || srv.RunnerValid(old) {
		t.Errorf("after the rotation: new %q valid %v, old valid %v", tok.Token, srv.RunnerValid(tok.Token), srv.RunnerValid(old))
	}
	if !tok.ObtainedAt.Equal(t0.Add(3*time.Hour)) || !tok.ExpiresAt.Equal(t0.Add(7*time.Hour)) {
		t.Errorf("new token's times: obtained %v, expires %v", tok.ObtainedAt, tok.ExpiresAt)
	}
	// The runner takes jobs with the new token.
	if rec := waitState(t, srv, srv.Enqueue(gitlabtest.NewJob("after").Image("probe").Script("e rotated")), gitlab.StateSuccess, gitlab.StateFailed); rec.State != gitlab.StateSuccess {
		t.Errorf("job after the rotation: %s\n%s", rec.State, rec.Trace)
	}
	if got := srv.LastJobRequest().Token; got != tok.Token {
		t.Errorf("job requests use %q, want the new token", got)
	}
	// The next rotation: three quarters into the new token's life.
	clk.waitFor(t, t0.Add(6*time.Hour))
	// The entry as saved (new token and times) is the serving one: a
	// reload of the saved file changes nothing.
	entry.Token, entry.TokenObtainedAt, entry.TokenExpiresAt = tok.Token, tok.ObtainedAt, tok.ExpiresAt
	if e := f.Entries(); len(e) != 1 || !e[0].Equal(entry) {
		t.Errorf("serving %+v, want %+v", e, entry)
	}
}
