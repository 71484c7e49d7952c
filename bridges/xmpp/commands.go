package xmpp

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// help is the answer to "xmpp help".
const help = "**xmpp**: XMPP chats and group chats (MUC portals)\n\n" +
	"* `xmpp list` — the group chats linked to Matrix rooms\n" +
	"* `xmpp link <room@conference.example.org>` — links the room the command is given in (invite me first)\n" +
	"* `xmpp link <room@conference.example.org> <!room or #alias>` — links that Matrix room (admins; invite me first)\n" +
	"* `xmpp unlink <room@conference.example.org>` — unlinks that group chat (admins); its Matrix room stays\n" +
	"* `xmpp help` — this list"

// HandleCommand implements appservice.CommandHandler: list, link, unlink and help.
func (b *Bridge) HandleCommand(ctx context.Context, cmd appservice.Command) (string, error) {
	if len(cmd.Args) == 0 {
		return help, nil
	}
	switch cmd.Args[0] {
	case "help":
		return help, nil
	case "list":
		return b.listCommand(ctx)
	case "link":
		return b.linkCommand(ctx, cmd)
	case "unlink":
		return b.unlinkCommand(ctx, cmd)
	}
	return "Unknown command; send `xmpp help` for the list.", nil
}

// listCommand lists the MUC portals: room JID ↔ Matrix room.
func (b *Bridge) listCommand(ctx context.Context) (string, error) {
	mucs, err := b.loadJSON(ctx, "mucs")
	if err != nil {
		return "", fmt.Errorf("xmpp: list the group chats: %w", err)
	}
	if len(mucs) == 0 {
		hint := "`xmpp link <room@conference.example.org>` in a room"
		if alias, err := b.mapper.RoomAlias(jid.MustParse("room@conference.example.org")); err == nil {
			hint = "`" + alias.String() + "` (for room@conference.example.org) or send " + hint
		}
		return "No group chat is linked. Join " + hint + ".", nil
	}
	chats := make([]string, 0, len(mucs))
	for chat := range mucs {
		chats = append(chats, chat)
	}
	sort.Strings(chats)
	var sb strings.Builder
	fmt.Fprintf(&sb, "**%d linked group chats**\n\n", len(chats))
	for _, chat := range chats {
		fmt.Fprintf(&sb, "* %s ↔ %s\n", strings.TrimPrefix(chat, "muc:"), mucs[chat])
	}
	return sb.String(), nil
}

// linkCommand links a Matrix room that exists to a MUC: the room the command is given in,
// or (admins only) a room named by ID or alias that the bot is invited to or in.
func (b *Bridge) linkCommand(ctx context.Context, cmd appservice.Command) (string, error) {
	if len(cmd.Args) != 2 && len(cmd.Args) != 3 {
		return "Usage: `xmpp link <room@conference.example.org> [<!room or #alias>]`", nil
	}
	room, err := jid.Parse(cmd.Args[1])
	if err != nil || room.Localpart() == "" || room.Resourcepart() != "" {
		return fmt.Sprintf("%q is not a room address (room@conference.example.org).", cmd.Args[1]), nil
	}
	target, here := cmd.RoomID, true
	if len(cmd.Args) == 3 {
		if !cmd.Admin {
			return "Only Switchboard's admins (management.admins) may link another room; send `xmpp link " + room.String() + "` in the room itself.", nil
		}
		if target, err = b.resolveRoom(ctx, cmd.Args[2]); err != nil {
			return fmt.Sprintf("%s is not a room I can find: use its ID (!…) or an alias (#…).", cmd.Args[2]), nil
		}
		here = target == cmd.RoomID
		if err := b.host.Bot().EnsureJoined(ctx, target); err != nil {
			return fmt.Sprintf("I cannot join %s: invite %s to it first.", cmd.Args[2], b.host.BotUserID()), nil
		}
	}
	chat := mucChat(room)
	if linked, err := b.host.Store().PortalByKey(ctx, chat); err == nil {
		return fmt.Sprintf("%s is already linked to %s.", room, linked), nil
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return "", err
	}
	if _, err := b.mucInfo(ctx, room); err != nil {
		return fmt.Sprintf("%s is not a group chat that the bridge can see.", room), nil
	}
	if key, err := b.host.Store().PortalByRoom(ctx, target); err == nil {
		return fmt.Sprintf("That room is already linked (%s).", key), nil
	}
	if err := b.linkExisting(ctx, chat, room, target); err != nil {
		return "", err
	}
	if here {
		return fmt.Sprintf("Linked this room to %s. Its members are joining it; management commands now go to a direct chat with me.", room), nil
	}
	return fmt.Sprintf("Linked %s to %s. Its members are joining it.", target, room), nil
}

// resolveRoom takes a room ID or an alias.
func (b *Bridge) resolveRoom(ctx context.Context, s string) (id.RoomID, error) {
	switch {
	case strings.HasPrefix(s, "!") && len(s) > 1 && !strings.ContainsAny(s, " /?#"):
		return id.RoomID(s), nil
	case strings.HasPrefix(s, "#") && strings.Contains(s, ":"):
		return b.host.Bot().ResolveAlias(ctx, id.RoomAlias(s))
	}
	return "", fmt.Errorf("xmpp: %q is neither a room ID nor an alias", s)
}
