package xmpp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
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
	links, err := b.mucLinks(ctx)
	if err != nil {
		return "", err
	}
	if len(links) == 0 {
		hint := "`xmpp link <room@conference.example.org>` in a room"
		if alias, err := b.mapper.RoomAlias(jid.MustParse("room@conference.example.org")); err == nil {
			hint = "`" + alias.String() + "` (for room@conference.example.org) or send " + hint
		}
		return "No group chat is linked. Join " + hint + ".", nil
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "**%d linked group chats**\n\n", len(links))
	for _, l := range links {
		fmt.Fprintf(&sb, "* %s ↔ %s\n", l.JID, l.RoomID)
	}
	return sb.String(), nil
}

// mucLink is a group chat linked to a Matrix room (the chat command and the provisioning
// API list them).
type mucLink struct {
	JID    string    `json:"jid"`
	RoomID id.RoomID `json:"room_id"`
}

// mucLinks returns the MUC portals, sorted by the group chat's address.
func (b *Bridge) mucLinks(ctx context.Context) ([]mucLink, error) {
	mucs, err := b.loadJSON(ctx, "mucs")
	if err != nil {
		return nil, fmt.Errorf("xmpp: list the group chats: %w", err)
	}
	links := make([]mucLink, 0, len(mucs))
	for chat, roomID := range mucs {
		links = append(links, mucLink{JID: strings.TrimPrefix(chat, "muc:"), RoomID: id.RoomID(roomID)})
	}
	sort.Slice(links, func(i, j int) bool { return links[i].JID < links[j].JID })
	return links, nil
}

// linkCommand links a Matrix room that exists to a MUC: the room the command is given in,
// or (admins only) a room named by ID or alias that the bot is invited to or in.
func (b *Bridge) linkCommand(ctx context.Context, cmd appservice.Command) (string, error) {
	if len(cmd.Args) != 2 && len(cmd.Args) != 3 {
		return "Usage: `xmpp link <room@conference.example.org> [<!room or #alias>]`", nil
	}
	if _, err := parseRoomJID(cmd.Args[1]); err != nil {
		return err.Error(), nil
	}
	req := linkRequest{JID: cmd.Args[1], Room: cmd.RoomID.String(), User: cmd.Sender, Admin: cmd.Admin}
	if len(cmd.Args) == 3 {
		if !cmd.Admin {
			return "Only Switchboard's admins (management.admins) may link another room; send `xmpp link " + cmd.Args[1] + "` in the room itself.", nil
		}
		req.Room = cmd.Args[2]
	}
	room, target, err := b.linkPortal(ctx, req)
	var refused *linkRefusal
	if errors.As(err, &refused) {
		return refused.msg, nil
	} else if err != nil {
		return "", err
	}
	if target == cmd.RoomID {
		return fmt.Sprintf("Linked this room to %s. Its members are joining it; management commands now go to a direct chat with me.", room), nil
	}
	return fmt.Sprintf("Linked %s to %s. Its members are joining it.", target, room), nil
}

// linkRequest asks to link a group chat to a Matrix room that exists.
type linkRequest struct {
	JID   string    // the group chat's address, as given
	Room  string    // the Matrix room's ID or alias, as given
	User  id.UserID // who asks; "" for an operator's tool (Admin is then true)
	Admin bool      // an admin (management.admins) asks
}

// linkRefusal is why a link or unlink is not done: the text for the chat and the
// provisioning API, and the HTTP status the API answers with.
type linkRefusal struct {
	status int    // http.StatusBadRequest, …
	field  string // the request field at fault (a 400), or ""
	msg    string
}

func (r *linkRefusal) Error() string { return r.msg }

func refuse(status int, field, format string, args ...any) *linkRefusal {
	return &linkRefusal{status: status, field: field, msg: fmt.Sprintf(format, args...)}
}

// linkPortal links a Matrix room that exists to a MUC, for the chat command and the
// provisioning API alike: admins may link any room the bot is in or invited to, other
// users a room they are joined to where their power level is at least the room's
// state_default. Neither the group chat nor the room may be linked already. The room's
// members join the MUC as puppets. A *linkRefusal says why it refused.
func (b *Bridge) linkPortal(ctx context.Context, req linkRequest) (jid.JID, id.RoomID, error) {
	room, err := parseRoomJID(req.JID)
	if err != nil {
		return jid.JID{}, "", err
	}
	target, err := b.resolveRoom(ctx, req.Room)
	if errors.Is(err, errBadRoom) {
		return room, "", refuse(http.StatusBadRequest, "room", "%q is neither a room ID (!…) nor an alias (#…:server).", req.Room)
	} else if err != nil {
		return room, "", refuse(http.StatusNotFound, "", "%s is not a room I can find: use its ID (!…) or an alias (#…).", req.Room)
	}
	if err := b.host.Bot().EnsureJoined(ctx, target); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Stringer("room_id", target).Msg("Could not join a room to link")
		return room, target, refuse(http.StatusNotFound, "", "I cannot join %s: invite %s to it first.", req.Room, b.host.BotUserID())
	}
	if !req.Admin {
		if err := b.mayLink(ctx, target, req.User); err != nil {
			return room, target, err
		}
	}
	chat := mucChat(room)
	if err := b.linkConflict(ctx, chat, room, target); err != nil {
		return room, target, err
	}
	if _, err := b.mucInfo(ctx, room); err != nil {
		return room, target, refuse(http.StatusNotFound, "", "%s is not a group chat that the bridge can see.", room)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.linkConflict(ctx, chat, room, target); err != nil { // linked meanwhile
		return room, target, err
	}
	if err := b.linkExisting(ctx, chat, room, target); err != nil {
		return room, target, fmt.Errorf("xmpp: link %s to %s: %w", room, target, err)
	}
	zerolog.Ctx(ctx).Info().Stringer("room_id", target).Str("muc", room.String()).Stringer("by", req.User).Msg("Linked a MUC to an existing room")
	return room, target, nil
}

// linkConflict refuses a link when the group chat or the room is linked already.
func (b *Bridge) linkConflict(ctx context.Context, chat string, room jid.JID, target id.RoomID) error {
	if linked, err := b.host.Store().PortalByKey(ctx, chat); err == nil {
		return refuse(http.StatusConflict, "", "%s is already linked to %s.", room, linked)
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return fmt.Errorf("xmpp: look up the portal of %s: %w", room, err)
	}
	if key, err := b.host.Store().PortalByRoom(ctx, target); err == nil {
		return refuse(http.StatusConflict, "", "That room (%s) is already linked (%s).", target, strings.TrimPrefix(key, "muc:"))
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return fmt.Errorf("xmpp: look up the portal of %s: %w", target, err)
	}
	return nil
}

// mayLink refuses user unless they are joined to roomID with a power level of at least
// the room's state_default (the level to change the room's state).
func (b *Bridge) mayLink(ctx context.Context, roomID id.RoomID, user id.UserID) error {
	bot := b.host.Bot()
	var member event.MemberEventContent
	err := bot.StateEvent(ctx, roomID, event.StateMember, user.String(), &member)
	if err != nil && !errors.Is(err, appservice.ErrNotFound) {
		return fmt.Errorf("xmpp: read the membership of %s in %s: %w", user, roomID, err)
	}
	var pl *event.PowerLevelsEventContent
	err = bot.StateEvent(ctx, roomID, event.StatePowerLevels, "", &pl)
	switch {
	case errors.Is(err, appservice.ErrNotFound):
		pl = nil // no power levels: every member may change the state
	case err != nil:
		return fmt.Errorf("xmpp: read the power levels of %s: %w", roomID, err)
	case pl != nil:
		create, err := bot.FullStateEvent(ctx, roomID, event.StateCreate, "")
		if err != nil {
			return fmt.Errorf("xmpp: read the create event of %s: %w", roomID, err)
		}
		pl.CreateEvent = create // creators have unlimited power in room version 12 and later
	}
	return linkPermission(pl, member.Membership, user, roomID)
}

// linkPermission is mayLink's rule: user, whose membership in roomID is membership, may
// link the room when joined with a power level of at least state_default in pl (nil: the
// room has no power levels, so state_default is 0).
func linkPermission(pl *event.PowerLevelsEventContent, membership event.Membership, user id.UserID, roomID id.RoomID) error {
	if user == "" || membership != event.MembershipJoin {
		return refuse(http.StatusForbidden, "", "%s is not joined to %s; only its members may link it.", user, roomID)
	}
	if pl == nil {
		return nil
	}
	if need, have := pl.StateDefault(), pl.GetUserLevel(user); have < need {
		return refuse(http.StatusForbidden, "", "Only members of %s with power level %d or more (state_default) may link it; %s has %d.", roomID, need, user, have)
	}
	return nil
}

// parseRoomJID parses a group chat's address (room@conference.example.org).
func parseRoomJID(s string) (jid.JID, error) {
	room, err := jid.Parse(s)
	if err != nil || room.Localpart() == "" || room.Resourcepart() != "" {
		return jid.JID{}, refuse(http.StatusBadRequest, "jid", "%q is not a room address (room@conference.example.org).", s)
	}
	return room, nil
}

// errBadRoom is a room that is neither a room ID nor an alias.
var errBadRoom = errors.New("xmpp: neither a room ID nor an alias")

// resolveRoom takes a room ID or an alias.
func (b *Bridge) resolveRoom(ctx context.Context, s string) (id.RoomID, error) {
	switch {
	case strings.HasPrefix(s, "!") && len(s) > 1 && !strings.ContainsAny(s, " /?#"):
		return id.RoomID(s), nil
	case strings.HasPrefix(s, "#") && strings.Contains(s, ":"):
		return b.host.Bot().ResolveAlias(ctx, id.RoomAlias(s))
	}
	return "", fmt.Errorf("%w: %q", errBadRoom, s)
}
