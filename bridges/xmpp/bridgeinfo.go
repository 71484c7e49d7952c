package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// Bridge info (MSC2346) in the portals: protocol "xmpp", the network is the domain of the
// MUC service or of the peer, the channel the MUC's or the peer's bare JID. A MUC portal's
// info is sent by the bot (which created or was in the room), a DM's by the peer's ghost
// (which created or joined it). Nothing else goes in: state is never encrypted.

var xmppProtocol = appservice.BridgeInfoSection{ID: "xmpp", DisplayName: "XMPP", ExternalURL: "https://xmpp.org"}

// bridgeInfo is the bridge info of the portal of a MUC (muc) or a DM with a peer.
func (b *Bridge) bridgeInfo(j jid.JID, muc bool) appservice.BridgeInfo {
	bare := strings.ToLower(j.Bare().String())
	channel := appservice.BridgeInfoSection{ID: bare, ExternalURL: "xmpp:" + bare}
	if muc {
		channel.ExternalURL += "?join"
	}
	return appservice.BridgeInfo{
		BridgeBot: b.host.BotUserID(),
		Protocol:  xmppProtocol,
		Network:   &appservice.BridgeInfoSection{ID: strings.ToLower(j.Domainpart())},
		Channel:   channel,
	}
}

// setBridgeInfo writes a portal's bridge info unless it has it; a failure is logged, not
// returned: the portal works without it. In a room that someone else made (a linked
// room, a DM the user opened) the bot or ghost may lack the power to send state: that is
// logged at debug level and tried again at the next start.
func (b *Bridge) setBridgeInfo(ctx context.Context, in *appservice.Intent, roomID id.RoomID, j jid.JID, muc bool) {
	_, err := appservice.EnsureBridgeInfo(ctx, b.host.Store(), in, roomID, b.bridgeInfo(j, muc))
	if errors.Is(err, mautrix.MForbidden) {
		zerolog.Ctx(ctx).Debug().Err(err).Stringer("room_id", roomID).Msg("No power to set the portal's bridge info")
	} else if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room_id", roomID).Msg("Could not set the portal's bridge info")
	}
}

// backfillBridgeInfo gives the portals that existed before bridge info was written theirs,
// once: EnsureBridgeInfo skips the portals that have it, so a start costs a store read per
// portal.
func (b *Bridge) backfillBridgeInfo(ctx context.Context) {
	mucs, err := b.loadJSON(ctx, "mucs")
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not list the MUC portals for their bridge info")
	}
	for chat, room := range mucs {
		if j, err := jid.Parse(strings.TrimPrefix(chat, "muc:")); err == nil && ctx.Err() == nil {
			b.setBridgeInfo(ctx, b.host.Bot(), id.RoomID(room), j, true)
		}
	}
	rows, err := b.host.Store().ListKV(ctx, "dmpeers:", 0)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not list the DM portals for their bridge info")
		return
	}
	for _, row := range rows {
		user := id.UserID(strings.TrimPrefix(row.Key, "dmpeers:"))
		var peers map[string]string
		if json.Unmarshal([]byte(row.Value), &peers) != nil {
			continue
		}
		for p := range peers {
			if ctx.Err() != nil {
				return
			}
			peer, err := jid.Parse(p)
			if err != nil {
				continue
			}
			chat := dmChat(user, peer)
			room, err := b.host.Store().PortalByKey(ctx, chat)
			if err != nil || b.dmGone(ctx, chat, room) {
				continue
			}
			ghostID, err := b.mapper.GhostUserID(peer)
			if err != nil {
				continue
			}
			ghost, err := b.host.Ghost(ghostID.Localpart())
			if err != nil {
				continue
			}
			if err := b.ensureRegistered(ctx, ghost); err != nil {
				continue
			}
			b.setBridgeInfo(ctx, ghost, room, peer, false)
		}
	}
}
