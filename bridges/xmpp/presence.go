package xmpp

import (
	"context"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/stanza"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// handlePresence routes a presence: MUC occupants, or a contact's presence and
// subscription requests to a puppet.
func (b *Bridge) handlePresence(ctx context.Context, st *stanza.Stanza) error {
	p, err := xmsg.ParsePresence(st.Raw)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Ignored a malformed presence")
		return nil // presence errors are never answered (RFC 6120 8.3.1)
	}
	if p.From.Resourcepart() != "" && (b.isMUCPortal(ctx, p.From.Bare()) || b.isJoining(p.From)) {
		return b.occupantPresence(ctx, p)
	}
	if p.From.Resourcepart() != "" && b.wasUnlinked(p.From.Bare()) {
		return nil // the room's answer to the puppets' leaving, or its last presences
	}
	return b.contactPresence(ctx, p)
}

// wasUnlinked reports whether room is a MUC that was unlinked (and not linked again): its
// occupants' presences are not a contact's.
func (b *Bridge) wasUnlinked(room jid.JID) bool {
	b.muc.mu.Lock()
	defer b.muc.mu.Unlock()
	return b.muc.unlinked[room.String()]
}

func (b *Bridge) isJoining(occ jid.JID) bool {
	b.muc.mu.Lock()
	defer b.muc.mu.Unlock()
	_, ok := b.muc.waiters[occ.String()]
	return ok
}

// occupantPresence follows a MUC occupant: our puppets' joins are confirmed, other
// occupants' ghosts join, leave, are kicked or banned in the portal room.
func (b *Bridge) occupantPresence(ctx context.Context, p *xmsg.Presence) error {
	occ := p.From.String()
	b.muc.mu.Lock()
	wait := b.muc.waiters[occ]
	_, ours := b.muc.occupants[occ]
	b.muc.mu.Unlock()
	if p.Type == "error" {
		if wait != nil {
			e := p.Error
			if e == nil {
				e = &xmsg.StanzaError{Type: "cancel", Condition: "undefined-condition"}
			}
			wait <- e
		}
		return nil
	}
	self := p.MUCUser != nil && p.MUCUser.Has(110)
	if ours || self {
		if wait != nil && p.Type == "" {
			wait <- nil
		}
		if p.Type == "unavailable" {
			b.puppetGone(ctx, p)
		}
		return nil
	}
	if p.MUCUser != nil && p.MUCUser.JID.Domainpart() == b.cfg.Component.Domain {
		return nil // another of our puppets, seen by this one
	}
	roomID, err := b.host.Store().PortalByKey(ctx, mucChat(p.From.Bare()))
	if err != nil {
		return nil
	}
	ghostID := b.occupantGhost(p.From, p.MUCUser)
	ghost, err := b.host.Ghost(ghostID.Localpart())
	if err != nil {
		return nil
	}
	roomKey := roomID.String() + "|" + ghostID.String()
	if p.Type == "unavailable" {
		b.muc.mu.Lock()
		delete(b.muc.inRoom, roomKey)
		b.muc.mu.Unlock()
		reason := ""
		if p.MUCUser != nil {
			reason = p.MUCUser.Reason
		}
		switch {
		case p.MUCUser != nil && p.MUCUser.Has(303):
			return nil // a nick change: the new nick's presence follows
		case p.MUCUser != nil && p.MUCUser.Has(301):
			return b.host.Bot().Ban(ctx, roomID, ghostID, reason)
		case p.MUCUser != nil && p.MUCUser.Has(307):
			if joined, err := b.host.Bot().JoinedMembers(ctx, roomID); err == nil {
				if _, ok := joined[ghostID]; !ok {
					return nil // gone already: the kick came from Matrix (moderateGhost)
				}
			}
			return b.host.Bot().Kick(ctx, roomID, ghostID, reason)
		}
		if err := ghost.LeaveRoom(ctx, roomID); err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Ghost could not leave")
		}
		return nil
	}
	return b.ghostInRoom(ctx, roomID, ghostID, p.From, p.MUCUser)
}

// occupantGhost is the ghost of an occupant: its real JID's when the room shows it, else
// one for the occupant JID.
func (b *Bridge) occupantGhost(occ jid.JID, u *xmsg.MUCUser) id.UserID {
	b.muc.mu.Lock()
	defer b.muc.mu.Unlock()
	real, known := b.muc.realJID[occ.String()]
	if u != nil && u.JID.Domainpart() != "" {
		real, known = u.JID.Bare(), true
		b.muc.realJID[occ.String()] = real
	}
	if known {
		if g, err := b.mapper.GhostUserID(real); err == nil {
			return g
		}
	}
	g, _ := b.mapper.OccupantUserID(occ)
	return g
}

// ghostInRoom makes the occupant's ghost a member of the portal with its nick as its name
// in that room only (the member event's displayname), not as its global name.
func (b *Bridge) ghostInRoom(ctx context.Context, roomID id.RoomID, ghostID id.UserID, occ jid.JID, u *xmsg.MUCUser) error {
	nick := occ.Resourcepart()
	key := roomID.String() + "|" + ghostID.String()
	b.muc.mu.Lock()
	same := b.muc.inRoom[key] == nick
	b.muc.mu.Unlock()
	if same {
		return nil
	}
	real := occ
	if u != nil && u.JID.Domainpart() != "" {
		real = u.JID.Bare()
	}
	ghost, err := b.setupGhost(ctx, ghostID, real)
	if err != nil {
		return err
	}
	if err := ghost.EnsureJoined(ctx, roomID); err != nil {
		return err
	}
	// Recorded first, so that a new global name set meanwhile (reapplyNicks) sets it again.
	b.muc.mu.Lock()
	b.muc.inRoom[key] = nick
	b.muc.mu.Unlock()
	if _, err := ghost.SendState(ctx, roomID, event.StateMember, ghostID.String(), &event.MemberEventContent{
		Membership: event.MembershipJoin, Displayname: nick,
	}); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not set the ghost's nick in the room")
	}
	return nil
}

// puppetGone notes that a puppet left or was removed from a MUC; the next message of its
// user rejoins it.
func (b *Bridge) puppetGone(ctx context.Context, p *xmsg.Presence) {
	if p.MUCUser.Has(xmsg.StatusNickChanged) {
		return // nickAs follows the puppet to its new occupant JID
	}
	b.muc.mu.Lock()
	user := b.muc.occupants[p.From.String()]
	delete(b.muc.occupants, p.From.String())
	if key := mucChat(p.From.Bare()) + "|" + user.String(); b.muc.puppets[key].Equal(p.From) {
		delete(b.muc.puppets, key)
	}
	b.muc.mu.Unlock()
	banned := p.MUCUser.Has(xmsg.StatusBanned)
	if user == "" || !banned && !p.MUCUser.Has(xmsg.StatusKicked) {
		return
	}
	log := zerolog.Ctx(ctx).With().Str("muc", p.From.Bare().String()).Stringer("user_id", user).Logger()
	log.Info().Bool("banned", banned).Msg("A puppet was kicked or banned from the MUC")
	if err := b.tellRemoved(ctx, p, user, banned); err != nil {
		log.Error().Err(err).Msg("Could not tell a Matrix user that their puppet was removed from the MUC")
	}
}

// tellRemoved tells the portal, with a notice of the bot that mentions user, that the
// MUC kicked or banned user's puppet: until then the user would not know that their
// messages stopped reaching XMPP (after a kick, the next one rejoins).
func (b *Bridge) tellRemoved(ctx context.Context, p *xmsg.Presence, user id.UserID, banned bool) error {
	room := p.From.Bare()
	roomID, err := b.host.Store().PortalByKey(ctx, mucChat(room))
	if err != nil {
		return nil // no portal any more
	}
	what, next := "kicked from", "Their next message here rejoins it."
	if banned {
		what, next = "banned from", "Their messages here no longer reach it."
	}
	text := user.String() + " was " + what + " the XMPP group chat " + room.String()
	if p.MUCUser.Actor != "" {
		text += " by " + p.MUCUser.Actor
	}
	if p.MUCUser.Reason != "" {
		text += " (" + p.MUCUser.Reason + ")"
	}
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: "⚠️ " + text + ". " + next,
		Mentions: &event.Mentions{UserIDs: []id.UserID{user}}}
	return b.host.Enqueue(ctx, appservice.Message{RoomID: roomID, Sender: b.host.BotUserID(),
		RemoteID: "removed:" + mucChat(room) + "|" + user.String() + "|" + strconv.FormatInt(time.Now().UnixNano(), 36), Content: content})
}

// contactPresence answers subscription requests to puppets (always accepted: a Matrix
// user is reachable by anyone the homeserver federates with; with presence bridging on,
// the puppet asks back for the contact's presence) and mirrors a contact's availability
// as its ghost's Matrix presence.
func (b *Bridge) contactPresence(ctx context.Context, p *xmsg.Presence) error {
	if _, err := b.mapper.UserIDForPuppet(p.To); err != nil {
		return nil
	}
	reply := func(typ string) error {
		raw, err := (&xmsg.Presence{From: p.To.Bare(), To: p.From.Bare(), Type: typ}).Marshal()
		if err != nil {
			return err
		}
		if typ == "" {
			raw = withCaps(raw)
		}
		return b.send(ctx, raw)
	}
	switch p.Type {
	case "subscribe":
		if err := reply("subscribed"); err != nil {
			return err
		}
		if err := reply(""); err != nil {
			return err
		}
		if !*b.cfg.Presence {
			return nil
		}
		// Ask back, as gateways do: without a subscription to the contact, the puppet
		// never gets the contact's presence (only directed presence). A server whose user
		// approved it before answers by itself.
		return reply("subscribe")
	case "probe":
		return b.answerProbe(ctx, p)
	case "", "unavailable":
		if !*b.cfg.Presence {
			return nil
		}
		ghostID, err := b.mapper.GhostUserID(p.From.Bare())
		if err != nil {
			return nil
		}
		ghost, err := b.host.Ghost(ghostID.Localpart())
		if err != nil {
			return nil
		}
		state := event.PresenceOnline
		switch {
		case p.Type == "unavailable":
			state = event.PresenceOffline
		case p.Show == "away" || p.Show == "xa" || p.Show == "dnd":
			state = event.PresenceUnavailable
		}
		// A contact may send presence before any message: its ghost may not exist yet,
		// and the homeserver refuses presence for an unregistered appservice user.
		if err := b.ensureRegistered(ctx, ghost); err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not register a ghost for its presence")
			return nil
		}
		if p.PhotoHash != nil && *p.PhotoHash != "" {
			b.avatarChanged(ctx, ghost, p.From.Bare(), *p.PhotoHash)
		}
		if err := ghost.SetPresence(ctx, state, p.Status); err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not set a ghost's presence")
		}
		if p.Type == "" {
			b.profileOnFirstPresence(ctx, ghost, p.From)
		}
	}
	return nil
}
