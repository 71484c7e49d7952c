package xmpp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// unlinkCommand (admins only) ends a MUC portal: the core forgets the portal, the bridge
// its record of the MUC and its members; the puppets leave the MUC. The Matrix room stays
// as it is, with a notice that it is no longer linked.
func (b *Bridge) unlinkCommand(ctx context.Context, cmd appservice.Command) (string, error) {
	if len(cmd.Args) != 2 {
		return "Usage: `xmpp unlink <room@conference.example.org>`", nil
	}
	if !cmd.Admin {
		return "Only Switchboard's admins (management.admins) may unlink a group chat.", nil
	}
	room, roomID, err := b.unlinkPortal(ctx, cmd.Args[1], cmd.RoomID)
	var refused *linkRefusal
	if errors.As(err, &refused) {
		return refused.msg, nil
	} else if err != nil {
		return "", err
	}
	if roomID == "" {
		return fmt.Sprintf("Unlinked %s.", room), nil
	}
	return fmt.Sprintf("Unlinked %s from %s. Its puppets left the group chat; the Matrix room stays as it is.", room, roomID), nil
}

// unlinkPortal unlinks the group chat at address s, for the chat command and the
// provisioning API alike (both only for admins), and posts a notice in its Matrix room
// unless that is the room the command was given in (here; "" for none). It returns the
// group chat and its room ("" when only the bridge's record was left); a *linkRefusal
// says why it did not unlink.
func (b *Bridge) unlinkPortal(ctx context.Context, s string, here id.RoomID) (jid.JID, id.RoomID, error) {
	room, err := parseRoomJID(s)
	if err != nil {
		return jid.JID{}, "", err
	}
	roomID, err := b.unlinkMUC(ctx, room)
	if errors.Is(err, appservice.ErrNotFound) {
		return room, "", refuse(http.StatusNotFound, "", "%s is not linked.", room)
	} else if err != nil {
		return room, "", err
	}
	if roomID != "" && roomID != here {
		notice := &event.MessageEventContent{MsgType: event.MsgNotice, Body: fmt.Sprintf("This room is no longer linked to %s.", room)}
		err := b.host.Enqueue(ctx, appservice.Message{
			RoomID: roomID, Sender: b.host.BotUserID(), Content: notice,
			RemoteID: "unlink:" + mucChat(room) + ":" + strconv.FormatInt(time.Now().UnixNano(), 10),
		})
		if err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Stringer("room_id", roomID).Msg("Could not post the unlink notice")
		}
	}
	return room, roomID, nil
}

// unlinkMUC removes the portal of room and returns its Matrix room ("" when only the
// bridge's record was left), or ErrNotFound when room is not linked.
func (b *Bridge) unlinkMUC(ctx context.Context, room jid.JID) (id.RoomID, error) {
	chat := mucChat(room)
	b.mu.Lock()
	defer b.mu.Unlock()
	roomID, err := b.host.Store().PortalByKey(ctx, chat)
	if err != nil && !errors.Is(err, appservice.ErrNotFound) {
		return "", err
	}
	mucs, err := b.loadJSON(ctx, "mucs")
	if err != nil {
		return "", err
	}
	recorded, inMucs := mucs[chat]
	if roomID == "" && !inMucs {
		return "", fmt.Errorf("xmpp: unlink %s: %w", room, appservice.ErrNotFound)
	}
	if roomID == "" {
		roomID = id.RoomID(recorded)
	}
	if err := b.host.Store().DeletePortal(ctx, chat); err != nil {
		return "", fmt.Errorf("xmpp: unlink %s: %w", room, err)
	}
	if err := b.updateJSON(ctx, "mucs", func(v map[string]string) { delete(v, chat) }); err != nil {
		return "", fmt.Errorf("xmpp: unlink %s: %w", room, err)
	}
	members, err := b.loadJSON(ctx, "members:"+chat)
	if err != nil {
		return "", fmt.Errorf("xmpp: unlink %s: %w", room, err)
	}
	for _, key := range []string{"members:" + chat, "muc-last:" + chat} {
		if err := b.host.Store().DeleteKV(ctx, key); err != nil {
			return "", fmt.Errorf("xmpp: unlink %s: %w", room, err)
		}
	}
	b.leaveAll(ctx, chat, room, roomID, members)
	zerolog.Ctx(ctx).Info().Stringer("room_id", roomID).Str("muc", room.String()).Msg("Unlinked a MUC")
	return roomID, nil
}

// leaveAll has every puppet in the MUC leave it and forgets the room's occupants.
func (b *Bridge) leaveAll(ctx context.Context, chat string, room jid.JID, roomID id.RoomID, members map[string]string) {
	users := map[id.UserID]bool{}
	for user := range members {
		users[id.UserID(user)] = true
	}
	occPrefix, roomPrefix := room.Bare().String()+"/", roomID.String()+"|"
	b.muc.mu.Lock()
	for key := range b.muc.puppets {
		if user, ok := strings.CutPrefix(key, chat+"|"); ok {
			users[id.UserID(user)] = true
		}
	}
	delete(b.muc.history, chat)
	b.muc.unlinked[room.Bare().String()] = true
	for occ := range b.muc.realJID {
		if strings.HasPrefix(occ, occPrefix) {
			delete(b.muc.realJID, occ)
		}
	}
	for key := range b.muc.inRoom {
		if strings.HasPrefix(key, roomPrefix) {
			delete(b.muc.inRoom, key)
		}
	}
	b.muc.mu.Unlock()
	for user := range users {
		if err := b.leaveMUC(ctx, chat, user); err != nil {
			zerolog.Ctx(ctx).Warn().Err(err).Str("muc", room.String()).Msg("A puppet could not leave an unlinked MUC")
		}
	}
	b.muc.mu.Lock()
	for occ := range b.muc.occupants {
		if strings.HasPrefix(occ, occPrefix) {
			delete(b.muc.occupants, occ)
		}
	}
	b.muc.mu.Unlock()
}
