package e2eeclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Message is one timeline event (not a state event) the client received.
type Message struct {
	// Event is the event as the user sees it: decrypted when it was encrypted and could
	// be decrypted, else as received.
	Event *event.Event
	// Encrypted says whether the event came as m.room.encrypted.
	Encrypted bool
	// DecryptError is why an encrypted event could not be decrypted (nil otherwise).
	// Errors wrapping crypto.ErrNoSessionFound are retried when room keys arrive; the
	// event is then recorded again, decrypted.
	DecryptError error
	// SenderDevice is the device whose Megolm session encrypted the event, if known.
	SenderDevice *id.Device
	// Trust is mautrix's trust state of SenderDevice for a decrypted event
	// (id.TrustStateCrossSignedTOFU or better: the device is cross-signed by its own
	// user, so Element shows no "unverified device" warning).
	Trust id.TrustState
}

// Received returns the messages received in roomID so far, in order of arrival. An
// event that could first not be decrypted appears twice: with DecryptError, then
// decrypted.
func (c *Client) Received(roomID id.RoomID) []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.received[roomID]...)
}

// WaitMessage waits until a message of roomID matches and returns the first match.
func (c *Client) WaitMessage(ctx context.Context, roomID id.RoomID, match func(Message) bool) (Message, error) {
	for {
		c.mu.Lock()
		for _, m := range c.received[roomID] {
			if match(m) {
				c.mu.Unlock()
				return m, nil
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-c.syncDone:
			return Message{}, fmt.Errorf("e2eeclient: the sync loop has ended: %w", c.syncErr)
		case <-ctx.Done():
			return Message{}, fmt.Errorf("e2eeclient: waiting for a message in %s: %w", roomID, ctx.Err())
		}
	}
}

// handleEvent records timeline events, decrypting encrypted ones.
func (c *Client) handleEvent(ctx context.Context, evt *event.Event) {
	if evt.Mautrix.EventSource&event.SourceTimeline == 0 {
		return
	}
	c.mu.Lock()
	c.lastSeen[evt.RoomID] = evt.ID
	c.mu.Unlock()
	if evt.StateKey != nil {
		return
	}
	if evt.Type != event.EventEncrypted {
		c.record(Message{Event: evt})
		return
	}
	c.decryptAndRecord(ctx, evt, true)
}

// decryptAndRecord decrypts evt and records the result. A missing session makes evt
// pending (recorded with the error only the first time).
func (c *Client) decryptAndRecord(ctx context.Context, evt *event.Event, first bool) {
	dec, err := c.mach.DecryptMegolmEvent(ctx, evt)
	if err != nil {
		if errors.Is(err, crypto.ErrNoSessionFound) {
			c.mu.Lock()
			c.pending[evt.ID] = evt
			c.mu.Unlock()
		}
		if first {
			c.record(Message{Event: evt, Encrypted: true, DecryptError: err})
		}
		return
	}
	if dec.Content.Parsed == nil {
		_ = dec.Content.ParseRaw(dec.Type)
	}
	c.record(Message{
		Event: dec, Encrypted: true,
		SenderDevice: dec.Mautrix.TrustSource, Trust: dec.Mautrix.TrustState,
	})
}

// retryPending retries the events that lacked their room key; it runs after the
// to-device events of a sync response have been handled.
func (c *Client) retryPending(ctx context.Context) {
	c.mu.Lock()
	evts := make([]*event.Event, 0, len(c.pending))
	for eventID, evt := range c.pending {
		evts = append(evts, evt)
		delete(c.pending, eventID)
	}
	c.mu.Unlock()
	slices.SortFunc(evts, func(a, b *event.Event) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	for _, evt := range evts {
		c.decryptAndRecord(ctx, evt, false)
	}
}

// record appends m to its room's messages and wakes the waiters.
func (c *Client) record(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.received[m.Event.RoomID] = append(c.received[m.Event.RoomID], m)
	close(c.changed)
	c.changed = make(chan struct{})
}
