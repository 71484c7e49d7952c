package store

import (
	"context"
	"database/sql"
)

// commitSQLite journals each transaction with a prepared single-row insert and the new
// events of all of them, in order, with prepared multi-row inserts of sqliteRowsPerInsert
// rows. An event is new unless its ID came earlier in the call or is in the recent window
// (recentIDs); the window is brought up to date first, inside the transaction, which on
// SQLite holds the write lock from BEGIN.
//
// Seqs: every row of a statement is inserted (the table has no unique key but seq), so a
// statement gives its rows consecutive seqs in row order ending at LastInsertId
// (AUTOINCREMENT: each new row gets the largest rowid so far plus one, and this
// transaction is the only writer). The window learns the new events once the commit has
// succeeded.
func (s *Store) commitSQLite(ctx context.Context, scope string, now int64, txns []TxnCommit, total int) error {
	// Prepared before the transaction: on SQLite it holds the only connection.
	var err error
	prepare := func(kind stmtKind, n int, build func(int) string) *sql.Stmt {
		if err != nil || n == 0 { // n == 0: not needed
			return nil
		}
		var st *sql.Stmt
		st, err = s.stmt(ctx, stmtKey{kind, n}, build)
		return st
	}
	journal := prepare(stmtInboxJournal, 1, sqliteJournalSQL)
	maxSeq := prepare(stmtInboxMaxSeq, 1, sqliteMaxSeqSQL)
	fullRows := 0 // no full statement for fewer events
	if total >= sqliteRowsPerInsert {
		fullRows = sqliteRowsPerInsert
	}
	full := prepare(stmtInboxInsert, fullRows, sqliteInsertSQL)
	// The last, partial statement, for the usual case of no duplicates.
	tail := prepare(stmtInboxInsert, total%sqliteRowsPerInsert, sqliteInsertSQL)
	if err != nil {
		return err
	}

	r := s.recent
	r.mu.Lock()
	defer r.mu.Unlock()
	added := make([]recentEntry, 0, total) // the window's new entries, once committed
	err = s.inTx(ctx, lockInbox, func(tx *sql.Tx) error {
		added = added[:0]
		var before int64
		if err := tx.StmtContext(ctx, maxSeq).QueryRowContext(ctx).Scan(&before); err != nil {
			return err
		}
		if err := r.catchUp(ctx, tx, before); err != nil {
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
		ins := sqliteInserter{ctx: ctx, tx: tx, full: full, tail: tail, tailRows: total % sqliteRowsPerInsert, now: now, txns: txns}
		inCall := make(map[string]struct{}, total)
		for i := range txns {
			for k := range txns[i].Events {
				e := &txns[i].Events[k]
				if _, dup := inCall[e.EventID]; dup {
					continue
				}
				inCall[e.EventID] = struct{}{}
				h := r.hash(e.EventID)
				if dup, err := r.seen(ctx, tx, h, e.EventID); err != nil || dup {
					if err != nil {
						return err
					}
					continue
				}
				added = append(added, recentEntry{hash: h})
				if err := ins.add(eventRef{i, k}); err != nil {
					return err
				}
			}
		}
		if err := ins.flush(); err != nil {
			return err
		}
		for n, ref := range ins.order {
			added[n].seq = txns[ref.txn].Events[ref.ev].Seq
		}
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

// sqliteInserter batches new events into multi-row inserts and fills in their seqs.
type sqliteInserter struct {
	ctx  context.Context
	tx   *sql.Tx
	full *sql.Stmt // prepared for sqliteRowsPerInsert rows; nil for smaller calls
	tail *sql.Stmt // prepared for tailRows rows, or nil
	// tailRows is the size of the last statement when no event is a duplicate.
	tailRows int
	now      int64
	txns     []TxnCommit
	args     []any
	refs     []eventRef // the rows in args
	order    []eventRef // every event inserted so far, in seq order
}

// add queues the event at ref, inserting a full statement's worth when it has one.
func (b *sqliteInserter) add(ref eventRef) error {
	e := &b.txns[ref.txn].Events[ref.ev]
	if b.args == nil {
		b.args = make([]any, 0, 5*sqliteRowsPerInsert)
	}
	b.args = append(b.args, e.EventID, e.RoomID, e.Kind, nonNil(e.Payload), b.now)
	b.refs = append(b.refs, ref)
	if len(b.refs) == sqliteRowsPerInsert {
		return b.flush()
	}
	return nil
}

// flush inserts the queued rows, with the full statement or one prepared for a partial
// last statement, and gives them their seqs.
func (b *sqliteInserter) flush() error {
	if len(b.refs) == 0 {
		return nil
	}
	var st *sql.Stmt
	switch n := len(b.refs); {
	case n == sqliteRowsPerInsert:
		st = b.tx.StmtContext(b.ctx, b.full)
	case n == b.tailRows && b.tail != nil:
		st = b.tx.StmtContext(b.ctx, b.tail)
	default: // duplicates were skipped: prepared on the transaction's connection, the only one
		var err error
		if st, err = b.tx.PrepareContext(b.ctx, sqliteInsertSQL(n)); err != nil {
			return err
		}
		defer st.Close()
	}
	res, err := st.ExecContext(b.ctx, b.args...)
	if err != nil {
		return err
	}
	last, err := res.LastInsertId()
	if err != nil {
		return err
	}
	for k, r := range b.refs {
		b.txns[r.txn].Events[r.ev].Seq = last - int64(len(b.refs)-1-k)
		b.txns[r.txn].Inserted++
	}
	b.order = append(b.order, b.refs...)
	b.args, b.refs = b.args[:0], b.refs[:0]
	return nil
}
