package store

import (
	"context"
	"database/sql"
)

// commitPostgres journals the transactions and inserts their new events with one
// statement (postgresIngestSQL). An event is new unless its ID came earlier in the call or
// is in the recent window (recentIDs).
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
		var args postgresIngestArgs
		if added, err = args.collect(ctx, q, r, txns); err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, scope, now, args.txnIDs, args.ids, args.rooms, args.kinds, args.payloads)
		if err != nil {
			return err
		}
		return scanInserted(rows, txns, firstOccurrences(txns))
	}
	fast := r.owned && !r.stale
	if fast {
		err = run(s.db, st)
	} else {
		err = s.inTx(ctx, lockInbox, func(tx *sql.Tx) error {
			var newest int64
			if err := tx.QueryRowContext(ctx, sqliteMaxSeqSQL(0)).Scan(&newest); err != nil {
				return err
			}
			if err := r.catchUp(ctx, tx, newest); err != nil {
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
	for i := range added {
		ref := added[i].ref
		added[i].seq = txns[ref.txn].Events[ref.ev].Seq
		r.add(added[i].hash, added[i].seq)
	}
	return nil
}

// postgresIngestArgs are the array parameters of postgresIngestSQL.
type postgresIngestArgs struct {
	txnIDs, ids, rooms, kinds []string
	payloads                  [][]byte
}

// pendingEntry is a window entry whose seq the commit will tell.
type pendingEntry struct {
	recentEntry
	ref eventRef
}

// collect fills the arguments with every transaction ID and the new events of txns, and
// returns the window entries they will make. It marks every transaction a duplicate until
// the statement returns its ID as newly journaled.
func (a *postgresIngestArgs) collect(ctx context.Context, q querier, r *recentIDs, txns []TxnCommit) ([]pendingEntry, error) {
	var total int
	for _, t := range txns {
		total += len(t.Events)
	}
	a.txnIDs = make([]string, len(txns))
	a.ids = make([]string, 0, total)
	a.rooms = make([]string, 0, total)
	a.kinds = make([]string, 0, total)
	a.payloads = make([][]byte, 0, total)
	added := make([]pendingEntry, 0, total)
	inCall := make(map[string]struct{}, total)
	for i, t := range txns {
		a.txnIDs[i] = t.TxnID
		txns[i].Duplicate = true
		for k, e := range t.Events {
			if _, dup := inCall[e.EventID]; dup {
				continue
			}
			inCall[e.EventID] = struct{}{}
			h := r.hash(e.EventID)
			if dup, err := r.seen(ctx, q, h, e.EventID); err != nil || dup {
				if err != nil {
					return nil, err
				}
				continue
			}
			added = append(added, pendingEntry{recentEntry{hash: h}, eventRef{i, k}})
			a.ids = append(a.ids, e.EventID)
			a.rooms = append(a.rooms, e.RoomID)
			a.kinds = append(a.kinds, e.Kind)
			a.payloads = append(a.payloads, nonNil(e.Payload))
		}
	}
	return added, nil
}
