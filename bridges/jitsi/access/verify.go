package access

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// maxPowerLevel is the largest level answered (a room creator's infinite power in room
// version 12 included): the largest integer a JSON reader using doubles (Prosody's Lua) keeps.
const maxPowerLevel = 1<<53 - 1

// userAnswer is UVS's answer of /verify/user.
type userAnswer struct {
	Results userResults `json:"results"`
	UserID  *id.UserID  `json:"user_id"`
}

type userResults struct {
	User bool `json:"user"`
}

// roomAnswer is UVS's answer of /verify/user_in_room.
type roomAnswer struct {
	Results     roomResults  `json:"results"`
	UserID      *id.UserID   `json:"user_id"`
	PowerLevels *powerLevels `json:"power_levels"`
}

type roomResults struct {
	User           bool  `json:"user"`
	RoomMembership *bool `json:"room_membership"`
}

// powerLevels is UVS's power_levels: the room's m.room.power_levels content without
// "users", and the user's level.
type powerLevels struct {
	Room json.RawMessage `json:"room"`
	User int64           `json:"user"`
}

// serveVerifyUser serves POST /verify/user.
func (h *Handler) serveVerifyUser(w http.ResponseWriter, r *http.Request) {
	if e := h.checkBearer(r); e != nil {
		writeRefusal(w, e)
		return
	}
	req, e := decodeRequest(w, r, h.cfg.MaxBodyBytes, "token")
	if e != nil {
		writeRefusal(w, e)
		return
	}
	userID, e := h.verifyToken(r.Context(), req)
	if e != nil {
		writeRefusalWith(w, e, withUVS(e, userAnswer{}))
		return
	}
	writeJSON(w, http.StatusOK, userAnswer{Results: userResults{User: true}, UserID: &userID})
}

// serveVerifyUserInRoom serves POST /verify/user_in_room.
func (h *Handler) serveVerifyUserInRoom(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if e := h.checkBearer(r); e != nil {
		writeRefusal(w, e)
		return
	}
	req, e := decodeRequest(w, r, h.cfg.MaxBodyBytes, "token", "room_id")
	if e != nil {
		writeRefusal(w, e)
		return
	}
	userID, e := h.verifyToken(ctx, req)
	if e != nil {
		writeRefusalWith(w, e, withUVS(e, roomAnswer{}))
		return
	}
	roomID := req.roomID()
	displayName, e := h.verifyMember(ctx, roomID, userID)
	if e != nil {
		no := false
		writeRefusalWith(w, e, withUVS(e, roomAnswer{Results: roomResults{User: true, RoomMembership: &no}, UserID: &userID}))
		return
	}
	pl, err := h.powerLevels(ctx, roomID, userID)
	if errors.Is(err, ErrBotNotInRoom) {
		no := false
		writeRefusalWith(w, errBotOut, roomAnswer{Results: roomResults{User: true, RoomMembership: &no}, UserID: &userID})
		return
	} else if err != nil {
		// Like UVS: the user is a member, only the levels are unknown.
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room_id", roomID).Msg("Failed to read the room's power levels")
	}
	yes := true
	writeJSON(w, http.StatusOK, roomAnswer{Results: roomResults{User: true, RoomMembership: &yes}, UserID: &userID, PowerLevels: pl})
	h.verified(ctx, roomID, userID, displayName)
}

// withUVS returns uvs for refusals that UVS answers with its body (token and membership
// refusals, homeserver failures), nil for the others.
func withUVS(e *refusal, uvs any) any {
	switch e.status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadGateway:
		return uvs
	}
	return nil
}

// checkBearer checks the Authorization header against AuthToken ("" disables the check).
func (h *Handler) checkBearer(r *http.Request) *refusal {
	if h.cfg.AuthToken == "" {
		return nil
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") ||
		subtle.ConstantTimeCompare([]byte(token), []byte(h.cfg.AuthToken)) != 1 {
		zerolog.Ctx(r.Context()).Warn().Bool("header_present", r.Header.Get("Authorization") != "").
			Msg("Refused a verify request without the right bearer token")
		return errBearer
	}
	return nil
}

// verifyToken checks the request's server name and OpenID token and applies the per-user
// rate limit.
func (h *Handler) verifyToken(ctx context.Context, req *request) (id.UserID, *refusal) {
	log := zerolog.Ctx(ctx)
	if req.ServerName != "" && req.ServerName != h.cfg.ServerName {
		log.Debug().Str("matrix_server_name", truncate(req.ServerName, 300)).Msg("Refused an OpenID token of another server")
		return "", &refusal{status: http.StatusForbidden, errcode: codeForbidden,
			msg: fmt.Sprintf("OpenID tokens of %s are not accepted here", truncate(req.ServerName, 255))}
	}
	userID, err := h.userinfo(ctx, req.Token)
	switch {
	case errors.Is(err, errInvalidToken):
		return "", errToken
	case err != nil:
		log.Warn().Err(err).Msg("Failed to check an OpenID token with the homeserver")
		return "", errUpstream
	}
	if wait, ok := h.perUser.allow(string(userID)); !ok {
		log.Debug().Stringer("user_id", userID).Msg("Rate limited a user")
		return "", rateLimited("this user", wait)
	}
	return userID, nil
}

// verifyMember checks that userID is joined to roomID and returns their display name.
func (h *Handler) verifyMember(ctx context.Context, roomID id.RoomID, userID id.UserID) (string, *refusal) {
	log := zerolog.Ctx(ctx).With().Stringer("room_id", roomID).Stringer("user_id", userID).Logger()
	membership, displayName, err := h.state.Membership(ctx, roomID, userID)
	switch {
	case errors.Is(err, ErrBotNotInRoom):
		log.Debug().Msg("Refused a user: the bot is not in the room")
		return "", errBotOut
	case err != nil:
		log.Warn().Err(err).Msg("Failed to read a membership")
		return "", errUpstream
	case membership == event.MembershipBan:
		log.Debug().Msg("Refused a banned user")
		return "", errBanned
	case membership != event.MembershipJoin:
		log.Debug().Str("membership", truncate(string(membership), 20)).Msg("Refused a user who is not joined")
		return "", errNotIn
	}
	log.Debug().Msg("Verified a room member")
	return displayName, nil
}

// powerLevels returns UVS's power_levels for userID, nil when the room has none.
func (h *Handler) powerLevels(ctx context.Context, roomID id.RoomID, userID id.UserID) (*powerLevels, error) {
	pl, raw, err := h.state.PowerLevels(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("failed to get the power levels of %s: %w", roomID, err)
	}
	if len(raw) == 0 || string(raw) == "null" {
		if pl == nil {
			return nil, nil
		}
		if raw, err = json.Marshal(pl); err != nil {
			return nil, fmt.Errorf("failed to encode the power levels of %s: %w", roomID, err)
		}
	}
	var content map[string]json.RawMessage
	if err := json.Unmarshal(raw, &content); err != nil {
		return nil, fmt.Errorf("failed to decode the power levels of %s: %w", roomID, err)
	}
	if pl == nil {
		pl = &event.PowerLevelsEventContent{}
		if err := json.Unmarshal(raw, pl); err != nil {
			return nil, fmt.Errorf("failed to decode the power levels of %s: %w", roomID, err)
		}
	}
	delete(content, "users")
	room, err := json.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("failed to encode the power levels of %s: %w", roomID, err)
	}
	level := int64(pl.GetUserLevel(userID))
	if level > maxPowerLevel {
		level = maxPowerLevel
	}
	return &powerLevels{Room: room, User: level}, nil
}

// verified calls OnVerified when set.
func (h *Handler) verified(ctx context.Context, roomID id.RoomID, userID id.UserID, displayName string) {
	if h.cfg.OnVerified != nil {
		h.cfg.OnVerified(ctx, roomID, userID, displayName)
	}
}
