package store

import (
	"context"
	"database/sql"
)

// commitSQLite journals each transaction ID with a prepared single-row insert and the new
// events of all of them as one batch (inbox_batch.go). An event is new unless its ID came
// earlier in the call or is in the recent window (recentIDs); the window is brought up to
// date first, inside the transaction, which on SQLite holds the write lock from BEGIN. The
// window learns the new events once the commit has succeeded.
func (s *Store) commitSQLite(ctx context.Context, scope string, now int64, txns []TxnCommit) error {
	// Prepared before the transaction: on SQLite it holds the only connection.
	var err error
	prepare := func(kind stmtKind, build func(int) string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = s.stmt(ctx, stmtKey{kind, 0}, build)
		return st
	}
	journal := prepare(stmtInboxJournal, sqliteJournalSQL)
	next := prepare(stmtInboxNext, nextSeqSQL)
	advance := prepare(stmtInboxAdvance, advanceSQL)
	batch := prepare(stmtInboxBatch, batchSQL)
	if err != nil {
		return err
	}

	r := s.recent
	r.mu.Lock()
	defer r.mu.Unlock()
	var added []pendingEntry
	err = s.inTx(ctx, lockInbox, func(tx *sql.Tx) error {
		var first int64
		if err := tx.StmtContext(ctx, next).QueryRowContext(ctx).Scan(&first); err != nil {
			return err
		}
		if err := r.catchUp(ctx, tx, first-1); err != nil {
			return err
		}
		j := tx.StmtContext(ctx, journal)
		for i := range txns {
			res, err := j.ExecContext(ctx, scope, txns[i].TxnID, now)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			txns[i].Duplicate = n == 0
		}
		var evs []*InboxEvent
		var err error
		if evs, added, err = newEvents(ctx, tx, r, txns); err != nil || len(evs) == 0 {
			return err
		}
		if _, err := tx.StmtContext(ctx, advance).ExecContext(ctx, first+int64(len(evs))); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, batch).ExecContext(ctx, first, len(evs), encodeBatch(evs), now); err != nil {
			return err
		}
		assignSeqs(txns, added, first)
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range added {
		r.add(e.hash, e.seq)
	}
	return nil
}
