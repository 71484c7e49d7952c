package store

import (
	"context"
)

// MarkEventsDone records that the events with these seqs were handled, atomically. Only
// pending events become done; unknown seqs are ignored. It is RecordInboxProgress without
// raising the watermark (the dispatcher uses that).
func (s *Store) MarkEventsDone(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	return s.RecordInboxProgress(ctx, 0, seqs)
}
