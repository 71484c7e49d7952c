package email

import (
	"context"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// mailboxBridgeInfo is the bridge info (MSC2346) of a mailbox's room: protocol "email",
// the network is the address's domain, the channel the mailbox's address and display name
// (both from the config). Conversations are threads in that room, so nothing about a
// mail, its subject or its senders goes in: state is never encrypted.
func (b *Bridge) mailboxBridgeInfo(mb *MailboxConfig) appservice.BridgeInfo {
	address := strings.ToLower(mb.Address)
	info := appservice.BridgeInfo{
		BridgeBot: b.host.BotUserID(),
		Protocol:  appservice.BridgeInfoSection{ID: "email", DisplayName: "Email"},
		Channel:   appservice.BridgeInfoSection{ID: address, DisplayName: mb.DisplayName, ExternalURL: "mailto:" + address},
	}
	if _, domain, ok := strings.Cut(address, "@"); ok && domain != "" {
		info.Network = &appservice.BridgeInfoSection{ID: domain}
	}
	return info
}

// setBridgeInfo writes the bridge info of a mailbox's room (as the bot, which made it)
// unless it has it; a failure is logged: the mailbox works without it, and the next
// connect tries again.
func (b *Bridge) setBridgeInfo(ctx context.Context, mb *MailboxConfig, room id.RoomID) {
	if _, err := appservice.EnsureBridgeInfo(ctx, b.host.Store(), b.host.Bot(), room, b.mailboxBridgeInfo(mb)); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("mailbox", mb.Name).Stringer("room_id", room).Msg("Could not set the room's bridge info")
	}
}
