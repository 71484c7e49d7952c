package xmpp

import (
	"context"
	"errors"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// fromMUC bridges a group chat message. Every puppet in the room receives a copy; the first
// is handled and the others are recognised by the room's stanza-id. The room reflects our
// own messages back: those are recognised by their origin-id and only teach us the
// stanza-id the room gave them.
func (b *Bridge) fromMUC(ctx context.Context, m *xmsg.Message, raw []byte) error {
	room := m.From.Bare()
	chat := mucChat(room)
	roomID, err := b.host.Store().PortalByKey(ctx, chat)
	if errors.Is(err, appservice.ErrNotFound) {
		return nil // a room whose portal is gone; its puppets leave on the next rejoin
	} else if err != nil {
		return err
	}
	if m.From.Resourcepart() == "" {
		return nil // the room itself (configuration notices)
	}
	sid := m.StanzaIDBy(room)
	// Each puppet gets a copy: only the first is looked at.
	dedup := sid
	if dedup == "" {
		dedup = m.From.String() + "|" + m.OriginID + "|" + m.ID
	}
	dedup = chat + "|" + dedup
	if !b.seen.add(dedup) {
		return nil
	}
	for _, own := range []string{m.OriginID, m.ID} {
		if own == "" {
			continue
		}
		key := ownKey(chat, own)
		if r, err := b.getRef(ctx, key); err == nil {
			if sid != "" && r.SID == "" {
				r.SID = sid
				if err := b.putRef(ctx, key, r); err != nil {
					b.seen.forget(dedup)
					return err
				}
			}
			return nil
		}
	}
	b.muc.mu.Lock()
	_, ours := b.muc.occupants[m.From.String()]
	b.muc.mu.Unlock()
	if ours {
		return nil // one of our puppets, with a message the bridge did not send (or forgot)
	}
	if err := b.fromOccupant(ctx, m, raw, chat, roomID); err != nil {
		b.seen.forget(dedup)
		return err
	}
	return nil
}

func (b *Bridge) fromOccupant(ctx context.Context, m *xmsg.Message, raw []byte, chat string, roomID id.RoomID) error {
	b.muc.mu.Lock()
	real, known := b.muc.realJID[m.From.String()]
	b.muc.mu.Unlock()
	var u *xmsg.MUCUser
	if known {
		u = &xmsg.MUCUser{JID: real}
	}
	ghostID := b.occupantGhost(m.From, u)
	if err := b.ghostInRoom(ctx, roomID, ghostID, m.From, u); err != nil {
		return err
	}
	if m.Subject != nil && m.Body == "" {
		// The bot sets it: ghosts have no power to change the room's state.
		_, err := b.host.Bot().SendState(ctx, roomID, event.StateTopic, "", &event.TopicEventContent{Topic: *m.Subject})
		return err
	}
	in := &inbound{msg: m, raw: raw, chat: chat, room: roomID, sender: m.From, ghost: ghostID, groupchat: true}
	if err := b.toMatrixInOrder(ctx, in); err != nil {
		return err
	}
	// Where the next catch-up starts (see historyRequest).
	at := m.Delay
	if at.IsZero() {
		at = time.Now()
	}
	return b.host.Store().PutKV(ctx, "muc-last:"+chat, at.UTC().Format(time.RFC3339Nano))
}
