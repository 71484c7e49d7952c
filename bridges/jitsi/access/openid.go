package access

import (
	"context"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/openid"
)

// errInvalidToken is returned by userinfo for a token the homeserver does not know and for a
// sub that is not a user of ServerName.
var errInvalidToken = openid.ErrInvalidToken

// userinfo asks the homeserver whose the OpenID token is (internal/openid). It returns
// errInvalidToken when the token is refused, or another error when the homeserver could not
// be asked. Errors never contain the token.
func (h *Handler) userinfo(ctx context.Context, token string) (id.UserID, error) {
	return h.openid.UserID(ctx, token)
}

// truncate bounds s for a log field.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
