package case116117

import (
	"context"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Work rooms: existing rooms whose members work a link's cases (LinkConfig.Rooms).

// joinWorkRooms joins the configured rooms it can; a room that needs an invite is joined
// when the invite comes (handleInvite).
func (l *link) joinWorkRooms(ctx context.Context) {
	bot, err := l.bot()
	if err != nil {
		return
	}
	for _, r := range l.cfg.Rooms {
		room, err := l.resolveRoom(ctx, r)
		if err == nil {
			err = bot.JoinRoom(ctx, room)
		}
		if err != nil {
			l.log(ctx).Warn().Err(err).Str("room", r).Msg("Could not join a work room; waiting for an invite")
			l.notify(ctx, l.admin(), "workroom:"+r, fmt.Sprintf("ℹ️ Der Bot ist noch nicht im Raum %s: bitte %s dorthin einladen.", r, l.botID()), "")
			continue
		}
		l.addWorkRoom(room)
	}
}

func (l *link) resolveRoom(ctx context.Context, r string) (id.RoomID, error) {
	if strings.HasPrefix(r, "!") {
		return id.RoomID(r), nil
	}
	bot, err := l.bot()
	if err != nil {
		return "", err
	}
	return bot.ResolveAlias(ctx, id.RoomAlias(r))
}

func (l *link) addWorkRoom(room id.RoomID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.workRooms {
		if r == room {
			return
		}
	}
	l.workRooms = append(l.workRooms, room)
}

func (l *link) rooms() []id.RoomID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]id.RoomID(nil), l.workRooms...)
}

// handleInvite joins a configured work room when the link's bot is invited to it.
func (l *link) handleInvite(ctx context.Context, evt *event.Event) error {
	if evt.Content.AsMember().Membership != event.MembershipInvite {
		return nil
	}
	for _, r := range l.cfg.Rooms {
		room, err := l.resolveRoom(ctx, r)
		if err != nil || room != evt.RoomID {
			continue
		}
		bot, err := l.bot()
		if err != nil {
			return err
		}
		if err := bot.JoinRoom(ctx, room); err != nil {
			return err
		}
		l.addWorkRoom(room)
		return nil
	}
	return nil
}

// workers are the members of the work rooms, who are invited to every case room.
func (l *link) workers(ctx context.Context) []id.UserID {
	bot, err := l.bot()
	if err != nil {
		return nil
	}
	var out []id.UserID
	for _, room := range l.rooms() {
		members, err := bot.JoinedMembers(ctx, room)
		if err != nil {
			l.log(ctx).Warn().Err(err).Stringer("room_id", room).Msg("Could not list a work room's members")
			continue
		}
		for u := range members {
			if !l.b.isOwnUser(u) && !l.b.isNamespaced(u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// announce posts a notice in every work room.
func (l *link) announce(ctx context.Context, remoteID, text, html string) error {
	for _, room := range l.rooms() {
		if err := l.post(ctx, room, remoteID+":"+string(room), text, html); err != nil {
			return err
		}
	}
	return nil
}
