package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
)

// The handled watermark: every inbox event with a seq below inbox_progress.done_below is
// done or failed, whatever its state column says. The dispatcher records it with each batch
// of completions (RecordInboxProgress), so that events handled in order cost one small
// update per batch; only events handled out of order (while an earlier one still waits,
// say for its room key) get a row of their own in inbox_state. An event is pending when
// it has no state row other than pending and its seq is at or above the watermark.

// RecordInboxProgress records, in one database transaction, that every event below
// doneBelow is done or failed (the watermark only rises) and that the events with the seqs
// in done are done (pending ones only; seqs never handed out are ignored: seqs are
// consecutive, so those are the seqs from inbox_next on).
func (s *Store) RecordInboxProgress(ctx context.Context, doneBelow int64, done []int64) error {
	err := s.inTx(ctx, 0, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`UPDATE inbox_progress SET done_below = $1 WHERE id = 1 AND done_below < $1`, doneBelow); err != nil {
			return err
		}
		if len(done) == 0 {
			return nil
		}
		var err error
		if s.dialect == Postgres {
			_, err = tx.ExecContext(ctx, `INSERT INTO inbox_state (seq, state)
				SELECT DISTINCT u.seq, 'done' FROM unnest($1::bigint[]) AS u(seq)
				WHERE u.seq < (SELECT next_seq FROM inbox_next WHERE id = 1)
				ON CONFLICT (seq) DO UPDATE SET state = 'done' WHERE inbox_state.state = 'pending'`, done)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO inbox_state (seq, state)
				SELECT value, 'done' FROM json_each(?)
				WHERE value < (SELECT next_seq FROM inbox_next WHERE id = 1)
				ON CONFLICT (seq) DO UPDATE SET state = 'done' WHERE inbox_state.state = 'pending'`, seqsJSON(done))
		}
		if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record inbox progress below %d and %d events: %w", doneBelow, len(done), err)
	}
	return nil
}

// InboxDoneBelow returns the handled watermark: every event below it is done or failed.
func (s *Store) InboxDoneBelow(ctx context.Context) (int64, error) {
	var w int64
	if err := s.db.QueryRowContext(ctx, `SELECT done_below FROM inbox_progress WHERE id = 1`).Scan(&w); err != nil {
		return 0, fmt.Errorf("store: read the inbox watermark: %w", err)
	}
	return w, nil
}

// seqsJSON is seqs as a JSON array, for SQLite's json_each: one statement for any number.
func seqsJSON(seqs []int64) string {
	b := make([]byte, 0, 2+len(seqs)*8)
	b = append(b, '[')
	for i, seq := range seqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, seq, 10)
	}
	return string(append(b, ']'))
}
