package xmpp

import (
	"context"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/iq"
)

// createDM opens a Matrix DM for a message from peer to user: the peer's ghost creates
// the room and invites the user.
//
// A crash between the room's creation and the portal's record leaves an empty room
// behind and a second one is made for the resent message; Matrix has no idempotent room
// creation to prevent that.
func (b *Bridge) createDM(ctx context.Context, user id.UserID, peer jid.JID, ghost id.UserID) (id.RoomID, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	chat := dmChat(user, peer)
	if room, err := b.host.Store().PortalByKey(ctx, chat); err == nil && !b.dmGone(ctx, chat, room) {
		return room, nil
	}
	// The profile tells an unknown user on both homeservers. The invite cannot: Dendrite
	// refuses to invite a local user who does not exist (M_NOT_FOUND, below), Synapse
	// invites them.
	if _, _, err := b.host.Bot().Profile(ctx, user); errors.Is(err, appservice.ErrNotFound) {
		return "", refusal{"cancel", "item-not-found", "There is no Matrix user " + user.String() + "."}
	}
	in, err := b.setupGhost(ctx, ghost, peer)
	if err != nil {
		return "", err
	}
	room, err := in.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{user},
	})
	if err != nil {
		var httpErr mautrix.HTTPError
		if errors.As(err, &httpErr) && httpErr.RespError != nil && httpErr.RespError.ErrCode == "M_NOT_FOUND" {
			return "", refusal{"cancel", "item-not-found", "There is no Matrix user " + user.String() + "."}
		}
		return "", fmt.Errorf("xmpp: open a DM with %s: %w", user, err)
	}
	if err := b.host.Store().PutPortal(ctx, chat, room); err != nil {
		return "", err
	}
	if err := b.addDMPeer(ctx, user, peer); err != nil {
		return "", err
	}
	b.setBridgeInfo(ctx, in, room, peer, false)
	zerolog.Ctx(ctx).Info().Stringer("room_id", room).Stringer("user_id", user).Msg("Opened a DM for an XMPP user")
	return room, nil
}

// setupGhost registers the ghost of j and sets its display name: the name from the
// user's profile when known (see refreshProfile), else the bare JID; for the ghost of an
// occupant whose real JID is hidden, its nick. The profile is fetched in the background.
// A MUC nick never becomes the global name of a real JID's ghost: it is the ghost's name
// in that room only (ghostInRoom).
func (b *Bridge) setupGhost(ctx context.Context, ghost id.UserID, j jid.JID) (*appservice.Intent, error) {
	in, err := b.host.Ghost(ghost.Localpart())
	if err != nil {
		return nil, err
	}
	if err := b.ensureRegistered(ctx, in); err != nil {
		return nil, err
	}
	name := j.Resourcepart()
	if name == "" {
		name = j.Bare().String()
		if known, err := b.host.Store().GetKV(ctx, profileNameKey(j)); err == nil && known != "" {
			name = known
		}
	}
	if err := in.SetDisplayName(ctx, name); err != nil {
		return nil, err
	}
	if j.Resourcepart() == "" {
		b.loops.Go(func(run context.Context) { b.refreshProfile(zerolog.Ctx(ctx).WithContext(run), in, j) })
	}
	return in, nil
}

// ensureRegistered registers a ghost with the homeserver under the bridge's lock: mautrix's
// intent keeps its "registered" flag unguarded, so two first uses of one ghost at once (the
// homeserver asking about it while its presence arrives, say) would race on it. Every
// first use of a ghost in the bridge goes through here (setupGhost, contactPresence).
func (b *Bridge) ensureRegistered(ctx context.Context, in *appservice.Intent) error {
	b.regMu.Lock()
	defer b.regMu.Unlock()
	return in.EnsureRegistered(ctx)
}

// avatarChanged refreshes the ghost's avatar when a contact's presence announces a photo
// (XEP-0153) other than the one the ghost has.
func (b *Bridge) avatarChanged(ctx context.Context, ghost *appservice.Intent, j jid.JID, hash string) {
	if old, _ := b.host.Store().GetKV(ctx, "avatar:"+j.Bare().String()); old == hash {
		return
	}
	b.loops.Go(func(run context.Context) { b.refreshProfile(zerolog.Ctx(ctx).WithContext(run), ghost, j) })
}

// query sends an iq from the component and waits for the answer. It must not be called
// from the stanza handler (the answer is delivered by it).
func (b *Bridge) query(ctx context.Context, typ string, to jid.JID, payload []byte) (*iq.IQ, error) {
	qid := b.iqs.NewID()
	p := b.iqs.Expect(qid, to)
	defer p.Cancel()
	if err := b.send(ctx, iq.Build(typ, qid, b.componentJID(), to, payload)); err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// QueryUser implements appservice.QueryHandler: every well-formed ghost exists.
func (b *Bridge) QueryUser(ctx context.Context, userID id.UserID) (bool, error) {
	j, err := b.mapper.JIDForGhost(userID)
	if err != nil {
		return false, nil
	}
	if _, err := b.setupGhost(ctx, userID, j); err != nil {
		return false, err
	}
	return true, nil
}

// dmMemberChange notes that the Matrix user of a DM left it: the next message from XMPP
// opens a new DM instead of going to a room nobody reads.
func (b *Bridge) dmMemberChange(ctx context.Context, chat string, owner id.UserID, evt *event.Event) error {
	mem := evt.Content.AsMember()
	if id.UserID(*evt.StateKey) != owner || (mem.Membership != event.MembershipLeave && mem.Membership != event.MembershipBan) {
		return nil
	}
	if err := b.host.Store().PutKV(ctx, "dm-gone:"+chat, evt.RoomID.String()); err != nil {
		return err
	}
	if _, peer, ok := parseDMChat(chat); ok {
		if ghostID, err := b.mapper.GhostUserID(peer); err == nil {
			if ghost, err := b.host.Ghost(ghostID.Localpart()); err == nil {
				_ = ghost.LeaveRoom(ctx, evt.RoomID) // best effort: nobody is left to read it
			}
		}
	}
	return nil
}

// dmGone reports whether the user left the DM portal room.
func (b *Bridge) dmGone(ctx context.Context, chat string, room id.RoomID) bool {
	left, err := b.host.Store().GetKV(ctx, "dm-gone:"+chat)
	return err == nil && left == room.String()
}

// inviteToGhost handles an invite of a ghost to a room that is no portal yet: the ghost
// joins, and a DM invite (or a room with just the two) becomes the inviter's DM portal
// with that XMPP user.
func (b *Bridge) inviteToGhost(ctx context.Context, evt *event.Event) error {
	mem := evt.Content.AsMember()
	if mem.Membership != event.MembershipInvite || evt.StateKey == nil {
		return nil
	}
	ghost := id.UserID(*evt.StateKey)
	peer, err := b.mapper.JIDForGhost(ghost)
	if err != nil {
		return nil // an occupant ghost or a malformed one: not invitable
	}
	in, err := b.setupGhost(ctx, ghost, peer)
	if err != nil {
		return err
	}
	// The portal is recorded before the join: once the inviter sees the ghost join, a
	// message from the XMPP user goes to this room (not to a new DM), and the inviter's
	// presence reaches the XMPP user. A message queued before the join waits for it (the
	// outbox retries, and a failed join is retried with this event).
	if err := b.recordDM(ctx, evt.Sender, peer, evt.RoomID); err != nil {
		return err
	}
	if err := in.JoinRoom(ctx, evt.RoomID); err != nil {
		return fmt.Errorf("xmpp: join %s: %w", evt.RoomID, err)
	}
	b.setBridgeInfo(ctx, in, evt.RoomID, peer, false) // needs the inviter to have given the power
	return nil
}

func (b *Bridge) recordDM(ctx context.Context, user id.UserID, peer jid.JID, room id.RoomID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.host.Store().PutPortal(ctx, dmChat(user, peer), room); err != nil {
		return err
	}
	return b.addDMPeer(ctx, user, peer)
}
