package appservice

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// inbox journals homeserver transactions. A transaction is acknowledged only after commit
// returns: its id (scoped to the registration, see registration.TxnScope) and every new
// event are then in the database, and the dispatcher is woken to hand them to modules.
type inbox struct {
	store   *store.Store // immutable
	scope   string       // immutable
	metrics *metrics     // immutable
	wake    func()       // immutable; wakes the dispatcher
}

// commit journals txn. Events are deduplicated by event ID, not by transaction ID (see
// store.CommitTransaction for why). Ephemeral events have no event ID; they get one derived
// from the transaction ID and their content (not their position, which changes when a
// homeserver retries a transaction ID with a larger batch), so a replayed transaction cannot
// deliver them twice and a reused transaction ID with other content loses nothing.
func (in *inbox) commit(ctx context.Context, txnID string, txn *Transaction) (duplicate bool, inserted int, err error) {
	start := time.Now()
	rows := make([]store.InboxEvent, 0, len(txn.Events)+len(txn.Ephemeral)+len(txn.ToDevice))
	for _, e := range txn.Events {
		rows = append(rows, store.InboxEvent{EventID: e.EventID, RoomID: e.RoomID, Kind: kindTimeline, Payload: e.Raw})
	}
	for _, e := range txn.Ephemeral {
		rows = append(rows, store.InboxEvent{
			EventID: ephemeralID(in.scope, txnID, e.Raw),
			RoomID:  e.RoomID, Kind: kindEphemeral, Payload: e.Raw,
		})
	}
	for _, e := range txn.ToDevice {
		// One lane for all to-device events: Olm messages from one sender must be
		// decrypted in order.
		rows = append(rows, store.InboxEvent{
			EventID: ephemeralID(in.scope, txnID, e.Raw),
			RoomID:  "", Kind: kindToDevice, Payload: e.Raw,
		})
	}
	if len(txn.DevicesChanged) > 0 {
		rows = append(rows, deviceListRow(in.scope, txnID, txn.DevicesChanged))
	}
	duplicate, inserted, err = in.store.CommitTransaction(ctx, in.scope, txnID, rows)
	if err != nil {
		return false, 0, fmt.Errorf("failed to journal transaction %s: %w", txnID, err)
	}
	in.metrics.ingestLatency.Observe(time.Since(start).Seconds())
	if inserted > 0 {
		in.metrics.eventsIn.Add(float64(inserted))
		in.wake()
	}
	return duplicate, inserted, nil
}

const (
	kindTimeline  = "timeline"
	kindEphemeral = "ephemeral"
	kindToDevice  = "todevice"
)

func ephemeralID(scope, txnID string, raw []byte) string {
	h := sha256.New()
	h.Write([]byte(scope + "\x00" + txnID + "\x00"))
	h.Write(raw)
	return "eph:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}
