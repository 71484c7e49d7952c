package access

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
)

// jwtNotBeforeSkew is how far before now a minted JWT becomes valid (clock skew).
const jwtNotBeforeSkew = 10 * time.Second

// minRSABits is the smallest RS256 key accepted.
const minRSABits = 2048

// tokenAnswer is the answer of POST /token.
type tokenAnswer struct {
	JWT        string `json:"jwt"`
	Conference string `json:"conference"`
	URL        string `json:"url"`
	ExpiresAt  int64  `json:"expires_at"` // unix seconds
}

// validate applies defaults to c and returns its problems.
func (c *JWTConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: JWT."+format, append([]any{ErrConfig}, args...)...))
	}
	if c.Issuer == "" {
		bad("Issuer (Jitsi's app_id) is required")
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	switch {
	case c.TTL < 0:
		bad("TTL must not be negative")
	case c.TTL == 0:
		c.TTL = DefaultJWTTTL
	}
	switch {
	case len(c.Secret) > 0 && c.PrivateKey != nil:
		bad("Secret and PrivateKey are exclusive")
	case len(c.Secret) == 0 && c.PrivateKey == nil:
		bad("Secret (HS256) or PrivateKey (RS256) is required")
	case c.PrivateKey != nil:
		if c.KeyID == "" {
			bad("KeyID is required with PrivateKey")
		}
		if err := c.PrivateKey.Validate(); err != nil {
			bad("PrivateKey: %v", err)
		} else if bits := c.PrivateKey.N.BitLen(); bits < minRSABits {
			bad("PrivateKey has %d bits, at least %d are required", bits, minRSABits)
		}
	}
	return errs
}

// mint signs a Jitsi JWT for userID in conference.
func (c *JWTConfig) mint(now time.Time, conference string, userID id.UserID, displayName string) (string, time.Time, error) {
	exp := now.Add(c.TTL)
	user := map[string]any{"id": userID.String()}
	if displayName != "" {
		user["name"] = displayName
	} else {
		user["name"] = userID.Localpart()
	}
	claims := jwt.MapClaims{
		"iss":     c.Issuer,
		"aud":     c.Audience, // a string: Jitsi's token checks do not take an array
		"sub":     c.Subject,
		"room":    conference,
		"iat":     now.Unix(),
		"nbf":     now.Add(-jwtNotBeforeSkew).Unix(),
		"exp":     exp.Unix(),
		"context": map[string]any{"user": user},
	}
	var (
		signed string
		err    error
	)
	if c.PrivateKey != nil {
		t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		t.Header["kid"] = c.KeyID
		signed, err = t.SignedString(c.PrivateKey)
	} else {
		signed, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(c.Secret)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("access: failed to sign a JWT: %w", err)
	}
	return signed, exp, nil
}

// serveToken serves POST /token: the checks of /verify/user_in_room, then a Jitsi JWT.
func (h *Handler) serveToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, e := decodeRequest(w, r, h.cfg.MaxBodyBytes, "token", "room_id")
	if e != nil {
		writeRefusal(w, e)
		return
	}
	userID, e := h.verifyToken(ctx, req)
	if e != nil {
		writeRefusal(w, e)
		return
	}
	roomID := req.roomID()
	displayName, e := h.verifyMember(ctx, roomID, userID)
	if e != nil {
		writeRefusal(w, e)
		return
	}
	conference := h.cfg.Conference(roomID)
	if conference == "" {
		zerolog.Ctx(ctx).Error().Stringer("room_id", roomID).Msg("The room has no conference name")
		writeRefusal(w, &refusal{status: http.StatusInternalServerError, errcode: codeUnknown, msg: "the room has no conference"})
		return
	}
	signed, exp, err := h.jwt.mint(h.cfg.Now(), conference, userID, displayName)
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(errors.Unwrap(err)).Msg("Failed to sign a Jitsi JWT")
		writeRefusal(w, &refusal{status: http.StatusInternalServerError, errcode: codeUnknown, msg: "the JWT could not be signed"})
		return
	}
	writeJSON(w, http.StatusOK, tokenAnswer{
		JWT:        signed,
		Conference: conference,
		URL:        h.meetURL + "/" + url.PathEscape(conference) + "?jwt=" + url.QueryEscape(signed),
		ExpiresAt:  exp.Unix(),
	})
	h.verified(ctx, roomID, userID, displayName)
}
