// Package openid checks Matrix OpenID tokens (the spec's "OpenID" section): a client asks
// its homeserver for a short-lived token with POST /_matrix/client/v3/user/{userId}/openid/request_token
// and hands it to a service, which asks the homeserver whose it is with
// GET /_matrix/federation/v1/openid/userinfo. The token authenticates the user to the
// service without giving it the user's access token.
//
// The token is a credential: it never appears in errors or log fields, and the userinfo
// request follows no redirect (its URL carries the token).
package openid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

// DefaultTimeout bounds one userinfo request.
const DefaultTimeout = 10 * time.Second

// UserinfoPath is the homeserver's endpoint that names a token's user.
const UserinfoPath = "/_matrix/federation/v1/openid/userinfo"

// maxAnswerBytes bounds the userinfo answer read.
const maxAnswerBytes = 64 << 10

// ErrInvalidToken is returned by [Verifier.UserID] for a token the homeserver does not know
// (or no longer knows: OpenID tokens expire after an hour or less) and for one whose user is
// not on the Verifier's server.
var ErrInvalidToken = errors.New("openid: the OpenID token is invalid or has expired")

// Verifier asks one homeserver whose OpenID tokens are.
type Verifier struct {
	// HomeserverURL is the base URL where the homeserver answers [UserinfoPath] (Synapse:
	// a listener with the "openid" or "federation" resource).
	HomeserverURL string
	// ServerName is the homeserver's server name: tokens that name a user of another server
	// are refused.
	ServerName string
	// Client asks the homeserver; nil: a client with DefaultTimeout. Its redirect policy is
	// replaced: redirects are never followed.
	Client *http.Client
}

// UserID asks the homeserver whose token is. It returns [ErrInvalidToken] when the
// homeserver refuses the token (400, 401, 403, 404) or names a user of another server, and
// another error when the homeserver could not be asked. Errors never contain the token.
func (v *Verifier) UserID(ctx context.Context, token string) (id.UserID, error) {
	if token == "" || len(token) > 1024 || strings.ContainsAny(token, " \t\r\n") {
		return "", ErrInvalidToken
	}
	base, err := url.Parse(strings.TrimSuffix(v.HomeserverURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", errors.New("openid: the homeserver URL is not an http(s) URL")
	}
	client := http.Client{Timeout: DefaultTimeout}
	if v.Client != nil {
		client = *v.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	u := base.String() + UserinfoPath + "?" + url.Values{"access_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		// Do not wrap err: it may quote the URL, and the URL holds the token.
		return "", errors.New("openid: failed to build the userinfo request")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		// A *url.Error carries the URL and so the token: keep only its cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("openid: failed to ask the homeserver's userinfo: %w", err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
		_ = resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		zerolog.Ctx(ctx).Debug().Int("status", resp.StatusCode).Msg("Homeserver refused the OpenID token")
		return "", ErrInvalidToken
	default:
		return "", fmt.Errorf("openid: the homeserver's userinfo answered status %d", resp.StatusCode)
	}
	var info struct {
		Sub json.RawMessage `json:"sub"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswerBytes)).Decode(&info); err != nil {
		return "", fmt.Errorf("openid: failed to decode the homeserver's userinfo answer: %w", err)
	}
	var sub string
	if err := json.Unmarshal(info.Sub, &sub); err != nil || sub == "" {
		return "", errors.New("openid: the homeserver's userinfo answer has no sub string")
	}
	if !strings.HasPrefix(sub, "@") || !strings.HasSuffix(sub, ":"+v.ServerName) || len(sub) > 255 {
		zerolog.Ctx(ctx).Warn().Str("sub", truncate(sub, 300)).Str("server_name", v.ServerName).
			Msg("OpenID userinfo names a user of another server")
		return "", ErrInvalidToken
	}
	return id.UserID(sub), nil
}

// truncate bounds s for a log field.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
