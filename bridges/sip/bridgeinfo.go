package sip

import (
	"context"
	"errors"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
)

// Bridge info (MSC2346) in the DMs: protocol "sip", the network is the SIP user's domain,
// the channel the SIP user's address (which the ghost's user ID shows already). The
// peer's ghost sends it: it made the DM or was invited to it. Nothing else goes in:
// state is never encrypted.

// dmBridgeInfo is the bridge info of a DM with peer.
func (b *Bridge) dmBridgeInfo(peer sipuri.AOR) appservice.BridgeInfo {
	return appservice.BridgeInfo{
		BridgeBot: b.host.BotUserID(),
		Protocol:  appservice.BridgeInfoSection{ID: "sip", DisplayName: "SIP"},
		Network:   &appservice.BridgeInfoSection{ID: peer.Host},
		Channel:   appservice.BridgeInfoSection{ID: peer.String(), ExternalURL: peer.URI()},
	}
}

// setBridgeInfo writes a DM's bridge info as the peer's ghost unless it has it; a failure
// is logged, not returned: the DM works without it. In a DM the user made, the ghost may
// lack the power to send state (logged at debug level).
func (b *Bridge) setBridgeInfo(ctx context.Context, in *appservice.Intent, room id.RoomID, peer sipuri.AOR) {
	b.infoChecked.Store(room, true)
	_, err := appservice.EnsureBridgeInfo(ctx, b.host.Store(), in, room, b.dmBridgeInfo(peer))
	if errors.Is(err, mautrix.MForbidden) {
		zerolog.Ctx(ctx).Debug().Err(err).Stringer("room_id", room).Msg("No power to set the DM's bridge info")
	} else if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Stringer("room_id", room).Msg("Could not set the DM's bridge info")
	}
}

// backfillBridgeInfo gives a DM made before bridge info was written its info, the first
// time this process sees the DM used, in the background (the message in hand does not
// wait). The store has no list of a module's portals, so DMs that stay unused get theirs
// when they are next used; EnsureBridgeInfo's record makes this one store read per DM
// and start.
func (b *Bridge) backfillBridgeInfo(ctx context.Context, room id.RoomID, peer sipuri.AOR) {
	if _, seen := b.infoChecked.LoadOrStore(room, true); seen {
		return
	}
	log := zerolog.Ctx(ctx)
	b.loops.Go(func(run context.Context) {
		ctx := log.WithContext(run)
		ghostID, err := b.ghostID(peer)
		if err != nil {
			return
		}
		in, err := b.host.Ghost(ghostID.Localpart())
		if err != nil {
			return
		}
		b.setBridgeInfo(ctx, in, room, peer)
	})
}
