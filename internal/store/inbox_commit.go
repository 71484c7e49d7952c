package store

import (
	"context"
	"fmt"
	"time"
)

// TxnCommit is one homeserver transaction given to CommitTransactions. TxnID and Events
// are inputs; Duplicate, Inserted and the Seq of each event are filled in.
type TxnCommit struct {
	TxnID  string
	Events []InboxEvent
	// Duplicate is true when (scope, TxnID) was journaled before: by an earlier call, or by
	// an earlier element of the same call.
	Duplicate bool
	// Inserted counts the events of this transaction that were new to the inbox.
	Inserted int
}

// CommitTransaction journals a homeserver transaction atomically: the (scope, txnID) pair
// and every event whose EventID is not among the newest million events of the inbox (done
// or not: recentIDs). duplicate is true when the pair was committed before; its events are journaled all the same, because a
// homeserver may reuse a transaction ID for a retried batch that holds more events
// (Dendrite derives the ID from the first event's timestamp), and skipping them would lose
// them. Deduplication is by event ID; of an ID repeated within events, the first wins.
// inserted counts new events.
//
// CommitTransaction sets events[i].Seq to the seq the database assigned to every event
// it inserted (and ReceivedAt to the time journaled), and Seq to 0 for every event skipped
// as a duplicate, so that the caller can hand the new events on without reading them
// back. It is CommitTransactions with one element.
func (s *Store) CommitTransaction(ctx context.Context, scope, txnID string, events []InboxEvent) (duplicate bool, inserted int, err error) {
	c := [1]TxnCommit{{TxnID: txnID, Events: events}}
	if err := s.commitTxns(ctx, scope, c[:]); err != nil {
		return false, 0, fmt.Errorf("store: commit transaction %s: %w", txnID, err)
	}
	return c[0].Duplicate, c[0].Inserted, nil
}

// CommitTransactions is CommitTransaction for several homeserver transactions of one
// scope in one database transaction (group commit: one fsync for all). Each keeps
// CommitTransaction's semantics, in slice order: events are deduplicated by event ID also
// across the transactions of the call (the first occurrence is inserted and gets the Seq),
// and a TxnID repeated within the call is a Duplicate from its second occurrence on. On
// error nothing is committed and the outputs are zero.
func (s *Store) CommitTransactions(ctx context.Context, scope string, txns []TxnCommit) error {
	if len(txns) == 0 {
		return nil
	}
	if err := s.commitTxns(ctx, scope, txns); err != nil {
		return fmt.Errorf("store: commit %d transactions (first %s): %w", len(txns), txns[0].TxnID, err)
	}
	return nil
}

// eventRef locates an event in a []TxnCommit.
type eventRef struct{ txn, ev int }

// commitTxns clears the outputs of txns, then journals them with the dialect's path.
func (s *Store) commitTxns(ctx context.Context, scope string, txns []TxnCommit) error {
	clearOutputs(txns)
	now := time.Now().UnixMilli()
	var err error
	if s.dialect == Postgres {
		err = s.commitPostgres(ctx, scope, now, txns)
	} else {
		err = s.commitSQLite(ctx, scope, now, txns)
	}
	if err != nil {
		clearOutputs(txns) // rolled back: nothing was inserted
		return err
	}
	for i := range txns {
		for j := range txns[i].Events {
			if txns[i].Events[j].Seq > 0 {
				txns[i].Events[j].ReceivedAt = now // as journaled, as PendingEvents would read it
			}
		}
	}
	return nil
}

func clearOutputs(txns []TxnCommit) {
	for i := range txns {
		txns[i].Duplicate, txns[i].Inserted = false, 0
		for j := range txns[i].Events {
			txns[i].Events[j].Seq = 0
		}
	}
}

// markJournaled clears Duplicate on the first transaction with txnID: the database journals
// a transaction ID repeated within one statement once.
func markJournaled(txns []TxnCommit, txnID string) {
	for i := range txns {
		if txns[i].TxnID == txnID {
			txns[i].Duplicate = false
			return
		}
	}
}
