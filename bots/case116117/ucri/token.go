package ucri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
)

// Token lifetimes and renewal.
const (
	// defaultTokenLifetime is assumed for a token without an exp claim.
	defaultTokenLifetime = 5 * time.Minute
	// minRenewBefore is the least time before expiry at which the default policy renews.
	minRenewBefore = 30 * time.Second
	// renewFraction is the share of the lifetime left at which the default policy renews.
	renewFraction = 0.2
)

// tokenState is a cached access token. The token text never goes into an error or a log.
type tokenState struct {
	token   string
	renewAt time.Time // local clock; after it the token is fetched again
}

// tokenFlight is one fetch of /token that concurrent callers share.
type tokenFlight struct {
	done  chan struct{} // closed when token and err are set
	token string
	err   error
}

// token returns a valid access token: the cached one, or a new one from /token. Concurrent
// callers share one fetch; a caller whose ctx ends stops waiting, and if the fetching
// caller's ctx ended, a waiting caller fetches itself.
func (c *Client) token(ctx context.Context) (string, error) {
	for {
		c.mu.Lock()
		if c.tok.token != "" && c.now().Before(c.tok.renewAt) {
			t := c.tok.token
			c.mu.Unlock()
			return t, nil
		}
		if f := c.flight; f != nil {
			c.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", fmt.Errorf("ucri: token: %w", ctx.Err())
			}
			if f.err != nil && isContextError(f.err) && ctx.Err() == nil {
				continue // the fetching caller gave up; try again on our own ctx
			}
			return f.token, f.err
		}
		f := &tokenFlight{done: make(chan struct{})}
		c.flight = f
		c.mu.Unlock()

		f.token, f.err = c.fetchToken(ctx)

		c.mu.Lock()
		c.flight = nil
		c.mu.Unlock()
		close(f.done)
		return f.token, f.err
	}
}

// dropToken forgets the cached token if it is still the one given (a caller that got a 401
// must not drop a newer token another caller just fetched).
func (c *Client) dropToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.token == token {
		c.tok = tokenState{}
	}
}

// fetchToken gets a new token from /token with HTTP Basic and caches it.
func (c *Client) fetchToken(ctx context.Context) (string, error) {
	const op = "token"
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	fetched := c.now()
	resp, err := c.roundTrip(ctx, op, http.MethodGet, "/token", nil, func(r *http.Request) {
		r.SetBasicAuth(c.username, c.password)
	})
	if err != nil {
		return "", err
	}
	if resp.status == http.StatusUnauthorized {
		return "", fmt.Errorf("ucri: the UCRM refused the credentials of user %q: %w: %w",
			c.username, ErrUnauthorized, resp.apiError(op))
	}
	if resp.status != http.StatusOK {
		return "", resp.apiError(op)
	}
	if err := resp.requireJSON(op); err != nil {
		return "", err
	}
	var body struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		// The JSON error could quote the token; don't wrap it.
		return "", fmt.Errorf("ucri: token: the UCRM's answer is not a token object")
	}
	if body.Token == "" {
		return "", fmt.Errorf("ucri: token: the UCRM's answer has no token")
	}
	lifetime, err := tokenLifetime(body.Token, fetched)
	if err != nil {
		return "", err
	}
	renewAt := fetched.Add(lifetime - c.renewBefore(lifetime))
	c.mu.Lock()
	c.tok = tokenState{token: body.Token, renewAt: renewAt}
	c.mu.Unlock()
	zerolog.Ctx(ctx).Debug().Dur("lifetime", lifetime).Time("renew_at", renewAt).
		Msg("ucri: fetched UCRM access token")
	return body.Token, nil
}

// tokenLifetime reads iat and exp of a JWT without verifying it (the HS256 secret is the
// UCRM's). The lifetime is exp-iat when both are set, which is immune to clock skew between
// the UCRM and us; exp-fetched with exp alone; defaultTokenLifetime without exp. A token
// that already looks expired gets lifetime 0: it is used once and fetched again next time.
func tokenLifetime(token string, fetched time.Time) (time.Duration, error) {
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		// The parser's error may quote parts of the token; don't wrap it.
		return 0, errors.New("ucri: token: the UCRM returned a malformed JWT")
	}
	exp, err := claims.GetExpirationTime()
	if err != nil {
		return 0, errors.New("ucri: token: the JWT has an invalid exp claim")
	}
	iat, err := claims.GetIssuedAt()
	if err != nil {
		return 0, errors.New("ucri: token: the JWT has an invalid iat claim")
	}
	var lifetime time.Duration
	switch {
	case exp == nil:
		lifetime = defaultTokenLifetime
	case iat != nil:
		lifetime = exp.Sub(iat.Time)
	default:
		lifetime = exp.Sub(fetched)
	}
	return max(lifetime, 0), nil
}

// renewBefore is how long before expiry a token of the given lifetime is renewed:
// cfg.RenewBefore, or by default when 20 % of the lifetime is left but at least 30 s before
// expiry; never more than half the lifetime, so that a short-lived token is still reused.
func (c *Client) renewBefore(lifetime time.Duration) time.Duration {
	d := c.renewBeforeCfg
	if d == 0 {
		d = max(time.Duration(float64(lifetime)*renewFraction), minRenewBefore)
	}
	return min(d, lifetime/2)
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
