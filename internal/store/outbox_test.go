package store_test

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

func message(module, remoteID string) store.OutboxMessage {
	return store.OutboxMessage{
		Module: module, RemoteID: remoteID, RoomID: "!room:example.org", Sender: "@xmpp_alice:example.org",
		EventType: "m.room.message", Content: []byte(`{"msgtype":"m.text","body":"hi"}`),
		TS: 1700000000000, TxnID: "sb-" + module + "-" + remoteID, CausedBy: "$cause:example.org",
	}
}

func TestEnqueueOutbox(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		first, existing, err := s.EnqueueOutbox(ctx, message("xmpp", "m1"))
		if err != nil {
			t.Fatal(err)
		}
		want := message("xmpp", "m1")
		want.Seq, want.State = first.Seq, store.OutboxPending
		if existing || first.Seq <= 0 || !reflect.DeepEqual(first, want) {
			t.Fatalf("first EnqueueOutbox = %+v, existing %v; want %+v, false", first, existing, want)
		}
		if got, err := s.GetOutbox(ctx, "xmpp", "m1"); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("GetOutbox = %+v, %v; want %+v", got, err, want)
		}

		tests := []struct {
			name         string
			msg          store.OutboxMessage
			before       func(t *testing.T)
			wantExisting bool
			wantSeq      int64 // 0: a new seq
			wantState    string
			wantEventID  string
		}{
			{
				name: "same remote id returns the stored row",
				msg: func() store.OutboxMessage {
					m := message("xmpp", "m1")
					m.Content = []byte(`{"body":"other"}`)
					return m
				}(),
				wantExisting: true, wantSeq: first.Seq, wantState: store.OutboxPending,
			},
			{
				name:         "same remote id in another module is new",
				msg:          message("sip", "m1"),
				wantExisting: false, wantState: store.OutboxPending,
			},
			{
				name: "existing sent row is returned with its event id",
				msg:  message("xmpp", "m1"),
				before: func(t *testing.T) {
					if err := s.MarkOutboxSent(ctx, first.Seq, "$sent"); err != nil {
						t.Fatal(err)
					}
				},
				wantExisting: true, wantSeq: first.Seq, wantState: store.OutboxSent, wantEventID: "$sent",
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if tc.before != nil {
					tc.before(t)
				}
				got, existing, err := s.EnqueueOutbox(ctx, tc.msg)
				if err != nil {
					t.Fatal(err)
				}
				if existing != tc.wantExisting || got.State != tc.wantState || got.EventID != tc.wantEventID {
					t.Errorf("EnqueueOutbox = %+v, existing %v; want existing %v, state %s, event %q",
						got, existing, tc.wantExisting, tc.wantState, tc.wantEventID)
				}
				if tc.wantSeq != 0 && got.Seq != tc.wantSeq {
					t.Errorf("Seq = %d, want %d", got.Seq, tc.wantSeq)
				}
				if tc.wantExisting && string(got.Content) != string(message("", "").Content) {
					t.Errorf("existing row content = %s, want the first content", got.Content)
				}
			})
		}
	})
}

func TestPendingOutbox(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		var seqs []int64
		for _, id := range []string{"c", "a", "b", "d"} {
			m, _, err := s.EnqueueOutbox(ctx, message("xmpp", id))
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, m.Seq)
		}
		if err := s.MarkOutboxSent(ctx, seqs[1], "$a"); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkOutboxFailed(ctx, seqs[3], "forbidden"); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			afterSeq int64
			limit    int
			want     []string
		}{
			{"pending in seq order without sent and failed", 0, 10, []string{"c", "b"}},
			{"limit", 0, 1, []string{"c"}},
			{"after seq", seqs[0], 10, []string{"b"}},
			{"after last", seqs[3], 10, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				var got []store.OutboxMessage
				var err error
				if tc.afterSeq == 0 {
					got, err = s.PendingOutbox(ctx, tc.limit)
				} else {
					got, err = s.PendingOutboxAfter(ctx, tc.afterSeq, tc.limit)
				}
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, m := range got {
					ids = append(ids, m.RemoteID)
				}
				if !slices.Equal(ids, tc.want) {
					t.Errorf("pending = %v, want %v", ids, tc.want)
				}
			})
		}
		if n, err := s.OutboxDepth(ctx); err != nil || n != 2 {
			t.Errorf("OutboxDepth = %d, %v; want 2", n, err)
		}
	})
}

func TestOutboxStates(t *testing.T) {
	tests := []struct {
		name          string
		act           func(t *testing.T, s *store.Store, seq int64)
		wantState     string
		wantEventID   string
		wantAttempts  int
		wantLastError string
		wantMapped    bool
	}{
		{
			name:      "untouched",
			act:       func(*testing.T, *store.Store, int64) {},
			wantState: store.OutboxPending,
		},
		{
			name: "attempts are counted",
			act: func(t *testing.T, s *store.Store, seq int64) {
				for want := 1; want <= 3; want++ {
					if n, err := s.RecordOutboxAttempt(t.Context(), seq, "M_LIMIT_EXCEEDED"); err != nil || n != want {
						t.Fatalf("RecordOutboxAttempt = %d, %v; want %d", n, err, want)
					}
				}
			},
			wantState: store.OutboxPending, wantAttempts: 3, wantLastError: "M_LIMIT_EXCEEDED",
		},
		{
			name: "sent writes the message map",
			act: func(t *testing.T, s *store.Store, seq int64) {
				if _, err := s.RecordOutboxAttempt(t.Context(), seq, "timeout"); err != nil {
					t.Fatal(err)
				}
				if err := s.MarkOutboxSent(t.Context(), seq, "$ev"); err != nil {
					t.Fatal(err)
				}
			},
			wantState: store.OutboxSent, wantEventID: "$ev", wantAttempts: 1, wantMapped: true,
		},
		{
			name: "failed",
			act: func(t *testing.T, s *store.Store, seq int64) {
				if err := s.MarkOutboxFailed(t.Context(), seq, "M_FORBIDDEN"); err != nil {
					t.Fatal(err)
				}
			},
			wantState: store.OutboxFailed, wantLastError: "M_FORBIDDEN",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Dialects(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				m, _, err := s.EnqueueOutbox(ctx, message("xmpp", "m1"))
				if err != nil {
					t.Fatal(err)
				}
				tc.act(t, s, m.Seq)
				got, err := s.GetOutbox(ctx, "xmpp", "m1")
				if err != nil {
					t.Fatal(err)
				}
				if got.State != tc.wantState || got.EventID != tc.wantEventID || got.Attempts != tc.wantAttempts ||
					got.LastError != tc.wantLastError {
					t.Errorf("row = %+v; want state %s, event %q, attempts %d, error %q",
						got, tc.wantState, tc.wantEventID, tc.wantAttempts, tc.wantLastError)
				}
				room, ev, err := s.MessageByRemote(ctx, "xmpp", "m1")
				switch {
				case tc.wantMapped && (err != nil || room != m.RoomID || ev != tc.wantEventID):
					t.Errorf("MessageByRemote = %s, %s, %v; want %s, %s", room, ev, err, m.RoomID, tc.wantEventID)
				case !tc.wantMapped && !errors.Is(err, store.ErrNotFound):
					t.Errorf("MessageByRemote err = %v, want ErrNotFound", err)
				}
				if tc.wantMapped {
					if remote, err := s.MessageByEvent(ctx, "xmpp", tc.wantEventID); err != nil || remote != "m1" {
						t.Errorf("MessageByEvent = %s, %v; want m1", remote, err)
					}
				}
				wantDepth := 0
				if tc.wantState == store.OutboxPending {
					wantDepth = 1
				}
				if n, err := s.OutboxDepth(ctx); err != nil || n != wantDepth {
					t.Errorf("OutboxDepth = %d, %v; want %d", n, err, wantDepth)
				}
			})
		})
	}
}

func TestOutboxNotFound(t *testing.T) {
	tests := []struct {
		name string
		call func(t *testing.T, s *store.Store) error
	}{
		{"GetOutbox", func(t *testing.T, s *store.Store) error {
			_, err := s.GetOutbox(t.Context(), "xmpp", "nope")
			return err
		}},
		{"MarkOutboxSent", func(t *testing.T, s *store.Store) error { return s.MarkOutboxSent(t.Context(), 42, "$x") }},
		{"MarkOutboxFailed", func(t *testing.T, s *store.Store) error { return s.MarkOutboxFailed(t.Context(), 42, "x") }},
		{"RecordOutboxAttempt", func(t *testing.T, s *store.Store) error {
			_, err := s.RecordOutboxAttempt(t.Context(), 42, "x")
			return err
		}},
	}
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.call(t, s); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("err = %v, want ErrNotFound", err)
				}
			})
		}
		if _, err := s.MessageByEvent(t.Context(), "xmpp", "$x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a failed MarkOutboxSent left a message map row: %v", err)
		}
	})
}
