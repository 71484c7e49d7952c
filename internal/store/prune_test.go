package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

func TestPruneKeepsPending(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		_, _, err := s.CommitTransaction(ctx, "sc", "t1", []store.InboxEvent{
			{EventID: "$done", RoomID: "!r", Kind: "timeline", Payload: []byte(`{}`)},
			{EventID: "$pending", RoomID: "!r", Kind: "timeline", Payload: []byte(`{}`)},
		})
		if err != nil {
			t.Fatal(err)
		}
		evts, err := s.PendingEvents(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEventDone(ctx, evts[0].Seq); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune(ctx, time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.InboxDepth(ctx); n != 1 {
			t.Fatalf("pending events after prune = %d, want 1", n)
		}
		// The pruned transaction id is forgotten: the same id is new again.
		dup, _, err := s.CommitTransaction(ctx, "sc", "t1", nil)
		if err != nil || dup {
			t.Fatalf("after prune: duplicate=%v err=%v", dup, err)
		}
	})
}
