package jitsi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi/access"
)

// HandleEvent implements appservice.Module: the bot's invites and "!meet".
func (b *Bridge) HandleEvent(ctx context.Context, evt *event.Event) error {
	if evt.Sender == b.bot.UserID() {
		return nil
	}
	switch evt.Type {
	case event.StateMember:
		if evt.StateKey == nil || id.UserID(*evt.StateKey) != b.bot.UserID() {
			return nil
		}
		return b.botMembership(ctx, evt)
	case event.EventMessage:
		return b.handleMeet(ctx, evt)
	}
	return nil
}

// botMembership joins the rooms the bot is invited to and forgets the ones it is removed
// from.
func (b *Bridge) botMembership(ctx context.Context, evt *event.Event) error {
	switch evt.Content.AsMember().Membership {
	case event.MembershipInvite:
		if err := b.bot.JoinRoom(ctx, evt.RoomID); err != nil {
			return fmt.Errorf("jitsi: failed to join %s: %w", evt.RoomID, err)
		}
		return b.notice(ctx, evt.RoomID, "hello:"+evt.ID.String(), "",
			"Hello! Type !meet to add a Jitsi meeting to this room (!meet audio for audio only, !meet end to remove it). I need moderator power to add it.")
	case event.MembershipLeave, event.MembershipBan:
		m, err := b.storedMeeting(ctx, evt.RoomID)
		if errors.Is(err, appservice.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if b.watcher != nil {
			b.watcher.Unwatch(mucName(m.Conference))
		}
		// The bot cannot post in the room any more: the meeting is forgotten without an
		// end notice (the stored keys go first, so its events find no room).
		st := b.host.Store()
		if err := st.DeleteKV(ctx, storeWidget+evt.RoomID.String()); err != nil {
			return err
		}
		if err := st.DeleteKV(ctx, storeConference+mucName(m.Conference)); err != nil {
			return err
		}
		if err := st.DeleteKV(ctx, storeMeeting+mucName(m.Conference)); err != nil {
			return err
		}
		b.tracker.Forget(mucName(m.Conference))
		return nil
	}
	return nil
}

// HandleCommand implements appservice.CommandHandler: "jitsi meet <room> [audio]",
// "jitsi end <room>" from the management room.
func (b *Bridge) HandleCommand(ctx context.Context, cmd appservice.Command) (string, error) {
	usage := "**jitsi**: Jitsi meetings in Matrix rooms\n\n" +
		"* `jitsi meet <room ID or alias> [audio]` — adds a Jitsi meeting to the room\n" +
		"* `jitsi end <room ID or alias>` — removes it\n" +
		"* `jitsi help` — this list"
	if len(cmd.Args) < 2 || len(cmd.Args) > 3 || (cmd.Args[0] != "meet" && cmd.Args[0] != "end") {
		return usage, nil
	}
	roomID, err := b.resolveRoom(ctx, cmd.Args[1])
	if err != nil {
		return fmt.Sprintf("%s is not a room I can find: use its ID (!…) or an alias (#…).", cmd.Args[1]), nil
	}
	membership, _, err := roomState{b}.Membership(ctx, roomID, cmd.Sender)
	if errors.Is(err, access.ErrBotNotInRoom) {
		if err := b.bot.JoinRoom(ctx, roomID); err != nil {
			return fmt.Sprintf("I am not in %s: invite %s to it first.", cmd.Args[1], b.bot.UserID()), nil
		}
		membership, _, err = roomState{b}.Membership(ctx, roomID, cmd.Sender)
	}
	if err != nil {
		return "", err
	}
	if membership != event.MembershipJoin {
		return "You are not a member of that room.", nil
	}
	if cmd.Args[0] == "end" {
		if len(cmd.Args) != 2 {
			return usage, nil
		}
		return b.endMeeting(ctx, roomID, cmd.Sender)
	}
	audio := len(cmd.Args) == 3 && cmd.Args[2] == "audio"
	if len(cmd.Args) == 3 && !audio {
		return usage, nil
	}
	// The management command has no event in the target room; the widget ID is derived from
	// the management room and the target room (a repeated command writes the same widget).
	cause := id.EventID("$mgmt:" + string(cmd.RoomID) + "|" + string(roomID))
	return b.addMeeting(ctx, roomID, cmd.Sender, cause, audio)
}

// resolveRoom takes a room ID or an alias.
func (b *Bridge) resolveRoom(ctx context.Context, s string) (id.RoomID, error) {
	switch {
	case strings.HasPrefix(s, "!") && len(s) > 1 && !strings.ContainsAny(s, " /?#"):
		// Room IDs of version 12 and later have no server part.
		return id.RoomID(s), nil
	case strings.HasPrefix(s, "#") && strings.Contains(s, ":"):
		return b.bot.ResolveAlias(ctx, id.RoomAlias(s))
	}
	return "", fmt.Errorf("jitsi: %q is neither a room ID nor an alias", s)
}

// roomState is access.RoomState with the bot's view of rooms.
type roomState struct{ b *Bridge }

// Membership implements access.RoomState.
func (r roomState) Membership(ctx context.Context, roomID id.RoomID, userID id.UserID) (event.Membership, string, error) {
	var m event.MemberEventContent
	err := r.b.bot.StateEvent(ctx, roomID, event.StateMember, userID.String(), &m)
	switch {
	case errors.Is(err, appservice.ErrNotFound):
		if _, _, err := r.PowerLevels(ctx, roomID); err != nil {
			return "", "", err // tells a room the bot is not in from a user who never was
		}
		return "", "", nil
	case isForbidden(err):
		return "", "", fmt.Errorf("%w: %w", access.ErrBotNotInRoom, err)
	case err != nil:
		return "", "", err
	}
	return m.Membership, m.Displayname, nil
}

// PowerLevels implements access.RoomState.
func (r roomState) PowerLevels(ctx context.Context, roomID id.RoomID) (*event.PowerLevelsEventContent, json.RawMessage, error) {
	return r.b.powerLevels(ctx, roomID)
}

// powerLevels reads the room's power levels with its create event (whose sender, and
// additional creators, have unlimited power in rooms of version 12 and later).
func (b *Bridge) powerLevels(ctx context.Context, roomID id.RoomID) (*event.PowerLevelsEventContent, json.RawMessage, error) {
	var raw json.RawMessage
	err := b.bot.StateEvent(ctx, roomID, event.StatePowerLevels, "", &raw)
	if isForbidden(err) || errors.Is(err, appservice.ErrNotFound) {
		return nil, nil, fmt.Errorf("%w: %w", access.ErrBotNotInRoom, err)
	} else if err != nil {
		return nil, nil, err
	}
	var pl event.PowerLevelsEventContent
	if err := json.Unmarshal(raw, &pl); err != nil {
		return nil, nil, fmt.Errorf("jitsi: bad power levels in %s: %w", roomID, err)
	}
	create, err := b.bot.FullStateEvent(ctx, roomID, event.StateCreate, "")
	if err != nil {
		return nil, nil, err
	}
	pl.CreateEvent = create
	return &pl, raw, nil
}
