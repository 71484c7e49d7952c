package appservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice/asintent"
)

// Intent acts on Matrix as one of Switchboard's users (a ghost or the bot). It wraps
// mautrix's intent so that modules never hold the appservice token. Messages that must not
// be lost or doubled go through [Host.Send] or [Host.Enqueue]; the methods here are for
// room and profile management, which are idempotent by nature.
type Intent struct {
	api  *mas.IntentAPI // immutable; holds the as_token, never exposed
	core *Core          // immutable; nil in tests that build an Intent directly
	// module is the module the intent was given to (scanning's metrics); immutable.
	module string
}

// UserID is the Matrix user this intent acts as.
func (in *Intent) UserID() id.UserID { return in.api.UserID }

// ensureRegistered is mautrix's EnsureRegistered under the user's lock (asintent). Every
// call of a mautrix method that registers the user on its way (joins, sends, state,
// profile, uploads) comes after one of these.
func ensureRegistered(ctx context.Context, api *mas.IntentAPI) error {
	return asintent.EnsureRegistered(ctx, api)
}

// EnsureRegistered registers the user with the homeserver (inhibit_login) unless it is
// known to be registered.
func (in *Intent) EnsureRegistered(ctx context.Context) error {
	ctx = requestContext(ctx)
	if err := ensureRegistered(ctx, in.api); err != nil {
		return fmt.Errorf("failed to register %s: %w", in.api.UserID, requestError(err))
	}
	if in.core == nil {
		return nil
	}
	// With encryption, every user gets its device before it joins a room: members' clients
	// then share their room keys with it.
	if cm := in.core.crypto.Load(); cm != nil {
		if _, err := cm.Machine(ctx, in.api.UserID); err != nil {
			return fmt.Errorf("failed to set up the encryption device of %s: %w", in.api.UserID, err)
		}
	}
	return nil
}

// SetDisplayName sets the user's display name (skipped when unchanged).
func (in *Intent) SetDisplayName(ctx context.Context, name string) error {
	ctx = requestContext(ctx)
	if err := in.EnsureRegistered(ctx); err != nil {
		return err
	}
	return requestError(in.api.SetDisplayName(ctx, name))
}

// SetAvatarURL sets the user's avatar (skipped when unchanged).
func (in *Intent) SetAvatarURL(ctx context.Context, uri id.ContentURI) error {
	ctx = requestContext(ctx)
	if err := in.EnsureRegistered(ctx); err != nil {
		return err
	}
	return requestError(in.api.SetAvatarURL(ctx, uri))
}

// EnsureJoined joins the room, having the bot invite the user first when needed.
func (in *Intent) EnsureJoined(ctx context.Context, roomID id.RoomID) error {
	ctx = requestContext(ctx)
	if err := in.EnsureRegistered(ctx); err != nil {
		return err
	}
	return requestError(in.api.EnsureJoined(ctx, roomID))
}

// JoinRoom joins a room the user was invited to.
func (in *Intent) JoinRoom(ctx context.Context, roomID id.RoomID) error {
	ctx = requestContext(ctx)
	if err := in.EnsureRegistered(ctx); err != nil {
		return err
	}
	_, err := in.api.JoinRoomByID(ctx, roomID)
	return requestError(err)
}

// LeaveRoom leaves a room.
func (in *Intent) LeaveRoom(ctx context.Context, roomID id.RoomID) error {
	ctx = requestContext(ctx)
	_, err := in.api.LeaveRoom(ctx, roomID)
	return requestError(err)
}

// Invite invites userID to the room.
func (in *Intent) Invite(ctx context.Context, roomID id.RoomID, userID id.UserID) error {
	ctx = requestContext(ctx)
	return requestError(in.api.EnsureInvited(ctx, roomID, userID))
}

// CreateRoom creates a room as this user; for a DM set req.IsDirect and req.Invite.
func (in *Intent) CreateRoom(ctx context.Context, req *mautrix.ReqCreateRoom) (id.RoomID, error) {
	ctx = requestContext(ctx)
	if err := in.EnsureRegistered(ctx); err != nil {
		return "", err
	}
	if in.core != nil {
		req = in.core.withEncryption(req)
	}
	resp, err := in.api.CreateRoom(ctx, req)
	if err != nil {
		return "", fmt.Errorf("failed to create room as %s: %w", in.api.UserID, requestError(err))
	}
	return resp.RoomID, nil
}

// ResolveAlias returns the room an alias points to.
func (in *Intent) ResolveAlias(ctx context.Context, alias id.RoomAlias) (id.RoomID, error) {
	ctx = requestContext(ctx)
	resp, err := in.api.ResolveAlias(ctx, alias)
	if err != nil {
		return "", fmt.Errorf("failed to resolve %s: %w", alias, requestError(err))
	}
	return resp.RoomID, nil
}

// SendState sends a state event (state is idempotent by nature: the same content twice is
// one state).
func (in *Intent) SendState(ctx context.Context, roomID id.RoomID, evtType event.Type, stateKey string, content any) (id.EventID, error) {
	ctx = requestContext(ctx)
	if err := ensureRegistered(ctx, in.api); err != nil {
		return "", requestError(err)
	}
	resp, err := in.api.SendStateEvent(ctx, roomID, evtType, stateKey, content)
	if err != nil {
		return "", requestError(err)
	}
	return resp.EventID, nil
}

// Redact redacts an event. txnID should be derived from the remote deletion's id so that a
// retried redaction is the same request.
func (in *Intent) Redact(ctx context.Context, roomID id.RoomID, eventID id.EventID, reason, txnID string) error {
	ctx = requestContext(ctx)
	if err := ensureRegistered(ctx, in.api); err != nil {
		return requestError(err)
	}
	_, err := in.api.RedactEvent(ctx, roomID, eventID, mautrix.ReqRedact{Reason: reason, TxnID: txnID})
	return requestError(err)
}

// Typing sets or clears the user's typing notification.
func (in *Intent) Typing(ctx context.Context, roomID id.RoomID, typing bool, timeout time.Duration) error {
	ctx = requestContext(ctx)
	_, err := in.api.UserTyping(ctx, roomID, typing, timeout)
	return requestError(err)
}

// MarkRead sends a read receipt for eventID.
func (in *Intent) MarkRead(ctx context.Context, roomID id.RoomID, eventID id.EventID) error {
	ctx = requestContext(ctx)
	return requestError(in.api.MarkRead(ctx, roomID, eventID))
}

// SetPresence sets the user's presence ("online", "offline", "unavailable").
func (in *Intent) SetPresence(ctx context.Context, presence event.Presence, status string) error {
	ctx = requestContext(ctx)
	return requestError(in.api.SetPresence(ctx, mautrix.ReqPresence{Presence: presence, StatusMsg: status}))
}

// UploadMedia uploads data and returns its mxc URI.
func (in *Intent) UploadMedia(ctx context.Context, data []byte, contentType, fileName string) (id.ContentURI, error) {
	ctx = requestContext(ctx)
	if err := in.EnsureRegistered(ctx); err != nil {
		return id.ContentURI{}, err
	}
	resp, err := in.api.UploadMedia(ctx, mautrix.ReqUploadMedia{
		ContentBytes: data, ContentType: contentType, FileName: fileName,
	})
	if err != nil {
		return id.ContentURI{}, fmt.Errorf("failed to upload media: %w", requestError(err))
	}
	return resp.ContentURI, nil
}

// DownloadMedia downloads an mxc URI, at most maxBytes of it. It uses authenticated media
// (MSC3916, /_matrix/client/v1/media) when the homeserver advertises it and falls back to
// the legacy media API otherwise.
func (in *Intent) DownloadMedia(ctx context.Context, uri id.ContentURI, maxBytes int64) ([]byte, error) {
	ctx = requestContext(ctx)
	resp, err := in.api.Download(ctx, uri)
	if isUnsupportedEndpoint(err) {
		// The homeserver predates authenticated media (spec v1.11): use the legacy API.
		_, resp, err = in.api.MakeFullRequestWithResp(ctx, mautrix.FullRequest{
			Method:           http.MethodGet,
			URL:              in.api.BuildURL(mautrix.MediaURLPath{"v3", "download", uri.Homeserver, uri.FileID}),
			DontReadResponse: true,
		})
	}
	if err != nil {
		return nil, fmt.Errorf("failed to download %s: %w", uri, requestError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("failed to download %s: %w", uri, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("failed to download %s: larger than %d bytes", uri, maxBytes)
	}
	return data, nil
}

// isUnsupportedEndpoint reports whether err says the homeserver does not know the endpoint
// (404 or 405 with M_UNRECOGNIZED or no Matrix error at all).
func isUnsupportedEndpoint(err error) bool {
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) || httpErr.Response == nil {
		return false
	}
	code := httpErr.Response.StatusCode
	if code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		return false
	}
	return httpErr.RespError == nil || httpErr.RespError.ErrCode == mautrix.MUnrecognized.ErrCode
}

// Kick removes userID from the room with a reason.
func (in *Intent) Kick(ctx context.Context, roomID id.RoomID, userID id.UserID, reason string) error {
	ctx = requestContext(ctx)
	_, err := in.api.KickUser(ctx, roomID, &mautrix.ReqKickUser{UserID: userID, Reason: reason})
	return requestError(err)
}

// Ban bans userID from the room with a reason.
func (in *Intent) Ban(ctx context.Context, roomID id.RoomID, userID id.UserID, reason string) error {
	ctx = requestContext(ctx)
	_, err := in.api.BanUser(ctx, roomID, &mautrix.ReqBanUser{UserID: userID, Reason: reason})
	return requestError(err)
}

// Profile returns a user's display name and avatar. A user the homeserver does not know
// is ErrNotFound: any 404, whatever its errcode. Dendrite answers M_NOT_FOUND; Synapse
// answers M_UNKNOWN ("No row found") for a user who was never registered and M_NOT_FOUND
// only for one without name and avatar.
func (in *Intent) Profile(ctx context.Context, userID id.UserID) (string, id.ContentURI, error) {
	ctx = requestContext(ctx)
	resp, err := in.api.GetProfile(ctx, userID)
	var httpErr mautrix.HTTPError
	if errors.Is(err, mautrix.MNotFound) || errors.As(err, &httpErr) && httpErr.Response != nil && httpErr.Response.StatusCode == http.StatusNotFound {
		return "", id.ContentURI{}, fmt.Errorf("profile of %s: %w", userID, ErrNotFound)
	}
	if err != nil {
		return "", id.ContentURI{}, requestError(err)
	}
	return resp.DisplayName, resp.AvatarURL, nil
}

// JoinedMembers returns the room's joined members with their display names.
func (in *Intent) JoinedMembers(ctx context.Context, roomID id.RoomID) (map[id.UserID]string, error) {
	ctx = requestContext(ctx)
	resp, err := in.api.JoinedMembers(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("failed to list the members of %s: %w", roomID, requestError(err))
	}
	out := make(map[id.UserID]string, len(resp.Joined))
	for user, m := range resp.Joined {
		out[user] = m.DisplayName
	}
	return out, nil
}

// JoinedRooms returns the rooms the user is joined to.
func (in *Intent) JoinedRooms(ctx context.Context) ([]id.RoomID, error) {
	ctx = requestContext(ctx)
	resp, err := in.api.JoinedRooms(ctx)
	if err != nil {
		return nil, fmt.Errorf("failed to list the joined rooms: %w", requestError(err))
	}
	return resp.JoinedRooms, nil
}

// StateEvent reads a state event's content into out; a missing event is ErrNotFound.
func (in *Intent) StateEvent(ctx context.Context, roomID id.RoomID, evtType event.Type, stateKey string, out any) error {
	ctx = requestContext(ctx)
	if err := ensureRegistered(ctx, in.api); err != nil {
		return requestError(err)
	}
	err := in.api.StateEvent(ctx, roomID, evtType, stateKey, out)
	if errors.Is(err, mautrix.MNotFound) {
		return fmt.Errorf("state %s of %s: %w", evtType.Type, roomID, ErrNotFound)
	}
	return requestError(err)
}

// FullStateEvent reads a whole state event (sender, ID and content), such as a room's
// create event, whose sender is a creator with unlimited power in rooms of version 12 and
// later; a missing event is ErrNotFound.
func (in *Intent) FullStateEvent(ctx context.Context, roomID id.RoomID, evtType event.Type, stateKey string) (*event.Event, error) {
	ctx = requestContext(ctx)
	evt, err := in.api.FullStateEvent(ctx, roomID, evtType, stateKey)
	if errors.Is(err, mautrix.MNotFound) {
		return nil, fmt.Errorf("state %s of %s: %w", evtType.Type, roomID, ErrNotFound)
	} else if err != nil {
		return nil, requestError(err)
	}
	if evt.Content.Parsed == nil {
		_ = evt.Content.ParseRaw(evtType)
	}
	return evt, nil
}
