package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sync"
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

// An event's state is "pending" unless its seq is below the handled watermark
// (inbox_progress.go: then it is done or failed) or inbox_state has a row for it (done,
// failed, or pending with attempts). The events themselves are in inbox_batch
// (inbox_batch.go).

// batchesFrom is the query for $2 batches holding seqs from $1 on, in seq order: the one
// that holds $1 (the latest starting at or before it) and the next ones.
const batchesFrom = `SELECT first_seq, count, body, received_at FROM inbox_batch
	WHERE first_seq >= COALESCE((SELECT MAX(first_seq) FROM inbox_batch WHERE first_seq <= $1), 0)
	ORDER BY first_seq LIMIT $2`

// PendingEvents returns up to limit events not yet done or failed with Seq > afterSeq,
// in Seq order: pending events at or above the handled watermark.
func (s *Store) PendingEvents(ctx context.Context, afterSeq int64, limit int) ([]InboxEvent, error) {
	w, err := s.InboxDoneBelow(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: load pending events: %w", err)
	}
	var out []InboxEvent
	for from := max(afterSeq+1, w); len(out) < limit; {
		evs, err := eventsFrom(ctx, s.db, &s.batches, from, limit-len(out))
		if err != nil {
			return nil, fmt.Errorf("store: load pending events: %w", err)
		}
		if len(evs) == 0 {
			break
		}
		last := evs[len(evs)-1].Seq
		states, err := s.statesBetween(ctx, from, last)
		if err != nil {
			return nil, fmt.Errorf("store: load pending events: %w", err)
		}
		for _, e := range evs {
			if st, ok := states[e.Seq]; ok {
				if st.state != "pending" {
					continue
				}
				e.Attempts = st.attempts
			}
			out = append(out, e)
		}
		from = last + 1
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// batchCache keeps the last batch decoded for the dispatcher: while it catches up in steps
// smaller than a batch (a group commit of eight transactions holds 800 events), each step
// would otherwise decode the whole batch again. Batches never change once committed.
type batchCache struct {
	mu    sync.Mutex
	first int64
	evs   []InboxEvent // guarded by mu; nil when empty
}

func (c *batchCache) get(first int64, count int) []InboxEvent {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.evs != nil && c.first == first && len(c.evs) == count {
		return c.evs
	}
	return nil
}

func (c *batchCache) put(first int64, evs []InboxEvent) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.first, c.evs = first, evs
	c.mu.Unlock()
}

// eventsFrom returns the journaled events with seqs from from on, at most limit of them
// plus the rest of the last batch read. It reads batchesPerQuery batches a query: a
// PostgreSQL result is read to its end even when the caller stops early. cache may be nil.
func eventsFrom(ctx context.Context, q querier, cache *batchCache, from int64, limit int) ([]InboxEvent, error) {
	var out []InboxEvent
	for len(out) < limit {
		evs, more, err := batchesAt(ctx, q, cache, from)
		if err != nil {
			return nil, err
		}
		out = append(out, evs...)
		if !more {
			break
		}
		from = out[len(out)-1].Seq + 1
	}
	return out, nil
}

// batchesPerQuery is how many batches batchesAt reads at once.
const batchesPerQuery = 16

// batchesAt returns the events from from on of up to batchesPerQuery batches, and whether
// there may be more.
func batchesAt(ctx context.Context, q querier, cache *batchCache, from int64) ([]InboxEvent, bool, error) {
	rows, err := q.QueryContext(ctx, batchesFrom, from, batchesPerQuery)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var out []InboxEvent
	n := 0
	for rows.Next() {
		n++
		var first, received int64
		var count int
		var body []byte
		if err := rows.Scan(&first, &count, &body, &received); err != nil {
			return nil, false, err
		}
		if first+int64(count) <= from {
			continue
		}
		evs := cache.get(first, count)
		if evs == nil {
			var err error
			if evs, err = decodeBatch(body, first, count, received); err != nil {
				return nil, false, err
			}
			cache.put(first, evs)
		}
		if skip := from - first; skip > 0 {
			evs = evs[skip:]
		}
		out = append(out, evs...)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	return out, n == batchesPerQuery && len(out) > 0, nil
}

type eventState struct {
	state     string
	attempts  int
	lastError string
}

// statesBetween returns the inbox_state rows of seqs lo through hi.
func (s *Store) statesBetween(ctx context.Context, lo, hi int64) (map[int64]eventState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, state, attempts, last_error FROM inbox_state WHERE seq BETWEEN $1 AND $2`, lo, hi)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]eventState)
	for rows.Next() {
		var seq int64
		var st eventState
		if err := rows.Scan(&seq, &st.state, &st.attempts, &st.lastError); err != nil {
			return nil, err
		}
		out[seq] = st
	}
	return out, rows.Err()
}

// eventAt returns the journaled event with seq, or ErrNotFound.
func eventAt(ctx context.Context, q querier, seq int64) (InboxEvent, error) {
	var first, received int64
	var count int
	var body []byte
	err := q.QueryRowContext(ctx, `SELECT first_seq, count, body, received_at FROM inbox_batch
		WHERE first_seq <= $1 ORDER BY first_seq DESC LIMIT 1`, seq).Scan(&first, &count, &body, &received)
	if err != nil {
		return InboxEvent{}, notFound(err)
	}
	if seq >= first+int64(count) {
		return InboxEvent{}, ErrNotFound
	}
	evs, err := decodeBatch(body, first, count, received)
	if err != nil {
		return InboxEvent{}, err
	}
	return evs[seq-first], nil
}

// eventExists reports whether seq is a journaled event (ErrNotFound if not).
func eventExists(ctx context.Context, q querier, seq int64) error {
	var end int64
	err := q.QueryRowContext(ctx, `SELECT first_seq + count FROM inbox_batch
		WHERE first_seq <= $1 ORDER BY first_seq DESC LIMIT 1`, seq).Scan(&end)
	if err != nil {
		return notFound(err)
	}
	if seq >= end {
		return ErrNotFound
	}
	return nil
}

// setState gives the event with seq a state row through f, in a transaction that first
// checks that the event exists.
func (s *Store) setState(ctx context.Context, seq int64, f func(tx *sql.Tx) error) error {
	return s.inTx(ctx, 0, func(tx *sql.Tx) error {
		if err := eventExists(ctx, tx, seq); err != nil {
			return err
		}
		return f(tx)
	})
}

// MarkEventDone records that the event with seq was handled.
func (s *Store) MarkEventDone(ctx context.Context, seq int64) error {
	err := s.setState(ctx, seq, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO inbox_state (seq, state) VALUES ($1, 'done')
			ON CONFLICT (seq) DO UPDATE SET state = 'done'`, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: mark event %d done: %w", seq, err)
	}
	return nil
}

// RecordEventAttempt increments the attempt counter of seq and stores the (secret-free)
// error text; it returns the new attempt count.
func (s *Store) RecordEventAttempt(ctx context.Context, seq int64, errText string) (int, error) {
	var n int
	err := s.setState(ctx, seq, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO inbox_state (seq, state, attempts, last_error) VALUES ($1, 'pending', 1, $2)
			ON CONFLICT (seq) DO UPDATE SET attempts = inbox_state.attempts + 1, last_error = $2
			RETURNING attempts`, seq, errText).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("store: record attempt of event %d: %w", seq, err)
	}
	return n, nil
}

// MarkEventFailed records that the event with seq was given up on.
func (s *Store) MarkEventFailed(ctx context.Context, seq int64, errText string) error {
	err := s.setState(ctx, seq, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO inbox_state (seq, state, last_error) VALUES ($1, 'failed', $2)
			ON CONFLICT (seq) DO UPDATE SET state = 'failed', last_error = $2`, seq, errText)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: mark event %d failed: %w", seq, err)
	}
	return nil
}

// InboxDepth counts events neither done nor failed.
func (s *Store) InboxDepth(ctx context.Context) (int, error) {
	n, err := s.count(ctx, `SELECT
		COALESCE((SELECT SUM(count - CASE WHEN first_seq < p.done_below THEN p.done_below - first_seq ELSE 0 END)
			FROM inbox_batch WHERE first_seq + count > p.done_below), 0)
		- (SELECT COUNT(*) FROM inbox_state WHERE state <> 'pending' AND seq >= p.done_below)
		FROM inbox_progress p WHERE p.id = 1`)
	if err != nil {
		return 0, fmt.Errorf("store: count pending events: %w", err)
	}
	return n, nil
}

// InboxRecord is a journaled event with its state, for operators' tools and tests.
type InboxRecord struct {
	InboxEvent
	State     string // pending, done or failed
	LastError string
}

// InboxRecords returns every journaled event with its state, in seq order; with eventID
// set, only the events with that ID.
func (s *Store) InboxRecords(ctx context.Context, eventID string) ([]InboxRecord, error) {
	w, err := s.InboxDoneBelow(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: read the inbox: %w", err)
	}
	evs, err := eventsFrom(ctx, s.db, nil, 0, math.MaxInt)
	if err != nil {
		return nil, fmt.Errorf("store: read the inbox: %w", err)
	}
	states, err := s.statesBetween(ctx, 0, math.MaxInt64)
	if err != nil {
		return nil, fmt.Errorf("store: read the inbox: %w", err)
	}
	var out []InboxRecord
	for _, e := range evs {
		if eventID != "" && e.EventID != eventID {
			continue
		}
		r := InboxRecord{InboxEvent: e, State: "pending"}
		if f, ok := states[e.Seq]; ok {
			r.State, r.Attempts, r.LastError = f.state, f.attempts, f.lastError
		}
		if r.State == "pending" && e.Seq < w {
			r.State = "done" // below the watermark: done or failed, and not marked failed
		}
		out = append(out, r)
	}
	return out, nil
}
