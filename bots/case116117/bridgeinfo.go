package case116117

import (
	"context"
	"encoding/json"
	"strings"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// Bridge info (MSC2346) in the case rooms: protocol "ucri2", the network is the link (its
// name and the bot's display name, both from the config), the channel the case's ID (its
// sharedIncidentId). Nothing about the patient or the case's content goes in: state is
// never encrypted, even in encrypted case rooms.

// caseBridgeInfo is the bridge info of the room of case caseID.
func (l *link) caseBridgeInfo(caseID string) appservice.BridgeInfo {
	return appservice.BridgeInfo{
		BridgeBot: l.botID(),
		Protocol:  appservice.BridgeInfoSection{ID: "ucri2", DisplayName: "116117 (UCRI2)"},
		Network:   &appservice.BridgeInfoSection{ID: strings.ToLower(l.cfg.Name), DisplayName: l.cfg.DisplayName},
		Channel:   appservice.BridgeInfoSection{ID: strings.ToLower(caseID)},
	}
}

// setBridgeInfo writes a case room's bridge info as the link's bot unless it has it; a
// failure is logged, not returned: the case works without it.
func (l *link) setBridgeInfo(ctx context.Context, room id.RoomID, caseID string) {
	bot, err := l.bot()
	if err == nil {
		_, err = appservice.EnsureBridgeInfo(ctx, l.b.host.Store(), bot, room, l.caseBridgeInfo(caseID))
	}
	if err != nil {
		l.log(ctx).Warn().Err(err).Stringer("room_id", room).Str("case_id", caseID).Msg("Could not set the case room's bridge info")
	}
}

// backfillBridgeInfo gives the case rooms made before bridge info was written theirs,
// once, in the background after the link's setup: EnsureBridgeInfo skips rooms that have
// it, so a start costs a store read per case.
func (l *link) backfillBridgeInfo(ctx context.Context) {
	rows, err := l.b.host.Store().ListKV(ctx, "case:"+l.cfg.Name+":", 0)
	if err != nil {
		l.log(ctx).Warn().Err(err).Msg("Could not list the cases for their rooms' bridge info")
		return
	}
	for _, row := range rows {
		if ctx.Err() != nil {
			return
		}
		var c caseRecord
		if json.Unmarshal([]byte(row.Value), &c) != nil || c.Room == "" || c.ID == "" {
			continue
		}
		l.setBridgeInfo(ctx, c.Room, c.ID)
	}
}
