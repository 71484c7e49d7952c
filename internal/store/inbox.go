package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// InboxEvent is one event received from the homeserver, durably journaled before the
// transaction that carried it is acknowledged.
type InboxEvent struct {
	Seq      int64  // assigned by the store, increasing in arrival order
	EventID  string // unique key; ephemeral events get a synthetic id from the caller
	RoomID   string // may be empty (presence, to-device)
	Kind     string // "timeline", "ephemeral" or "todevice"
	Payload  []byte // the event JSON as received
	Attempts int    // handler attempts so far
	// ReceivedAt is when the event was journaled, in Unix milliseconds (set by
	// PendingEvents).
	ReceivedAt int64
}

// inboxRowsPerInsert bounds the rows of one multi-row INSERT: 4 parameters a row plus one
// stays under SQLite's smallest variable limit (999) and far under PostgreSQL's (65535).
const inboxRowsPerInsert = 200

// sqliteRowsPerInsert is smaller: binding a parameter in modernc's SQLite scans the list of
// parameter names, so the cost of a statement grows with the square of its parameters.
const sqliteRowsPerInsert = 25

// CommitTransaction journals a homeserver transaction atomically: the (scope, txnID) pair
// and every event whose EventID is not yet in the inbox (done or not). duplicate is true when
// the pair was committed before; its events are journaled all the same, because a
// homeserver may reuse a transaction ID for a retried batch that holds more events
// (Dendrite derives the ID from the first event's timestamp), and skipping them would lose
// them. Deduplication is by event ID. inserted counts new events.
func (s *Store) CommitTransaction(ctx context.Context, scope, txnID string, events []InboxEvent) (duplicate bool, inserted int, err error) {
	now := time.Now().UnixMilli()
	err = s.inTx(ctx, lockInbox, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO txn_journal (scope, txn_id, received_at) VALUES ($1, $2, $3)
			 ON CONFLICT (scope, txn_id) DO NOTHING`, scope, txnID, now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			duplicate = true
		}
		perInsert := inboxRowsPerInsert
		if s.dialect == SQLite {
			perInsert = sqliteRowsPerInsert
		}
		for start := 0; start < len(events); start += perInsert {
			chunk := events[start:min(start+perInsert, len(events))]
			n, err := insertInboxChunk(ctx, tx, s.dialect, now, chunk)
			if err != nil {
				return err
			}
			inserted += n
		}
		return nil
	})
	if err != nil {
		return false, 0, fmt.Errorf("store: commit transaction %s: %w", txnID, err)
	}
	return duplicate, inserted, nil
}

// insertInboxChunk inserts events with one statement; rows get their seq in slice order.
// SQLite gets numbered "?NNN" parameters: it treats "$N" as a name and looks every one up,
// which costs more than the insert itself in a statement with hundreds of parameters.
func insertInboxChunk(ctx context.Context, tx *sql.Tx, dialect Dialect, receivedAt int64, events []InboxEvent) (int, error) {
	p := "$"
	if dialect == SQLite {
		p = "?"
	}
	var q strings.Builder
	q.Grow(100 + len(events)*24)
	q.WriteString(`INSERT INTO inbox (event_id, room_id, kind, payload, received_at) VALUES `)
	args := make([]any, 0, 1+4*len(events))
	args = append(args, receivedAt)
	for i, e := range events {
		if i > 0 {
			q.WriteByte(',')
		}
		n := len(args)
		for j := 1; j <= 4; j++ {
			if j == 1 {
				q.WriteByte('(')
			} else {
				q.WriteByte(',')
			}
			q.WriteString(p)
			q.WriteString(strconv.Itoa(n + j))
		}
		q.WriteString(",")
		q.WriteString(p)
		q.WriteString("1)")
		args = append(args, e.EventID, e.RoomID, e.Kind, nonNil(e.Payload))
	}
	q.WriteString(` ON CONFLICT (event_id) DO NOTHING`)
	res, err := tx.ExecContext(ctx, q.String(), args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// PendingEvents returns up to limit events not yet done or failed with Seq > afterSeq,
// in Seq order.
func (s *Store) PendingEvents(ctx context.Context, afterSeq int64, limit int) ([]InboxEvent, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT seq, event_id, room_id, kind, payload, attempts, received_at FROM inbox
		 WHERE state = 'pending' AND seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("store: load pending events: %w", err)
	}
	defer rows.Close()
	var out []InboxEvent
	for rows.Next() {
		var e InboxEvent
		if err := rows.Scan(&e.Seq, &e.EventID, &e.RoomID, &e.Kind, &e.Payload, &e.Attempts, &e.ReceivedAt); err != nil {
			return nil, fmt.Errorf("store: load pending events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load pending events: %w", err)
	}
	return out, nil
}

// MarkEventDone records that the event with seq was handled.
func (s *Store) MarkEventDone(ctx context.Context, seq int64) error {
	if err := s.updateOne(ctx, `UPDATE inbox SET state = 'done' WHERE seq = $1`, seq); err != nil {
		return fmt.Errorf("store: mark event %d done: %w", seq, err)
	}
	return nil
}

// MarkEventsDone records that the events with these seqs were handled, in one database
// transaction (the dispatcher batches completions so that one fsync covers many events).
func (s *Store) MarkEventsDone(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := s.inTx(ctx, 0, func(tx *sql.Tx) error {
		for start := 0; start < len(seqs); start += doneSeqsPerUpdate {
			chunk := seqs[start:min(start+doneSeqsPerUpdate, len(seqs))]
			var q strings.Builder
			q.WriteString(`UPDATE inbox SET state = 'done' WHERE state = 'pending' AND seq IN (`)
			args := make([]any, len(chunk))
			for i, seq := range chunk {
				if i > 0 {
					q.WriteByte(',')
				}
				fmt.Fprintf(&q, "$%d", i+1)
				args[i] = seq
			}
			q.WriteByte(')')
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: mark %d events done: %w", len(seqs), err)
	}
	return nil
}

// doneSeqsPerUpdate keeps one UPDATE under SQLite's smallest variable limit (999).
const doneSeqsPerUpdate = 500

// RecordEventAttempt increments the attempt counter of seq and stores the (secret-free)
// error text; it returns the new attempt count.
func (s *Store) RecordEventAttempt(ctx context.Context, seq int64, errText string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx,
		`UPDATE inbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1 RETURNING attempts`,
		seq, errText).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: record attempt of event %d: %w", seq, notFound(err))
	}
	return n, nil
}

// MarkEventFailed records that the event with seq was given up on.
func (s *Store) MarkEventFailed(ctx context.Context, seq int64, errText string) error {
	err := s.updateOne(ctx, `UPDATE inbox SET state = 'failed', last_error = $2 WHERE seq = $1`, seq, errText)
	if err != nil {
		return fmt.Errorf("store: mark event %d failed: %w", seq, err)
	}
	return nil
}

// InboxDepth counts events neither done nor failed.
func (s *Store) InboxDepth(ctx context.Context) (int, error) {
	n, err := s.count(ctx, `SELECT COUNT(*) FROM inbox WHERE state = 'pending'`)
	if err != nil {
		return 0, fmt.Errorf("store: count pending events: %w", err)
	}
	return n, nil
}
