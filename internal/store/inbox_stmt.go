package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// stmtKind names a family of statements whose text depends only on the dialect and a count
// (rows of a multi-row INSERT, ranges of an UPDATE).
type stmtKind uint8

const (
	stmtInboxInsert  stmtKind = iota + 1 // SQLite: n rows
	stmtInboxMaxSeq                      // SQLite: the largest seq
	stmtInboxJournal                     // SQLite: one txn_journal row
	stmtInboxIngest                      // PostgreSQL: journal rows and events as arrays
	stmtInboxDone                        // n seq ranges become done
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

// sqliteInsertSQL is the SQLite multi-row insert of n events. Parameters are anonymous
// ("?"): modernc binds them by position without reading and parsing a name per parameter.
func sqliteInsertSQL(n int) string {
	var q strings.Builder
	q.Grow(120 + n*12)
	q.WriteString(`INSERT INTO inbox (event_id, room_id, kind, payload, received_at) VALUES `)
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?,?,?,?,?)")
	}
	return q.String()
}

func sqliteMaxSeqSQL(int) string {
	return `SELECT COALESCE(MAX(seq), 0) FROM inbox`
}

func sqliteJournalSQL(int) string {
	return `INSERT INTO txn_journal (scope, txn_id, received_at) VALUES (?, ?, ?)
		ON CONFLICT (scope, txn_id) DO NOTHING`
}

// postgresIngestSQL journals transactions and inserts their events (the new ones: the
// caller has deduplicated them against the recent window) in one statement,
// which PostgreSQL runs as a transaction of its own: one round trip, no BEGIN and COMMIT.
// The events come as parallel arrays, inserted in array order so that seq follows arrival.
// The inbox advisory lock (see Store) is taken before the first seq is drawn: every row
// that draws one is joined with the lock's row, and the lock is held until the statement
// commits. The result has a row per new journal entry (seq 0, the transaction ID) and a
// row per new event (its seq, its ID); BIGSERIAL seqs start at 1.
func postgresIngestSQL(int) string {
	return `WITH lock AS MATERIALIZED (
		SELECT pg_advisory_xact_lock(` + strconv.FormatInt(lockInbox, 10) + `)
	), j AS (
		INSERT INTO txn_journal (scope, txn_id, received_at)
		SELECT $1::text, t, $2::bigint FROM unnest($3::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n
		ON CONFLICT (scope, txn_id) DO NOTHING
		RETURNING txn_id
	), e AS (
		INSERT INTO inbox (event_id, room_id, kind, payload, received_at)
		SELECT id, room, kind, payload, $2::bigint
		FROM lock, unnest($4::text[], $5::text[], $6::text[], $7::bytea[]) WITH ORDINALITY AS u(id, room, kind, payload, n)
		ORDER BY n
		RETURNING seq, event_id
	)
	SELECT 0::bigint, txn_id FROM j UNION ALL SELECT seq, event_id FROM e`
}

// doneSQL marks the pending rows in n seq ranges done; its parameters are the bounds of
// each range, in pairs.
func doneSQL(dialect Dialect) func(n int) string {
	return func(n int) string {
		var q strings.Builder
		q.WriteString(`UPDATE inbox SET state = 'done' WHERE state = 'pending' AND (`)
		for i := range n {
			if i > 0 {
				q.WriteString(" OR ")
			}
			if dialect == SQLite {
				q.WriteString("seq BETWEEN ? AND ?")
			} else {
				fmt.Fprintf(&q, "seq BETWEEN $%d AND $%d", 2*i+1, 2*i+2)
			}
		}
		q.WriteByte(')')
		return q.String()
	}
}
