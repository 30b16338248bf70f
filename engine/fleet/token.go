package fleet

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/wasmrunner/wasmrunner/gitlab"
)

// Clock tells the time of token rotations (a simulated one in tests).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Token is a runner authentication token with its times.
type Token struct {
	Token string
	// ObtainedAt is when GitLab made it; ExpiresAt when it expires (zero:
	// never).
	ObtainedAt, ExpiresAt time.Time
}

// RotateAt is when a token obtained at obtained that expires at expires is
// replaced: when three quarters of its life have passed, as GitLab Runner
// does, which leaves a quarter of it to retry a reset that fails. A token
// that never expires (zero expires) is never replaced: the zero time.
func RotateAt(obtained, expires time.Time) time.Time {
	if expires.IsZero() {
		return time.Time{}
	}
	if obtained.IsZero() || !obtained.Before(expires) {
		return expires
	}
	return obtained.Add(expires.Sub(obtained) / 4 * 3)
}

// rotationRetry is the wait before asking again after a reset failed.
const rotationRetry = time.Minute

// keepToken replaces the runner's token before it expires, for as long as
// ctx lasts: at RotateAt it asks GitLab for a new one, has it persisted
// (Config.TokenRotated) and makes the runner use it.
func (f *Fleet) keepToken(ctx context.Context, inst *instance, client *gitlab.Client, logger *slog.Logger) {
	clock := f.cfg.Clock
	f.mu.Lock()
	tok := Token{Token: inst.opts.Token, ObtainedAt: inst.opts.TokenObtainedAt, ExpiresAt: inst.opts.TokenExpiresAt}
	rotate := inst.opts.RotateToken
	f.mu.Unlock()
	if !rotate {
		return
	}
	wait := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-clock.After(d):
			return true
		}
	}
	for tok.ExpiresAt.IsZero() {
		// Unknown: GitLab says (and says nothing of a token that does not
		// expire).
		rc, err := client.VerifyRunner(ctx, tok.Token, f.cfg.SystemID)
		if err == nil {
			tok.ExpiresAt, err = rc.Expires()
			if err == nil && tok.ExpiresAt.IsZero() {
				return
			}
		}
		if errors.Is(err, gitlab.ErrForbidden) {
			return // readiness says it
		}
		if err != nil {
			logger.Warn("could not learn when the runner token expires; asking again later", "error", err, "retry_in", rotationRetry)
			if !wait(rotationRetry) {
				return
			}
		}
	}
	if tok.ObtainedAt.IsZero() {
		// Counted from now: the rotation comes earlier than it could,
		// never later.
		tok.ObtainedAt = clock.Now()
	}
	for {
		at := RotateAt(tok.ObtainedAt, tok.ExpiresAt)
		logger.Debug("runner token rotation planned", "expires_at", tok.ExpiresAt, "rotate_at", at)
		if d := at.Sub(clock.Now()); d > 0 && !wait(d) {
			return
		}
		rc, err := client.ResetToken(ctx, tok.Token)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, gitlab.ErrForbidden) {
				logger.Error("GitLab refused to replace the runner token: it no longer takes it (expired, reset elsewhere, or the runner was deleted); register the runner again", "error", err)
				return
			}
			logger.Warn("replacing the runner token failed; trying again", "error", err, "expires_at", tok.ExpiresAt, "retry_in", rotationRetry)
			if !wait(rotationRetry) {
				return
			}
			// The next attempt at once: RotateAt is past.
			continue
		}
		expires, err := rc.Expires()
		if err != nil {
			logger.Warn("GitLab's expiry of the new runner token cannot be read; it is taken as never", "error", err)
		}
		next := Token{Token: rc.Token, ObtainedAt: clock.Now().UTC().Truncate(time.Second), ExpiresAt: expires}
		// The old token no longer works: the new one is used whether or
		// not it could be saved.
		if f.cfg.TokenRotated != nil {
			if err := f.cfg.TokenRotated(inst.opts.Name, next); err != nil {
				logger.Error("the runner token was replaced but the new one could not be saved: a restart would use the old one, which GitLab no longer takes", "error", err)
			}
		}
		inst.runner.SetToken(next.Token)
		f.mu.Lock()
		inst.opts.Token, inst.opts.TokenObtainedAt, inst.opts.TokenExpiresAt = next.Token, next.ObtainedAt, next.ExpiresAt
		f.mu.Unlock()
		logger.Info("runner token replaced", "expires_at", next.ExpiresAt)
		if next.ExpiresAt.IsZero() {
			return
		}
		tok = next
	}
}
