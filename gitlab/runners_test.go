package gitlab_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
	"github.com/wasmrunner/wasmrunner/gitlab/gitlabtest"
)

// clock is a settable clock for the fake GitLab's token expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestResetTokenAndUnregister: a reset token replaces the old one (which
// stops working) and expires a token lifetime later; an expired token is
// refused; unregistering deletes the runner.
func TestResetTokenAndUnregister(t *testing.T) {
	clk := &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	srv := gitlabtest.NewServer(gitlabtest.WithTokenLifetime(72*time.Hour), gitlabtest.WithClock(clk.Now))
	defer srv.Close()
	c, err := gitlab.New(srv.URL, gitlab.WithRetryPolicy(fastRetry))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := srv.RunnerToken
	rc, err := c.VerifyRunner(ctx, old, "")
	if err != nil {
		t.Fatal(err)
	}
	if exp, err := rc.Expires(); err != nil || !exp.Equal(clk.Now().Add(72*time.Hour)) {
		t.Errorf("verify: expires %v %v", exp, err)
	}

	clk.add(60 * time.Hour)
	nc, err := c.ResetToken(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if nc.Token == old || len(nc.Token) < 10 || nc.Token[:5] != "glrt-" {
		t.Errorf("new token %q", nc.Token)
	}
	if exp, err := nc.Expires(); err != nil || !exp.Equal(clk.Now().Add(72*time.Hour)) {
		t.Errorf("reset: expires %v %v", exp, err)
	}
	if _, err := c.VerifyRunner(ctx, old, ""); !errors.Is(err, gitlab.ErrForbidden) {
		t.Errorf("the old token after a reset: %v", err)
	}
	if _, err := c.ResetToken(ctx, old); !errors.Is(err, gitlab.ErrForbidden) {
		t.Errorf("reset with the old token: %v", err)
	}
	if !srv.RunnerValid(nc.Token) {
		t.Error("the new token is not valid")
	}

	// Expired.
	clk.add(72 * time.Hour)
	if _, err := c.VerifyRunner(ctx, nc.Token, ""); !errors.Is(err, gitlab.ErrForbidden) {
		t.Errorf("an expired token: %v", err)
	}
	if _, err := c.ResetToken(ctx, nc.Token); !errors.Is(err, gitlab.ErrForbidden) {
		t.Errorf("reset of an expired token: %v", err)
	}

	// Unregister.
	tok := srv.AddRunner()
	if err := c.UnregisterRunner(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if srv.RunnerValid(tok) {
		t.Error("the runner is still there")
	}
	if err := c.UnregisterRunner(ctx, tok); !errors.Is(err, gitlab.ErrForbidden) {
		t.Errorf("unregistering twice: %v", err)
	}
}

func TestRunnerCredentialsExpires(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"0001-01-01T00:00:00Z", time.Time{}, false},
		{"2026-03-04T12:00:00.000Z", time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC), false},
		{"2026-03-04T13:00:00+01:00", time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC), false},
		{"next tuesday", time.Time{}, true},
	} {
		got, err := gitlab.RunnerCredentials{TokenExpiresAt: tc.in}.Expires()
		if (err != nil) != tc.err || !got.Equal(tc.want) {
			t.Errorf("Expires(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}
