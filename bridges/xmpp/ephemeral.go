package xmpp

import (
	"context"
	"errors"
	"slices"
	"sync"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

var _ appservice.EphemeralHandler = (*Bridge)(nil)

// typingState remembers who was typing in each room, to send "paused" when they stop.
type typingState struct {
	mu    sync.Mutex
	rooms map[id.RoomID][]id.UserID
}

// HandleEphemeral implements appservice.EphemeralHandler: Matrix typing notifications
// become XEP-0085 chat states, read receipts XEP-0333 displayed markers and presence the
// puppet's presence. (Homeservers that do not push ephemeral events to appservices, such
// as Dendrite, send none.)
func (b *Bridge) HandleEphemeral(ctx context.Context, evt *event.Event) error {
	if evt.Type == event.EphemeralEventPresence {
		return b.presenceToXMPP(ctx, evt)
	}
	if evt.RoomID == "" {
		return nil
	}
	chat, err := b.host.Store().PortalByRoom(ctx, evt.RoomID)
	if errors.Is(err, appservice.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	switch evt.Type {
	case event.EphemeralEventTyping:
		return b.typingToXMPP(ctx, chat, evt)
	case event.EphemeralEventReceipt:
		return b.receiptsToXMPP(ctx, chat, evt)
	}
	return nil
}

func (b *Bridge) typingToXMPP(ctx context.Context, chat string, evt *event.Event) error {
	now := evt.Content.AsTyping().UserIDs
	b.typing.mu.Lock()
	if b.typing.rooms == nil {
		b.typing.rooms = map[id.RoomID][]id.UserID{}
	}
	before := b.typing.rooms[evt.RoomID]
	b.typing.rooms[evt.RoomID] = now
	b.typing.mu.Unlock()
	var errs []error
	for _, u := range now {
		if !slices.Contains(before, u) && !b.isGhost(u.String()) {
			errs = append(errs, b.chatState(ctx, chat, u, "composing"))
		}
	}
	for _, u := range before {
		if !slices.Contains(now, u) && !b.isGhost(u.String()) {
			errs = append(errs, b.chatState(ctx, chat, u, "paused"))
		}
	}
	return errors.Join(errs...)
}

func (b *Bridge) chatState(ctx context.Context, chat string, user id.UserID, state string) error {
	oc, err := b.outChat(ctx, chat, user)
	if err != nil || oc == nil {
		return err
	}
	raw, err := (&xmsg.Message{ID: b.iqs.NewID(), Type: oc.typ(), From: oc.from, To: oc.to, ChatState: state, NoStore: true}).Marshal()
	if err != nil {
		return err
	}
	return b.send(ctx, raw)
}

// receiptsToXMPP sends a displayed marker for each XMPP message a Matrix user read.
func (b *Bridge) receiptsToXMPP(ctx context.Context, chat string, evt *event.Event) error {
	var errs []error
	for evtID, types := range *evt.Content.AsReceipt() {
		for user := range types[event.ReceiptTypeRead] {
			if b.isGhost(user.String()) {
				continue
			}
			oc, err := b.outChat(ctx, chat, user)
			if err != nil || oc == nil {
				errs = append(errs, err)
				continue
			}
			_, r, err := b.refOfEvent(ctx, evtID)
			if err != nil || r.From == oc.sender {
				continue // not bridged, or the user's own message
			}
			raw, err := (&xmsg.Message{ID: b.iqs.NewID(), Type: oc.typ(), From: oc.from, To: oc.to, Displayed: r.xmppID(oc.groupchat)}).Marshal()
			if err == nil {
				err = b.send(ctx, raw)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
