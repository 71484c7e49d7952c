package appservice

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// inbox journals homeserver transactions. A transaction is acknowledged only after commit
// returns: its id (scoped to the registration, see registration.TxnScope) and every new
// event are then in the database, and the new events have been offered to the dispatcher.
//
// Group commit: transactions that arrive while another is being written wait and are then
// written together, in one database transaction and so one fsync (store.CommitTransactions).
// One caller at a time leads: it writes what has queued, hands the new events to the
// dispatcher in commit order, and passes the lead to the oldest waiter when its own
// transaction is done, so no caller writes for others for long.
type inbox struct {
	store   *store.Store                    // immutable
	scope   string                          // immutable
	metrics *metrics                        // immutable
	offer   func(events []store.InboxEvent) // immutable; hands new events to the dispatcher

	mu      sync.Mutex
	queue   []*commitReq // guarded by mu; waiting to be written, oldest first
	leading bool         // guarded by mu; a caller is writing
}

// Bounds of one group commit: the writer takes queued transactions up to these.
const (
	groupMaxTxns   = 64
	groupMaxEvents = 4096
)

// commitReq is one transaction waiting for the group commit.
type commitReq struct {
	txn  store.TxnCommit
	done chan commitResult // buffered 1
}

// commitResult answers a commitReq: the error of its write, or lead: the request has not
// been written and its caller now leads.
type commitResult struct {
	err  error
	lead bool
}

// commit journals txn. Events are deduplicated by event ID, not by transaction ID (see
// store.CommitTransaction for why). Ephemeral events have no event ID; they get one derived
// from the transaction ID and their content (not their position, which changes when a
// homeserver retries a transaction ID with a larger batch), so a replayed transaction cannot
// deliver them twice and a reused transaction ID with other content loses nothing.
func (in *inbox) commit(ctx context.Context, txnID string, txn *Transaction) (duplicate bool, inserted int, err error) {
	start := time.Now()
	req := &commitReq{txn: store.TxnCommit{TxnID: txnID, Events: inboxRows(in.scope, txnID, txn)}, done: make(chan commitResult, 1)}
	in.mu.Lock()
	in.queue = append(in.queue, req)
	if in.leading {
		in.mu.Unlock()
		if res := <-req.done; !res.lead {
			err = res.err
		} else {
			err = in.lead(ctx, req)
		}
	} else {
		in.leading = true
		in.mu.Unlock()
		err = in.lead(ctx, req)
	}
	if err != nil {
		return false, 0, fmt.Errorf("failed to journal transaction %s: %w", txnID, err)
	}
	in.metrics.ingestLatency.Observe(time.Since(start).Seconds())
	if req.txn.Inserted > 0 {
		in.metrics.eventsIn.Add(float64(req.txn.Inserted))
	}
	return req.txn.Duplicate, req.txn.Inserted, nil
}

// lead writes queued transactions until own is written, then passes the lead on (or ends
// it when nothing waits). The caller leads.
func (in *inbox) lead(ctx context.Context, own *commitReq) error {
	for {
		in.mu.Lock()
		batch, events := 0, 0
		for batch < len(in.queue) && batch < groupMaxTxns && (batch == 0 || events+len(in.queue[batch].txn.Events) <= groupMaxEvents) {
			events += len(in.queue[batch].txn.Events)
			batch++
		}
		reqs := in.queue[:batch:batch]
		in.queue = in.queue[batch:]
		in.mu.Unlock()

		ownErr, ownDone := in.write(ctx, reqs, own)

		in.mu.Lock()
		if !ownDone {
			in.mu.Unlock()
			continue
		}
		if len(in.queue) == 0 {
			in.leading = false
		} else {
			next := in.queue[0]
			next.done <- commitResult{lead: true} // it writes itself and what queued behind it
		}
		in.mu.Unlock()
		return ownErr
	}
}

// write commits reqs in one database transaction, offers the new events to the dispatcher
// in commit order, and answers every request but own; it returns own's error and whether
// own was among reqs.
func (in *inbox) write(ctx context.Context, reqs []*commitReq, own *commitReq) (error, bool) {
	txns := make([]store.TxnCommit, len(reqs))
	for i, r := range reqs {
		txns[i] = r.txn
	}
	// The write is not cancelled with one caller's request: it carries the others too, and a
	// homeserver that gave up retries the transaction, which the event IDs deduplicate.
	err := in.store.CommitTransactions(context.WithoutCancel(ctx), in.scope, txns)
	if err == nil {
		var fresh []store.InboxEvent
		for _, t := range txns {
			for _, e := range t.Events {
				if e.Seq > 0 {
					fresh = append(fresh, e)
				}
			}
		}
		if len(fresh) > 0 {
			in.offer(fresh)
		}
	}
	var ownErr error
	ownDone := false
	for i, r := range reqs {
		r.txn = txns[i]
		if r == own {
			ownErr, ownDone = err, true
			continue
		}
		r.done <- commitResult{err: err}
	}
	return ownErr, ownDone
}

// inboxRows are the journal rows of txn.
func inboxRows(scope, txnID string, txn *Transaction) []store.InboxEvent {
	rows := make([]store.InboxEvent, 0, len(txn.Events)+len(txn.Ephemeral)+len(txn.ToDevice)+1)
	for _, e := range txn.Events {
		rows = append(rows, store.InboxEvent{EventID: e.EventID, RoomID: e.RoomID, Kind: kindTimeline, Payload: e.Raw})
	}
	for _, e := range txn.Ephemeral {
		rows = append(rows, store.InboxEvent{
			EventID: ephemeralID(scope, txnID, e.Raw),
			RoomID:  e.RoomID, Kind: kindEphemeral, Payload: e.Raw,
		})
	}
	for _, e := range txn.ToDevice {
		// One lane for all to-device events: Olm messages from one sender must be
		// decrypted in order.
		rows = append(rows, store.InboxEvent{
			EventID: ephemeralID(scope, txnID, e.Raw),
			RoomID:  "", Kind: kindToDevice, Payload: e.Raw,
		})
	}
	if len(txn.DevicesChanged) > 0 {
		rows = append(rows, deviceListRow(scope, txnID, txn.DevicesChanged))
	}
	return rows
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
