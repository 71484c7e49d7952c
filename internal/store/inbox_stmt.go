package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"sync"
)

// stmtKind names a family of statements whose text depends only on the dialect and a count
// (rows of a multi-row INSERT, ranges of an UPDATE).
type stmtKind uint8

const (
	stmtInboxJournal stmtKind = iota + 1 // SQLite: one txn_journal row
	stmtInboxNext                        // SQLite: the next seq
	stmtInboxAdvance                     // SQLite: set the next seq
	stmtInboxBatch                       // SQLite: one inbox_batch row
	stmtInboxIngest                      // PostgreSQL: journal rows and the batch
)

type stmtKey struct {
	kind stmtKind
	n    int
}

// stmtCache keeps prepared statements for the life of the Store: preparing a multi-row
// INSERT costs about as much as running it. Statements are prepared on the pool, before
// the transaction that uses them begins (on SQLite the pool holds one connection, which
// that transaction would hold), and bound to it with tx.StmtContext.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[stmtKey]*sql.Stmt // guarded by mu
}

// stmt returns the prepared statement for key, preparing build(key.n) on first use.
func (s *Store) stmt(ctx context.Context, key stmtKey, build func(n int) string) (*sql.Stmt, error) {
	c := &s.stmts
	c.mu.Lock()
	st := c.stmts[key]
	c.mu.Unlock()
	if st != nil {
		return st, nil
	}
	// Prepared without the lock: PrepareContext may wait for the connection.
	st, err := s.db.PrepareContext(ctx, build(key.n))
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.stmts[key]; prev != nil {
		_ = st.Close() // another caller was quicker
		return prev, nil
	}
	if c.stmts == nil {
		c.stmts = make(map[stmtKey]*sql.Stmt)
	}
	c.stmts[key] = st
	return st, nil
}

// close closes every cached statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, st := range c.stmts {
		_ = st.Close()
		delete(c.stmts, k)
	}
}

func sqliteJournalSQL(int) string {
	return `INSERT INTO txn_journal (scope, txn_id, received_at) VALUES (?, ?, ?)
		ON CONFLICT (scope, txn_id) DO NOTHING`
}

func nextSeqSQL(int) string { return `SELECT next_seq FROM inbox_next WHERE id = 1` }

func advanceSQL(int) string { return `UPDATE inbox_next SET next_seq = ? WHERE id = 1` }

func batchSQL(int) string {
	return `INSERT INTO inbox_batch (first_seq, count, body, received_at) VALUES (?, ?, ?, ?)`
}

// postgresIngestSQL journals transactions and their new events (the caller has
// deduplicated them against the recent window) as one batch, in one statement, which
// PostgreSQL runs as a transaction of its own: one round trip, no BEGIN and COMMIT. The
// inbox advisory lock is taken first; the next seq is drawn from the counter row, whose
// row lock, held until the statement commits, makes batches visible in seq order. The
// result has a row per newly journaled transaction ID ("j", the ID) and one with the
// batch's first seq ("s"; with no new events, the next seq, unused).
func postgresIngestSQL(int) string {
	return `WITH lock AS MATERIALIZED (
		SELECT pg_advisory_xact_lock(` + strconv.FormatInt(lockInbox, 10) + `)
	), s AS MATERIALIZED (
		UPDATE inbox_next SET next_seq = next_seq + $4::bigint FROM lock WHERE id = 1
		RETURNING next_seq - $4::bigint AS first
	), j AS (
		INSERT INTO txn_journal (scope, txn_id, received_at)
		SELECT $1::text, t, $2::bigint FROM unnest($3::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n
		ON CONFLICT (scope, txn_id) DO NOTHING
		RETURNING txn_id
	), b AS (
		INSERT INTO inbox_batch (first_seq, count, body, received_at)
		SELECT first, $4::bigint, $5::bytea, $2::bigint FROM s WHERE $4::bigint > 0
	)
	SELECT 'j', txn_id, 0::bigint FROM j UNION ALL SELECT 's', '', first FROM s`
}
