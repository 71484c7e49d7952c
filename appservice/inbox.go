package appservice

import (
	"context"
	"fmt"
	"strconv"
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

// commit journals txn. Ephemeral events have no event ID; they get one derived from the
// transaction, so a replayed transaction cannot deliver them twice.
func (in *inbox) commit(ctx context.Context, txnID string, txn *Transaction) (duplicate bool, inserted int, err error) {
	start := time.Now()
	rows := make([]store.InboxEvent, 0, len(txn.Events)+len(txn.Ephemeral))
	for _, e := range txn.Events {
		rows = append(rows, store.InboxEvent{EventID: e.EventID, RoomID: e.RoomID, Kind: kindTimeline, Payload: e.Raw})
	}
	for i, e := range txn.Ephemeral {
		rows = append(rows, store.InboxEvent{
			EventID: "eph:" + in.scope + ":" + txnID + ":" + strconv.Itoa(i),
			RoomID:  e.RoomID, Kind: kindEphemeral, Payload: e.Raw,
		})
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
)
