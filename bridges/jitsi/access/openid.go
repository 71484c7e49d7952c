package access

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

// maxUserinfoBytes bounds the userinfo answer read.
const maxUserinfoBytes = 64 << 10

// errInvalidToken is returned by userinfo for a token the homeserver does not know and for a
// sub that is not a user of ServerName.
var errInvalidToken = errors.New("access: the OpenID token is invalid or has expired")

// userinfo asks the homeserver whose the OpenID token is. It returns errInvalidToken when
// the token is refused (401/403/404, or a sub that is not on ServerName), or another
// error when the homeserver could not be asked. Errors never contain the token.
func (h *Handler) userinfo(ctx context.Context, token string) (id.UserID, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	u := h.userinfoURL + "?" + url.Values{"access_token": {token}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		// The URL was checked by New; the token is query-escaped. Do not wrap err: it may
		// quote the URL.
		return "", errors.New("access: failed to build the userinfo request")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		// A *url.Error carries the URL and so the token: keep only its cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("access: failed to ask the homeserver's userinfo: %w", err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxUserinfoBytes))
		_ = resp.Body.Close()
	}()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden ||
		resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest:
		zerolog.Ctx(ctx).Debug().Int("status", resp.StatusCode).Msg("Homeserver refused the OpenID token")
		return "", errInvalidToken
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("access: the homeserver's userinfo answered status %d", resp.StatusCode)
	}
	var info struct {
		Sub json.RawMessage `json:"sub"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxUserinfoBytes)).Decode(&info); err != nil {
		return "", fmt.Errorf("access: failed to decode the homeserver's userinfo answer: %w", err)
	}
	var sub string
	if err := json.Unmarshal(info.Sub, &sub); err != nil || sub == "" {
		return "", errors.New("access: the homeserver's userinfo answer has no sub string")
	}
	userID := id.UserID(sub)
	if !strings.HasPrefix(sub, "@") || !strings.HasSuffix(sub, ":"+h.cfg.ServerName) || len(sub) > 255 {
		zerolog.Ctx(ctx).Warn().Str("sub", truncate(sub, 300)).Str("server_name", h.cfg.ServerName).
			Msg("OpenID userinfo names a user of another server")
		return "", errInvalidToken
	}
	return userID, nil
}

// truncate bounds s for a log field.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
