package store_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// TestMarkOutboxSentByTxn: the echo of a send in doubt records the row sent and the message
// map entry once; other senders, rooms or transaction IDs find nothing, and a row that is
// already sent or failed is left as it is.
func TestMarkOutboxSentByTxn(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		m := message("xmpp", "m1")
		row, _, err := s.EnqueueOutbox(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		failed, _, err := s.EnqueueOutbox(ctx, message("xmpp", "gone"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.MarkOutboxFailed(ctx, failed.Seq, "refused"); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name                     string
			txn, sender, room, event string
			wantErr                  error
			wantRecorded             bool
			wantState, wantEvent     string
		}{
			{"other sender", m.TxnID, "@xmpp_bob:example.org", m.RoomID, "$x", store.ErrNotFound, false, "", ""},
			{"other room", m.TxnID, m.Sender, "!other:example.org", "$x", store.ErrNotFound, false, "", ""},
			{"unknown transaction", "sb-none", m.Sender, m.RoomID, "$x", store.ErrNotFound, false, "", ""},
			{"pending row", m.TxnID, m.Sender, m.RoomID, "$e1", nil, true, store.OutboxSent, "$e1"},
			{"echo again", m.TxnID, m.Sender, m.RoomID, "$e1", nil, false, store.OutboxSent, "$e1"},
			{"already sent as another event", m.TxnID, m.Sender, m.RoomID, "$e2", nil, false, store.OutboxSent, "$e1"},
			{"failed row", failed.TxnID, failed.Sender, failed.RoomID, "$e3", nil, false, store.OutboxFailed, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, recorded, err := s.MarkOutboxSentByTxn(ctx, tt.txn, tt.sender, tt.room, tt.event)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("err = %v, want %v", err, tt.wantErr)
					}
					return
				}
				if err != nil || recorded != tt.wantRecorded || got.State != tt.wantState || got.EventID != tt.wantEvent {
					t.Fatalf("= %+v, %v, %v; want state %s event %q recorded %v", got, recorded, err, tt.wantState, tt.wantEvent, tt.wantRecorded)
				}
			})
		}
		if room, eid, err := s.MessageByRemote(ctx, "xmpp", "m1"); err != nil || room != m.RoomID || eid != "$e1" {
			t.Fatalf("message map = %s %s %v; want %s $e1", room, eid, err, m.RoomID)
		}
		if remote, err := s.MessageByEvent(ctx, "xmpp", "$e1"); err != nil || remote != "m1" {
			t.Fatalf("MessageByEvent = %s, %v", remote, err)
		}
		if _, _, err := s.MessageByRemote(ctx, "xmpp", "gone"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("failed row mapped: %v", err)
		}
		if got, err := s.GetOutbox(ctx, "xmpp", "m1"); err != nil || got.Seq != row.Seq || got.State != store.OutboxSent {
			t.Fatalf("GetOutbox = %+v, %v", got, err)
		}
	})
}

// TestMarkOutboxSentByTxnRacesOutbox: the echo and the outbox recording the same send at
// once leave one sent row and one message map entry, and exactly one echo call reports
// that it recorded the row when the outbox did not get there first.
func TestMarkOutboxSentByTxnRacesOutbox(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		for i := range 20 {
			m := message("xmpp", "race"+string(rune('a'+i)))
			row, _, err := s.EnqueueOutbox(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			recordedN := 0
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, recorded, err := s.MarkOutboxSentByTxn(ctx, m.TxnID, m.Sender, m.RoomID, "$ev")
					if err != nil {
						t.Error(err)
					}
					if recorded {
						mu.Lock()
						recordedN++
						mu.Unlock()
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.MarkOutboxSent(ctx, row.Seq, "$ev"); err != nil {
					t.Error(err)
				}
			}()
			wg.Wait()
			if recordedN > 1 {
				t.Fatalf("%d echo calls recorded the row, want at most 1", recordedN)
			}
			got, err := s.GetOutbox(ctx, "xmpp", m.RemoteID)
			if err != nil || got.State != store.OutboxSent || got.EventID != "$ev" {
				t.Fatalf("row = %+v, %v", got, err)
			}
			if remote, err := s.MessageByEvent(ctx, "xmpp", "$ev"); err != nil || remote == "" {
				t.Fatalf("MessageByEvent = %q, %v", remote, err)
			}
		}
	})
}

// TestInDoubtOutbox: rows in doubt are the pending rows of the module attempted at least
// once, optionally in one room.
func TestInDoubtOutbox(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		add := func(module, remoteID, room string, attempts int, sent bool) {
			t.Helper()
			m := message(module, remoteID)
			m.RoomID = room
			row, _, err := s.EnqueueOutbox(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			for range attempts {
				if _, err := s.RecordOutboxAttempt(ctx, row.Seq, ""); err != nil {
					t.Fatal(err)
				}
			}
			if sent {
				if err := s.MarkOutboxSent(ctx, row.Seq, "$"+remoteID); err != nil {
					t.Fatal(err)
				}
			}
		}
		add("email", "a", "!1:x", 1, false)
		add("email", "never-tried", "!1:x", 0, false)
		add("email", "sent", "!1:x", 1, true)
		add("xmpp", "other-module", "!1:x", 1, false)
		add("email", "b", "!2:x", 2, false)
		tests := []struct {
			name, module, room string
			limit              int
			want               []string
		}{
			{"all rooms", "email", "", 10, []string{"a", "b"}},
			{"one room", "email", "!2:x", 10, []string{"b"}},
			{"limit", "email", "", 1, []string{"a"}},
			{"no rows", "case", "", 10, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				rows, err := s.InDoubtOutbox(ctx, tt.module, tt.room, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, r := range rows {
					got = append(got, r.RemoteID)
				}
				if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) || (len(got) > 1 && got[1] != tt.want[1]) {
					t.Fatalf("= %v, want %v", got, tt.want)
				}
			})
		}
	})
}

// TestOutboxTxnIndex: the migration to version 3 adds the index that the echo's lookup by
// transaction ID uses.
func TestOutboxTxnIndex(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'outbox_txn'`
		if s.Dialect() == store.Postgres {
			q = `SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'outbox_txn'`
		}
		var n int
		if err := s.DB().QueryRowContext(t.Context(), q).Scan(&n); err != nil || n != 1 {
			t.Fatalf("%d indexes outbox_txn (%v), want 1", n, err)
		}
		if v, err := s.SchemaVersion(t.Context()); err != nil || v < 3 {
			t.Fatalf("schema version %d, %v", v, err)
		}
	})
}
