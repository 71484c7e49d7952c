package store

import (
	"context"
	"fmt"
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

// PendingEvents returns up to limit events not yet done or failed with Seq > afterSeq,
// in Seq order: pending rows at or above the handled watermark (inbox_progress.go).
func (s *Store) PendingEvents(ctx context.Context, afterSeq int64, limit int) ([]InboxEvent, error) {
	w, err := s.InboxDoneBelow(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: load pending events: %w", err)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT seq, event_id, room_id, kind, payload, attempts, received_at FROM inbox
		 WHERE state = 'pending' AND seq > $1 ORDER BY seq LIMIT $2`, max(afterSeq, w-1), limit)
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
	n, err := s.count(ctx, `SELECT COUNT(*) FROM inbox
		WHERE state = 'pending' AND seq >= (SELECT done_below FROM inbox_progress WHERE id = 1)`)
	if err != nil {
		return 0, fmt.Errorf("store: count pending events: %w", err)
	}
	return n, nil
}
