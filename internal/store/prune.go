package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Prune deletes what the journal no longer needs: handled or failed inbox events (a batch
// once all its events are below the handled watermark), sent or failed outbox rows, and
// transaction IDs, all received before cutoff, and scan verdicts made before it; it
// returns how many events, rows, IDs and verdicts went. Pending events are never pruned.
// The remote-ID ↔ event-ID map is kept. The retention must outlast any homeserver retry
// of a transaction (minutes to hours), or a very late replay could be handled again;
// Switchboard keeps 30 days by default.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	ms := cutoff.UnixMilli()
	var total int64
	err := s.inTx(ctx, 0, func(tx *sql.Tx) error {
		// Batches wholly below the watermark (every event done or failed) and old enough,
		// counted in events.
		const handled = `FROM inbox_batch WHERE first_seq + count <= (SELECT done_below FROM inbox_progress WHERE id = 1) AND received_at < $1`
		var events int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(count), 0) `+handled, ms).Scan(&events); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE `+handled, ms); err != nil {
			return err
		}
		total += events
		// The state rows of events no batch holds any more.
		if _, err := tx.ExecContext(ctx, `DELETE FROM inbox_state WHERE seq <
			COALESCE((SELECT MIN(first_seq) FROM inbox_batch), (SELECT next_seq FROM inbox_next WHERE id = 1))`); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM outbox WHERE state <> 'pending' AND created_at < $1`,
			`DELETE FROM txn_journal WHERE received_at < $1`,
			`DELETE FROM scan_verdict WHERE scanned_at < $1`,
		} {
			res, err := tx.ExecContext(ctx, q, ms)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: failed to prune: %w", err)
	}
	return total, nil
}
