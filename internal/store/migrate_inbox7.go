package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrateInboxBatches moves every event of the per-event inbox table into inbox_batch, a
// batch of one each (seqs are kept; the old table has gaps), keeps each state other than a
// plain pending one in inbox_state, sets the next seq above every seq ever handed out
// (also those of pruned rows) and drops the old table.
func migrateInboxBatches(ctx context.Context, tx *sql.Tx, d Dialect) error {
	var next int64
	var q string
	if d == SQLite {
		q = `SELECT MAX(COALESCE((SELECT MAX(seq) FROM inbox), 0), COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'inbox'), 0))`
	} else {
		q = `SELECT GREATEST(COALESCE((SELECT MAX(seq) FROM inbox), 0),
			(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM inbox_seq_seq))`
	}
	if err := tx.QueryRowContext(ctx, q).Scan(&next); err != nil {
		return fmt.Errorf("read the last seq: %w", err)
	}
	var doneBelow int64
	if err := tx.QueryRowContext(ctx, `SELECT done_below FROM inbox_progress WHERE id = 1`).Scan(&doneBelow); err != nil {
		return fmt.Errorf("read the watermark: %w", err)
	}
	next = max(next+1, doneBelow, 1)
	if _, err := tx.ExecContext(ctx, `INSERT INTO inbox_next (id, next_seq) VALUES (1, $1)`, next); err != nil {
		return err
	}

	for after := int64(-1); ; {
		chunk, err := oldInboxChunk(ctx, tx, after)
		if err != nil {
			return err
		}
		if len(chunk) == 0 {
			break
		}
		for _, o := range chunk {
			if _, err := tx.ExecContext(ctx, `INSERT INTO inbox_batch (first_seq, count, body, received_at) VALUES ($1, 1, $2, $3)`,
				o.e.Seq, encodeBatch([]*InboxEvent{&o.e}), o.e.ReceivedAt); err != nil {
				return fmt.Errorf("move event %d: %w", o.e.Seq, err)
			}
			if o.state == "pending" && o.e.Attempts == 0 && o.lastError == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO inbox_state (seq, state, attempts, last_error) VALUES ($1, $2, $3, $4)`,
				o.e.Seq, o.state, o.e.Attempts, o.lastError); err != nil {
				return fmt.Errorf("move the state of event %d: %w", o.e.Seq, err)
			}
		}
		after = chunk[len(chunk)-1].e.Seq
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE inbox`); err != nil {
		return err
	}
	return nil
}

// oldInboxRow is an event of the per-event inbox table.
type oldInboxRow struct {
	e                InboxEvent
	state, lastError string
}

// oldInboxChunk reads up to 1000 events of the per-event inbox table after seq after: read
// before they are written elsewhere, since a PostgreSQL connection runs one statement at a
// time, and in chunks, since the journal may hold weeks of events.
func oldInboxChunk(ctx context.Context, tx *sql.Tx, after int64) ([]oldInboxRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, event_id, room_id, kind, payload, state, attempts, last_error, received_at
		FROM inbox WHERE seq > $1 ORDER BY seq LIMIT 1000`, after)
	if err != nil {
		return nil, fmt.Errorf("read the inbox: %w", err)
	}
	defer rows.Close()
	var out []oldInboxRow
	for rows.Next() {
		var o oldInboxRow
		if err := rows.Scan(&o.e.Seq, &o.e.EventID, &o.e.RoomID, &o.e.Kind, &o.e.Payload, &o.state, &o.e.Attempts, &o.lastError, &o.e.ReceivedAt); err != nil {
			return nil, fmt.Errorf("read the inbox: %w", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the inbox: %w", err)
	}
	return out, nil
}
