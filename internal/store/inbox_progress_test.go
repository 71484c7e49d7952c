package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// TestInboxProgress: events below the handled watermark are neither pending nor counted,
// events done out of order above it are recorded row by row, the watermark only rises, and
// pruning takes the events below it.
func TestInboxProgress(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		evs := events(numbered("$p", 6)...)
		if _, _, err := s.CommitTransaction(ctx, "as", "t1", evs); err != nil {
			t.Fatal(err)
		}
		seq := func(i int) int64 { return evs[i].Seq }
		if w, err := s.InboxDoneBelow(ctx); err != nil || w != 0 {
			t.Fatalf("InboxDoneBelow = %d, %v; want 0 before any progress", w, err)
		}
		// $p0000 and $p0001 handled in order; $p0004 out of order.
		if err := s.RecordInboxProgress(ctx, seq(2), []int64{seq(4)}); err != nil {
			t.Fatal(err)
		}
		if got, want := pendingIDs(t, s), []string{"$p0002", "$p0003", "$p0005"}; !slices.Equal(got, want) {
			t.Errorf("pending %v, want %v", got, want)
		}
		if n, err := s.InboxDepth(ctx); err != nil || n != 3 {
			t.Errorf("InboxDepth = %d, %v; want 3", n, err)
		}
		// The watermark does not go back.
		if err := s.RecordInboxProgress(ctx, seq(1), nil); err != nil {
			t.Fatal(err)
		}
		if w, err := s.InboxDoneBelow(ctx); err != nil || w != seq(2) {
			t.Errorf("InboxDoneBelow = %d, %v; want %d", w, err, seq(2))
		}
		// PendingEvents after a seq below the watermark starts at the watermark.
		got, err := s.PendingEvents(ctx, seq(0), 10)
		if err != nil || len(got) != 3 || got[0].EventID != "$p0002" {
			t.Errorf("PendingEvents(after %d) = %v, %v", seq(0), got, err)
		}
		// Everything handled: nothing pending; pruning takes every row.
		if err := s.RecordInboxProgress(ctx, seq(5)+1, nil); err != nil {
			t.Fatal(err)
		}
		if got := pendingIDs(t, s); len(got) != 0 {
			t.Errorf("pending %v, want none", got)
		}
		if n, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil || n < 6 {
			t.Errorf("Prune = %d, %v; want the 6 events (and the journal row)", n, err)
		}
	})
}

// TestCommitFillsReceivedAt: an inserted event comes back with the time it was journaled,
// as PendingEvents reads it (the dispatcher takes new events from the commit, and the
// decrypt timeout counts from it).
func TestCommitFillsReceivedAt(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		evs := events("$r1", "$r2")
		before := time.Now().UnixMilli()
		if _, _, err := s.CommitTransaction(t.Context(), "as", "t1", evs); err != nil {
			t.Fatal(err)
		}
		pending, err := s.PendingEvents(t.Context(), 0, 10)
		if err != nil || len(pending) != 2 {
			t.Fatalf("PendingEvents = %v, %v", pending, err)
		}
		for i, e := range evs {
			if e.ReceivedAt < before || e.ReceivedAt != pending[i].ReceivedAt {
				t.Errorf("%s: ReceivedAt %d, journaled %d (before %d)", e.EventID, e.ReceivedAt, pending[i].ReceivedAt, before)
			}
		}
	})
}
