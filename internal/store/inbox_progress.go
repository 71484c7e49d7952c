package store

import (
	"context"
	"database/sql"
	"fmt"
)

// The handled watermark: every inbox event with a seq below inbox_progress.done_below is
// done or failed, whatever its state column says. The dispatcher records it with each batch
// of completions (RecordInboxProgress), so that events handled in order cost one small
// update per batch instead of rewriting each event's row; only events handled out of order
// (while an earlier one still waits, say for its room key) are marked done row by row. An
// event is pending when its state is pending and its seq is at or above the watermark.

// RecordInboxProgress records, in one database transaction, that every event below
// doneBelow is done or failed (the watermark only rises) and that the events with the seqs
// in done are done.
func (s *Store) RecordInboxProgress(ctx context.Context, doneBelow int64, done []int64) error {
	chunks, err := s.doneChunks(ctx, seqRanges(done))
	if err != nil {
		return fmt.Errorf("store: record inbox progress: %w", err)
	}
	err = s.inTx(ctx, 0, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`UPDATE inbox_progress SET done_below = $1 WHERE id = 1 AND done_below < $1`, doneBelow); err != nil {
			return err
		}
		for _, c := range chunks {
			if _, err := tx.StmtContext(ctx, c.st).ExecContext(ctx, c.args...); err != nil {
				return err
			}
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
