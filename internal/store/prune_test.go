package store_test

import (
	"context"
	"strconv"
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

func TestMarkEventsDone(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		var evts []store.InboxEvent
		for i := 0; i < 1200; i++ {
			evts = append(evts, store.InboxEvent{EventID: "$" + strconv.Itoa(i), RoomID: "!r", Kind: "timeline", Payload: []byte(`{}`)})
		}
		if _, _, err := s.CommitTransaction(ctx, "sc", "t", evts); err != nil {
			t.Fatal(err)
		}
		pending, err := s.PendingEvents(ctx, 0, 2000)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, e := range pending[:1100] {
			seqs = append(seqs, e.Seq)
		}
		if err := s.MarkEventsDone(ctx, seqs); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEventsDone(ctx, seqs[:3]); err != nil { // again: harmless
			t.Fatal(err)
		}
		if n, _ := s.InboxDepth(ctx); n != 100 {
			t.Fatalf("pending after marking 1100 of 1200 done = %d, want 100", n)
		}
	})
}
