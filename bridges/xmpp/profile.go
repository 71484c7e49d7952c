package xmpp

import (
	"context"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/vcard"
)

// A ghost's profile follows the XMPP user's: the display name is the vCard's NICKNAME,
// else its FN (vcard-temp, XEP-0054, which Prosody also serves from a vCard4 published
// with XEP-0292), else the XEP-0172 nick, else the bare JID; the avatar is the vCard's
// PHOTO. The profile is fetched when a ghost is set up, when a contact's presence is
// first seen and when a presence announces another photo (XEP-0153). The name is kept as
// "name:<bare JID>" so that setting up the ghost again does not undo it.

func profileNameKey(j jid.JID) string { return "name:" + j.Bare().String() }

// refreshProfile fetches j's profile and sets the ghost's display name and avatar from it.
// It must not run in the stanza handler (it waits for answers).
func (b *Bridge) refreshProfile(ctx context.Context, ghost *appservice.Intent, j jid.JID) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	log := zerolog.Ctx(ctx)
	var card *vcard.Card
	if res, err := b.query(ctx, "get", j.Bare(), vcard.Request()); err != nil {
		log.Debug().Err(err).Msg("No vCard for an XMPP user")
	} else if c, err := vcard.Parse(res.Inner); c != nil {
		card = c
	} else {
		log.Debug().Err(err).Msg("Unreadable vCard of an XMPP user")
	}
	name := ""
	if card != nil {
		name = card.Name()
	}
	if name == "" {
		if res, err := b.query(ctx, "get", j.Bare(), vcard.NickRequest()); err == nil {
			name, _ = vcard.ParseNick(res.Inner)
		}
	}
	if name != "" {
		b.setProfileName(ctx, ghost, j, name)
	}
	if card != nil && len(card.Photo) > 0 {
		b.setAvatar(ctx, ghost, j, card)
	}
}

// setProfileName makes name the ghost's display name. Matrix copies a new global name
// into the ghost's member events in every room, so the MUC nicks are set again there.
func (b *Bridge) setProfileName(ctx context.Context, ghost *appservice.Intent, j jid.JID, name string) {
	key := profileNameKey(j)
	old, _ := b.host.Store().GetKV(ctx, key)
	if err := ghost.SetDisplayName(ctx, name); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not set an XMPP user's name as their ghost's")
		return
	}
	if old == name {
		return
	}
	if err := b.host.Store().PutKV(ctx, key, name); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not remember an XMPP user's name")
	}
	b.reapplyNicks(ctx, ghost)
}

// reapplyNicks sets the ghost's per-room names in the MUC portals again.
func (b *Bridge) reapplyNicks(ctx context.Context, ghost *appservice.Intent) {
	suffix := "|" + ghost.UserID().String()
	b.muc.mu.Lock()
	nicks := map[id.RoomID]string{}
	for key, nick := range b.muc.inRoom {
		if room, ok := strings.CutSuffix(key, suffix); ok {
			nicks[id.RoomID(room)] = nick
		}
	}
	b.muc.mu.Unlock()
	for room, nick := range nicks {
		if _, err := ghost.SendState(ctx, room, event.StateMember, ghost.UserID().String(), &event.MemberEventContent{
			Membership: event.MembershipJoin, Displayname: nick,
		}); err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not set the ghost's nick in the room again")
		}
	}
}

// setAvatar sets the card's photo as the ghost's avatar, once per photo (its hash is
// remembered).
func (b *Bridge) setAvatar(ctx context.Context, ghost *appservice.Intent, j jid.JID, card *vcard.Card) {
	hash := vcard.PhotoHash(card.Photo)
	key := "avatar:" + j.Bare().String()
	if old, _ := b.host.Store().GetKV(ctx, key); old == hash {
		return
	}
	if err := b.host.ScanFile(ctx, appservice.Inbound, "avatar", card.Photo); err != nil {
		// Refused (an infected photo is never set) or held: tried again with the next
		// vCard, as the hash is not remembered.
		zerolog.Ctx(ctx).Warn().Err(err).Msg("An XMPP avatar was not scanned clean; not set")
		return
	}
	uri, err := ghost.UploadMedia(ctx, card.Photo, card.PhotoType, "avatar")
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not upload an XMPP avatar")
		return
	}
	if err := ghost.SetAvatarURL(ctx, uri); err == nil {
		_ = b.host.Store().PutKV(ctx, key, hash)
	}
}

// profileOnFirstPresence fetches a contact's profile the first time this process sees
// its presence.
func (b *Bridge) profileOnFirstPresence(ctx context.Context, ghost *appservice.Intent, j jid.JID) {
	if _, seen := b.profiled.LoadOrStore(j.Bare().String(), true); seen {
		return
	}
	b.loops.Go(func(run context.Context) { b.refreshProfile(zerolog.Ctx(ctx).WithContext(run), ghost, j.Bare()) })
}
