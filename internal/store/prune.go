package store

import (
	"context"
	"fmt"
	"time"
)

// Prune deletes what the journal no longer needs: handled or failed inbox events, sent or
// failed outbox rows, and transaction IDs, all received before cutoff. Pending rows are
// never pruned. The remote-ID ↔ event-ID map is kept. The retention must outlast any
// homeserver retry of a transaction (minutes to hours), or a very late replay could be
// handled again; Switchboard keeps 30 days by default.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	ms := cutoff.UnixMilli()
	var total int64
	for _, q := range []string{
		`DELETE FROM inbox WHERE (state <> 'pending' OR seq < (SELECT done_below FROM inbox_progress WHERE id = 1)) AND received_at < $1`,
		`DELETE FROM outbox WHERE state <> 'pending' AND created_at < $1`,
		`DELETE FROM txn_journal WHERE received_at < $1`,
	} {
		res, err := s.db.ExecContext(ctx, q, ms)
		if err != nil {
			return total, fmt.Errorf("store: failed to prune: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}
