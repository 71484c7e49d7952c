package appservice

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// An outbox row is "in doubt" when its send may have reached the homeserver but its event ID
// was not recorded (the process died, or the connection dropped, before the answer). Until it
// is settled the message map has no entry for the event, so a module that resolves a Matrix
// event to its remote message (a reply in an email thread, an XMPP correction or reaction)
// would find nothing. Two paths settle such a row before a module can ask:
//
//   - The echo: every message the outbox sends carries its transaction ID in its content
//     (txnMarkerKey), and the homeserver pushes our own users' events back in transactions.
//     The dispatcher settles the row when it takes the echo from the journal, before routing.
//     Dispatch is in order per room and a reply in a room comes after its root, so the root
//     is settled before the reply is handled.
//   - A lookup miss: when a module's MessageByEvent finds nothing while the module has rows
//     in doubt, the core asks the homeserver for the event (in the room of the event being
//     handled, else in the rooms of the rows in doubt, boundedly) and settles the row from
//     the transaction ID in its content.
//
// The outbox's own look-up (findSent, after InDoubtSettle) stays as the last resort.

// settleEcho records, for a timeline event sent by one of our users whose content carries an
// outbox transaction ID, that the row was sent as this event. A store failure is retried
// with backoff; after the retry budget the event goes on (the outbox still looks the row up
// itself). It returns false when the core is stopping: the event then stays pending.
func (d *dispatcher) settleEcho(ctx context.Context, log zerolog.Logger, evt *event.Event, kind string) bool {
	for attempt := 1; ; attempt++ {
		err := d.core.settleEcho(ctx, evt, kind)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt >= d.core.opts.Retry.Attempts {
			log.Error().Err(err).Int("attempts", attempt).Msg("Failed to record the echo of a sent message; the outbox will look for it")
			return true
		}
		wait := d.core.opts.Retry.backoff(attempt)
		log.Warn().Err(err).Dur("retry_in", wait).Msg("Failed to record the echo of a sent message; retrying")
		if !d.queue.pause(ctx, wait) {
			return false
		}
	}
}

// settleEcho settles the outbox row whose echo evt is, if it is one (see settleEcho above).
func (c *Core) settleEcho(ctx context.Context, evt *event.Event, kind string) error {
	if kind != kindTimeline || evt.ID == "" || evt.StateKey != nil || !c.isOurs(evt.Sender) {
		return nil
	}
	txnID := contentString(&evt.Content, txnMarkerKey)
	if txnID == "" {
		return nil
	}
	_, err := c.settleSent(ctx, txnID, evt.Sender, evt.RoomID, evt.ID, "echo")
	return err
}

// settleSent marks the row with txnID, sender and room sent as eventID, when it is still
// pending, and wakes whoever waits for it. A transaction ID no row carries is not an error.
// It reports whether the row is now recorded sent (by this call or before it).
func (c *Core) settleSent(ctx context.Context, txnID string, sender id.UserID, roomID id.RoomID, eventID id.EventID, how string) (bool, error) {
	row, recorded, err := c.store.MarkOutboxSentByTxn(context.WithoutCancel(ctx), txnID, sender.String(), roomID.String(), eventID.String())
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if recorded {
		zerolog.Ctx(ctx).Info().Str("module", row.Module).Str("remote_id", row.RemoteID).Stringer("room_id", roomID).
			Stringer("event_id", eventID).Str("by", how).Msg("A message whose send was in doubt was sent; recorded it")
		c.outbox.notify(row.Seq, sendResult{eventID: eventID})
	}
	return row.State == store.OutboxSent, nil
}

// handledEventKey carries the event a module handler is called with, for settleMiss.
type handledEventKey struct{}

func withHandledEvent(ctx context.Context, evt *event.Event) context.Context {
	return context.WithValue(ctx, handledEventKey{}, evt)
}

// maxMissRooms bounds the rooms settleMiss asks the homeserver in when it does not know the
// room of the event being handled.
const maxMissRooms = 8

// settleMiss is called when module's lookup of eventID found no remote message. When the
// module has outbox rows in doubt, the event may be one of them whose echo has not been
// handled: settleMiss fetches the event from the homeserver, as the row's sender, and settles
// the row from the transaction ID in its content. It reports whether a row was settled; an
// error means it could not tell (the homeserver did not answer).
func (c *Core) settleMiss(ctx context.Context, module string, eventID id.EventID) (bool, error) {
	var roomID id.RoomID
	if evt, ok := ctx.Value(handledEventKey{}).(*event.Event); ok && evt != nil {
		roomID = evt.RoomID
	}
	rows, err := c.store.InDoubtOutbox(ctx, module, roomID.String(), 256)
	if err != nil || len(rows) == 0 {
		return false, err
	}
	// One fetch per room, as the first sender in doubt there (it is in the room).
	senders := map[string]string{}
	var rooms []string
	for _, r := range rows {
		if _, ok := senders[r.RoomID]; !ok && len(rooms) < maxMissRooms {
			senders[r.RoomID] = r.Sender
			rooms = append(rooms, r.RoomID)
		}
	}
	var errs []error
	for _, room := range rooms {
		evt, err := c.as.Client(id.UserID(senders[room])).GetEvent(requestContext(ctx), id.RoomID(room), eventID)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("failed to fetch event %s in %s: %w", eventID, room, requestError(err)))
			continue
		}
		evt.RoomID = id.RoomID(room)
		txnID := c.txnMarker(ctx, evt)
		if txnID == "" || !c.isOurs(evt.Sender) {
			return false, nil
		}
		return c.settleSent(ctx, txnID, evt.Sender, id.RoomID(room), eventID, "lookup")
	}
	return false, errors.Join(errs...)
}

// isNotFound reports a 404 of the homeserver (the event is not in that room, or not visible).
func isNotFound(err error) bool {
	var httpErr mautrix.HTTPError
	return errors.As(err, &httpErr) && httpErr.Response != nil && httpErr.Response.StatusCode == http.StatusNotFound
}
