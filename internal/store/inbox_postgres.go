package store

import (
	"context"
	"database/sql"
	"fmt"
)

// commitPostgres journals the transactions and their new events (one batch,
// inbox_batch.go) with one statement (postgresIngestSQL). An event is new unless its ID
// came earlier in the call or is in the recent window (recentIDs).
//
// The window is up to date without asking the database while this store holds the
// instance lock (LockInstance): no other process writes the inbox then, and this one
// commits under r.mu, so the statement runs on its own, outside any explicit transaction —
// one round trip. Without the lock (tools, tests), and after a failed commit whose outcome
// is unknown, the commit is a transaction that takes the inbox lock first and then loads
// what was committed since.
func (s *Store) commitPostgres(ctx context.Context, scope string, now int64, txns []TxnCommit) error {
	st, err := s.stmt(ctx, stmtKey{stmtInboxIngest, 0}, postgresIngestSQL)
	if err != nil {
		return err
	}
	r := s.recent
	r.mu.Lock()
	defer r.mu.Unlock()
	var added []pendingEntry
	run := func(q querier, st *sql.Stmt) error {
		var evs []*InboxEvent
		var err error
		if evs, added, err = newEvents(ctx, q, r, txns); err != nil {
			return err
		}
		txnIDs := make([]string, len(txns))
		for i := range txns {
			txnIDs[i] = txns[i].TxnID
			txns[i].Duplicate = true // until the statement returns the ID as journaled
		}
		var body []byte
		if len(evs) > 0 {
			body = encodeBatch(evs)
		}
		rows, err := st.QueryContext(ctx, scope, now, txnIDs, len(evs), body)
		if err != nil {
			return err
		}
		first, err := scanIngest(rows, txns)
		if err != nil {
			return err
		}
		assignSeqs(txns, added, first)
		return nil
	}
	fast := r.owned && !r.stale
	if fast {
		err = run(s.db, st)
	} else {
		err = s.inTx(ctx, lockInbox, func(tx *sql.Tx) error {
			if err := r.catchUpWith(ctx, tx); err != nil {
				return err
			}
			return run(tx, tx.StmtContext(ctx, st))
		})
	}
	if err != nil {
		// The statement may have committed all the same (a connection lost at its commit):
		// the next commit loads what it finds under the inbox lock.
		r.stale = true
		return err
	}
	if !fast {
		r.stale = false
	}
	for _, e := range added {
		r.add(e.hash, e.seq)
	}
	return nil
}

// scanIngest reads postgresIngestSQL's rows: a transaction ID newly journaled ("j"), and
// the first seq of the batch ("s"). It closes rows and reports the error of the
// statement, which includes its commit.
func scanIngest(rows *sql.Rows, txns []TxnCommit) (int64, error) {
	defer rows.Close()
	first := int64(-1)
	for rows.Next() {
		var kind, txnID string
		var seq int64
		if err := rows.Scan(&kind, &txnID, &seq); err != nil {
			return 0, err
		}
		if kind == "s" {
			first = seq
		} else {
			markJournaled(txns, txnID)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if first < 0 {
		return 0, fmt.Errorf("the ingest statement returned no seq")
	}
	return first, nil
}
