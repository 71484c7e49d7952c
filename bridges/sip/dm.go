package sip

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
)

// Keys in the module's store. A chat (portal) is "dm:<matrix user>|<sip aor>"; its
// messages are "<chat>|in:<call-id>|<from tag>|<cseq>" (from SIP) and "out:<event id>"
// (to SIP, recorded on the 2xx answer).

func dmChat(user id.UserID, peer sipuri.AOR) string {
	return "dm:" + user.String() + "|" + peer.String()
}

func parseDMChat(chat string) (id.UserID, sipuri.AOR, bool) {
	rest, ok := strings.CutPrefix(chat, "dm:")
	if !ok {
		return "", sipuri.AOR{}, false
	}
	user, peer, ok := strings.Cut(rest, "|")
	if !ok {
		return "", sipuri.AOR{}, false
	}
	a, err := sipuri.ParseAOR(peer)
	if err != nil {
		return "", sipuri.AOR{}, false
	}
	return id.UserID(user), a, true
}

// errNoSuchUser is a Matrix user that does not exist.
var errNoSuchUser = errors.New("no such Matrix user")

// dmRoom is the DM of user with peer, created when there is none (or the user left it):
// the peer's ghost creates the room and invites the user.
//
// A crash between the room's creation and the portal's record leaves an empty room
// behind, and a second one is made for the resent message; Matrix has no idempotent room
// creation to prevent that.
func (b *Bridge) dmRoom(ctx context.Context, user id.UserID, peer sipuri.AOR, create bool) (id.RoomID, error) {
	chat := dmChat(user, peer)
	// Every message of a DM comes here: the lock is only for opening one.
	if room, err := b.host.Store().PortalByKey(ctx, chat); err == nil && !b.dmGone(ctx, chat, room) {
		b.backfillBridgeInfo(ctx, room, peer)
		return room, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if room, err := b.host.Store().PortalByKey(ctx, chat); err == nil && !b.dmGone(ctx, chat, room) {
		return room, nil
	} else if err != nil && !errors.Is(err, appservice.ErrNotFound) {
		return "", err
	}
	if !create {
		return "", appservice.ErrNotFound
	}
	if _, _, err := b.host.Bot().Profile(ctx, user); errors.Is(err, appservice.ErrNotFound) {
		return "", errNoSuchUser
	}
	in, err := b.setupGhost(ctx, peer, "")
	if err != nil {
		return "", err
	}
	room, err := in.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{user},
		Name: "", Topic: "SIP chat with " + peer.URI(),
	})
	if err != nil {
		var httpErr mautrix.HTTPError
		if errors.As(err, &httpErr) && httpErr.RespError != nil && httpErr.RespError.ErrCode == "M_NOT_FOUND" {
			return "", errNoSuchUser
		}
		return "", fmt.Errorf("sip: open a DM with %s: %w", user, err)
	}
	if err := b.host.Store().PutPortal(ctx, chat, room); err != nil {
		return "", err
	}
	_ = b.host.Store().DeleteKV(ctx, "dm-gone:"+chat)
	b.setBridgeInfo(ctx, in, room, peer)
	zerolog.Ctx(ctx).Info().Stringer("room_id", room).Stringer("user_id", user).Msg("Opened a DM for a SIP user")
	return room, nil
}

// setupGhost registers the ghost of peer and sets its display name: the display name the
// peer's messages carry; without one, the name it has, or its address for a new ghost.
func (b *Bridge) setupGhost(ctx context.Context, peer sipuri.AOR, display string) (*appservice.Intent, error) {
	ghostID, err := b.ghostID(peer)
	if err != nil {
		return nil, err
	}
	in, err := b.host.Ghost(ghostID.Localpart())
	if err != nil {
		return nil, err
	}
	b.regMu.Lock()
	err = in.EnsureRegistered(ctx)
	b.regMu.Unlock()
	if err != nil {
		return nil, err
	}
	key := "name:" + peer.String()
	old, err := b.host.Store().GetKV(ctx, key)
	if err != nil && !errors.Is(err, appservice.ErrNotFound) {
		return nil, err
	}
	name := display
	if name == "" && old != "" {
		return in, nil // no name given: the one it has stays
	} else if name == "" {
		name = peer.String()
	}
	if old == name {
		return in, nil
	}
	if err := in.SetDisplayName(ctx, name); err != nil {
		return nil, err
	}
	_ = b.host.Store().PutKV(ctx, key, name)
	return in, nil
}

// QueryUser implements appservice.QueryHandler: every well-formed ghost of a SIP domain
// the bridge may reach exists.
func (b *Bridge) QueryUser(ctx context.Context, userID id.UserID) (bool, error) {
	peer, err := b.mapper.GhostAOR(userID.Localpart())
	if err != nil || !b.domains.Allows(peer.Host) {
		return false, nil
	}
	if _, err := b.setupGhost(ctx, peer, ""); err != nil {
		return false, err
	}
	return true, nil
}

// QueryAlias implements appservice.QueryHandler: the bridge has no aliases.
func (b *Bridge) QueryAlias(context.Context, id.RoomAlias) (bool, error) { return false, nil }

// inviteToGhost handles an invite of a ghost to a room that is no portal yet: the ghost
// joins and the room becomes the inviter's DM with that SIP user.
func (b *Bridge) inviteToGhost(ctx context.Context, evt *event.Event) error {
	mem := evt.Content.AsMember()
	if mem.Membership != event.MembershipInvite || evt.StateKey == nil {
		return nil
	}
	ghost := id.UserID(*evt.StateKey)
	if !b.isGhost(ghost) {
		return nil
	}
	peer, err := b.mapper.GhostAOR(ghost.Localpart())
	if err != nil {
		return nil
	}
	in, err := b.setupGhost(ctx, peer, "")
	if err != nil {
		return err
	}
	if !b.domains.Allows(peer.Host) {
		_ = in.LeaveRoom(ctx, evt.RoomID)
		return nil
	}
	b.mu.Lock()
	chat := dmChat(evt.Sender, peer)
	err = b.host.Store().PutPortal(ctx, chat, evt.RoomID)
	if err == nil {
		_ = b.host.Store().DeleteKV(ctx, "dm-gone:"+chat)
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	if err := in.JoinRoom(ctx, evt.RoomID); err != nil {
		return fmt.Errorf("sip: join %s: %w", evt.RoomID, err)
	}
	b.setBridgeInfo(ctx, in, evt.RoomID, peer) // needs the inviter to have given the power
	b.watch(ctx, peer)
	return nil
}

// dmMemberChange notes that the Matrix user left the DM: the next message from SIP opens
// a new DM instead of going to a room nobody reads.
func (b *Bridge) dmMemberChange(ctx context.Context, chat string, owner id.UserID, peer sipuri.AOR, evt *event.Event) error {
	mem := evt.Content.AsMember()
	if evt.StateKey == nil || id.UserID(*evt.StateKey) != owner ||
		(mem.Membership != event.MembershipLeave && mem.Membership != event.MembershipBan) {
		return nil
	}
	if err := b.host.Store().PutKV(ctx, "dm-gone:"+chat, evt.RoomID.String()); err != nil {
		return err
	}
	if ghostID, err := b.ghostID(peer); err == nil {
		if ghost, err := b.host.Ghost(ghostID.Localpart()); err == nil {
			_ = ghost.LeaveRoom(ctx, evt.RoomID) // best effort: nobody is left to read it
		}
	}
	return nil
}

// dmGone reports whether the user left the DM portal room.
func (b *Bridge) dmGone(ctx context.Context, chat string, room id.RoomID) bool {
	left, err := b.host.Store().GetKV(ctx, "dm-gone:"+chat)
	return err == nil && left == room.String()
}
