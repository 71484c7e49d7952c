package store_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// events builds timeline events with the given ids.
func events(ids ...string) []store.InboxEvent {
	out := make([]store.InboxEvent, len(ids))
	for i, id := range ids {
		out[i] = store.InboxEvent{EventID: id, RoomID: "!room:example.org", Kind: "timeline",
			Payload: []byte(`{"event_id":"` + id + `"}`)}
	}
	return out
}

func numbered(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%04d", prefix, i)
	}
	return ids
}

// pendingIDs returns the ids of all pending events, checking that Seq increases.
func pendingIDs(t *testing.T, s *store.Store) []string {
	t.Helper()
	evs, err := s.PendingEvents(t.Context(), 0, 100000)
	if err != nil {
		t.Fatalf("PendingEvents: %v", err)
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Fatalf("Seq not increasing: %s has %d after %s with %d", e.EventID, e.Seq, evs[i-1].EventID, evs[i-1].Seq)
		}
		ids[i] = e.EventID
	}
	return ids
}

func TestCommitTransaction(t *testing.T) {
	type txn struct {
		scope, id    string
		events       []string
		wantDup      bool
		wantInserted int
	}
	tests := []struct {
		name        string
		txns        []txn
		wantPending []string
	}{
		{
			name:        "new transaction inserts its events in order",
			txns:        []txn{{"as", "t1", []string{"$c", "$a", "$b"}, false, 3}},
			wantPending: []string{"$c", "$a", "$b"},
		},
		{
			name: "replayed transaction inserts nothing twice",
			txns: []txn{
				{"as", "t1", []string{"$a", "$b"}, false, 2},
				{"as", "t1", []string{"$a", "$b"}, true, 0},
			},
			wantPending: []string{"$a", "$b"},
		},
		{
			name: "reused transaction id with more events keeps the new ones",
			txns: []txn{
				{"as", "t1", []string{"$a", "$b"}, false, 2},
				{"as", "t1", []string{"$a", "$b", "$c"}, true, 1},
			},
			wantPending: []string{"$a", "$b", "$c"},
		},
		{
			name: "same transaction id in another scope is new",
			txns: []txn{
				{"as1", "t1", []string{"$a"}, false, 1},
				{"as2", "t1", []string{"$b"}, false, 1},
			},
			wantPending: []string{"$a", "$b"},
		},
		{
			name: "overlapping event ids across transactions are inserted once",
			txns: []txn{
				{"as", "t1", []string{"$a", "$b"}, false, 2},
				{"as", "t2", []string{"$b", "$c", "$a", "$d"}, false, 2},
			},
			wantPending: []string{"$a", "$b", "$c", "$d"},
		},
		{
			name:        "repeated event id within a transaction is inserted once",
			txns:        []txn{{"as", "t1", []string{"$a", "$a", "$b"}, false, 2}},
			wantPending: []string{"$a", "$b"},
		},
		{
			name: "empty transaction is journaled",
			txns: []txn{
				{"as", "t1", nil, false, 0},
				{"as", "t1", nil, true, 0},
			},
			wantPending: []string{},
		},
		{
			name:        "more events than one insert statement keep their order",
			txns:        []txn{{"as", "big", numbered("$e", 450), false, 450}},
			wantPending: numbered("$e", 450),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Dialects(t, func(t *testing.T, s *store.Store) {
				for _, x := range tc.txns {
					dup, n, err := s.CommitTransaction(t.Context(), x.scope, x.id, events(x.events...))
					if err != nil {
						t.Fatalf("CommitTransaction(%s, %s): %v", x.scope, x.id, err)
					}
					if dup != x.wantDup || n != x.wantInserted {
						t.Errorf("CommitTransaction(%s, %s) = duplicate %v, inserted %d; want %v, %d",
							x.scope, x.id, dup, n, x.wantDup, x.wantInserted)
					}
				}
				if got := pendingIDs(t, s); !slices.Equal(got, tc.wantPending) {
					t.Errorf("pending = %v, want %v", got, tc.wantPending)
				}
			})
		})
	}
}

func TestCommitTransactionKeepsHandledEventsOut(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		if _, _, err := s.CommitTransaction(ctx, "as", "t1", events("$a", "$b")); err != nil {
			t.Fatal(err)
		}
		evs, err := s.PendingEvents(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEventDone(ctx, evs[0].Seq); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEventFailed(ctx, evs[1].Seq, "boom"); err != nil {
			t.Fatal(err)
		}
		// The homeserver resends the events in a new transaction: neither comes back.
		_, n, err := s.CommitTransaction(ctx, "as", "t2", events("$a", "$b", "$c"))
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("inserted = %d, want 1", n)
		}
		if got, want := pendingIDs(t, s), []string{"$c"}; !slices.Equal(got, want) {
			t.Errorf("pending = %v, want %v", got, want)
		}
	})
}

func TestPendingEvents(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		in := []store.InboxEvent{
			{EventID: "$a", RoomID: "!r:x", Kind: "timeline", Payload: []byte(`{"type":"m.room.message"}`)},
			{EventID: "eph:as:t1:0", Kind: "ephemeral", Payload: []byte{0, 1, 2, 0xff}},
			{EventID: "$c", RoomID: "!r:x", Kind: "timeline", Payload: nil},
			{EventID: "$d", RoomID: "!r:x", Kind: "timeline", Payload: []byte(`{}`)},
		}
		if _, _, err := s.CommitTransaction(ctx, "as", "t1", in); err != nil {
			t.Fatal(err)
		}
		all, err := s.PendingEvents(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(in) {
			t.Fatalf("got %d events, want %d", len(all), len(in))
		}
		for i, e := range all {
			w := in[i]
			if e.EventID != w.EventID || e.RoomID != w.RoomID || e.Kind != w.Kind ||
				!bytes.Equal(e.Payload, w.Payload) || e.Attempts != 0 || e.Seq <= 0 {
				t.Errorf("event %d = %+v, want %+v", i, e, w)
			}
		}
		tests := []struct {
			name     string
			afterSeq int64
			limit    int
			want     []string
		}{
			{"all", 0, 10, []string{"$a", "eph:as:t1:0", "$c", "$d"}},
			{"limit", 0, 2, []string{"$a", "eph:as:t1:0"}},
			{"after seq", all[1].Seq, 10, []string{"$c", "$d"}},
			{"after seq with limit", all[0].Seq, 1, []string{"eph:as:t1:0"}},
			{"after last", all[3].Seq, 10, nil},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				evs, err := s.PendingEvents(ctx, tc.afterSeq, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range evs {
					got = append(got, e.EventID)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("PendingEvents(%d, %d) = %v, want %v", tc.afterSeq, tc.limit, got, tc.want)
				}
			})
		}
	})
}

func TestEventStates(t *testing.T) {
	tests := []struct {
		name         string
		act          func(s *store.Store, t *testing.T, seq int64) error
		wantPending  bool
		wantAttempts int
	}{
		{"untouched is pending", func(*store.Store, *testing.T, int64) error { return nil }, true, 0},
		{"done is not pending", func(s *store.Store, t *testing.T, seq int64) error {
			return s.MarkEventDone(t.Context(), seq)
		}, false, 0},
		{"failed is not pending", func(s *store.Store, t *testing.T, seq int64) error {
			return s.MarkEventFailed(t.Context(), seq, "handler gave up")
		}, false, 0},
		{"attempts are counted and stay pending", func(s *store.Store, t *testing.T, seq int64) error {
			for want := 1; want <= 3; want++ {
				n, err := s.RecordEventAttempt(t.Context(), seq, fmt.Sprintf("attempt %d failed", want))
				if err != nil {
					return err
				}
				if n != want {
					t.Errorf("RecordEventAttempt = %d, want %d", n, want)
				}
			}
			return nil
		}, true, 3},
		{"failed after attempts", func(s *store.Store, t *testing.T, seq int64) error {
			if _, err := s.RecordEventAttempt(t.Context(), seq, "x"); err != nil {
				return err
			}
			return s.MarkEventFailed(t.Context(), seq, "x")
		}, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Dialects(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				if _, _, err := s.CommitTransaction(ctx, "as", "t1", events("$a", "$b")); err != nil {
					t.Fatal(err)
				}
				evs, err := s.PendingEvents(ctx, 0, 10)
				if err != nil {
					t.Fatal(err)
				}
				if err := tc.act(s, t, evs[0].Seq); err != nil {
					t.Fatal(err)
				}
				evs, err = s.PendingEvents(ctx, 0, 10)
				if err != nil {
					t.Fatal(err)
				}
				wantDepth := 1
				if tc.wantPending {
					wantDepth = 2
					if evs[0].EventID != "$a" || evs[0].Attempts != tc.wantAttempts {
						t.Errorf("first pending = %s with %d attempts, want $a with %d", evs[0].EventID, evs[0].Attempts, tc.wantAttempts)
					}
				} else if evs[0].EventID != "$b" {
					t.Errorf("first pending = %s, want $b", evs[0].EventID)
				}
				if depth, err := s.InboxDepth(ctx); err != nil || depth != wantDepth {
					t.Errorf("InboxDepth = %d, %v; want %d", depth, err, wantDepth)
				}
			})
		})
	}
}

func TestEventUnknownSeq(t *testing.T) {
	tests := []struct {
		name string
		call func(s *store.Store, t *testing.T) error
	}{
		{"MarkEventDone", func(s *store.Store, t *testing.T) error { return s.MarkEventDone(t.Context(), 42) }},
		{"MarkEventFailed", func(s *store.Store, t *testing.T) error { return s.MarkEventFailed(t.Context(), 42, "x") }},
		{"RecordEventAttempt", func(s *store.Store, t *testing.T) error {
			_, err := s.RecordEventAttempt(t.Context(), 42, "x")
			return err
		}},
	}
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.call(s, t); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("err = %v, want ErrNotFound", err)
				}
			})
		}
	})
}

// seqsByID returns the Seq of every pending event by event ID.
func seqsByID(t *testing.T, s *store.Store) map[string]int64 {
	t.Helper()
	evs, err := s.PendingEvents(t.Context(), 0, 100000)
	if err != nil {
		t.Fatalf("PendingEvents: %v", err)
	}
	out := make(map[string]int64, len(evs))
	for _, e := range evs {
		out[e.EventID] = e.Seq
	}
	return out
}

func TestCommitTransactionFillsSeq(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		if _, _, err := s.CommitTransaction(ctx, "as", "t1", events("$a")); err != nil {
			t.Fatal(err)
		}
		// $a is a duplicate, $b is repeated: only the first $b and $c are new. A stale Seq
		// from the caller is overwritten.
		evs := events("$a", "$b", "$b", "$c")
		evs[0].Seq = 99
		if _, n, err := s.CommitTransaction(ctx, "as", "t2", evs); err != nil || n != 2 {
			t.Fatalf("CommitTransaction = %d, %v; want 2 inserted", n, err)
		}
		stored := seqsByID(t, s)
		want := []int64{0, stored["$b"], 0, stored["$c"]}
		for i, e := range evs {
			if e.Seq != want[i] {
				t.Errorf("events[%d] (%s).Seq = %d, want %d", i, e.EventID, e.Seq, want[i])
			}
		}
		if evs[1].Seq == 0 || evs[3].Seq <= evs[1].Seq {
			t.Errorf("new events have Seq %d, %d; want increasing, not 0", evs[1].Seq, evs[3].Seq)
		}
	})
}

func TestCommitTransactionFillsSeqAcrossStatements(t *testing.T) {
	// More events than one SQLite insert statement holds, every third one already stored.
	ids := numbered("$e", 450)
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		var old []string
		for i := 0; i < len(ids); i += 3 {
			old = append(old, ids[i])
		}
		if _, _, err := s.CommitTransaction(ctx, "as", "t1", events(old...)); err != nil {
			t.Fatal(err)
		}
		evs := events(ids...)
		if _, n, err := s.CommitTransaction(ctx, "as", "t2", evs); err != nil || n != len(ids)-len(old) {
			t.Fatalf("CommitTransaction = %d, %v; want %d inserted", n, err, len(ids)-len(old))
		}
		stored := seqsByID(t, s)
		for i, e := range evs {
			want := stored[e.EventID]
			if i%3 == 0 {
				want = 0
			}
			if e.Seq != want {
				t.Errorf("events[%d] (%s).Seq = %d, want %d", i, e.EventID, e.Seq, want)
			}
		}
	})
}

func TestCommitTransactions(t *testing.T) {
	type txn struct {
		id           string
		events       []string
		wantDup      bool
		wantInserted int
		wantNew      []bool // per event: gets a Seq
	}
	tests := []struct {
		name        string
		before      []string // event IDs committed in an earlier call, as transaction "t0"
		txns        []txn
		wantPending []string
	}{
		{
			name: "several transactions in order",
			txns: []txn{
				{"t1", []string{"$a", "$b"}, false, 2, []bool{true, true}},
				{"t2", []string{"$c"}, false, 1, []bool{true}},
			},
			wantPending: []string{"$a", "$b", "$c"},
		},
		{
			name: "event repeated across transactions of one call: the first wins",
			txns: []txn{
				{"t1", []string{"$a", "$b"}, false, 2, []bool{true, true}},
				{"t2", []string{"$b", "$c", "$a"}, false, 1, []bool{false, true, false}},
			},
			wantPending: []string{"$a", "$b", "$c"},
		},
		{
			name: "event repeated within a transaction of the call",
			txns: []txn{
				{"t1", []string{"$a"}, false, 1, []bool{true}},
				{"t2", []string{"$b", "$b"}, false, 1, []bool{true, false}},
			},
			wantPending: []string{"$a", "$b"},
		},
		{
			name: "transaction id repeated within the call is a duplicate the second time",
			txns: []txn{
				{"t1", []string{"$a"}, false, 1, []bool{true}},
				{"t1", []string{"$a", "$b"}, true, 1, []bool{false, true}},
			},
			wantPending: []string{"$a", "$b"},
		},
		{
			name:   "transaction and events committed by an earlier call",
			before: []string{"$a"},
			txns: []txn{
				{"t0", []string{"$a", "$b"}, true, 1, []bool{false, true}},
				{"t1", nil, false, 0, nil},
			},
			wantPending: []string{"$a", "$b"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Dialects(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				if tc.before != nil {
					if _, _, err := s.CommitTransaction(ctx, "as", "t0", events(tc.before...)); err != nil {
						t.Fatal(err)
					}
				}
				batch := make([]store.TxnCommit, len(tc.txns))
				for i, x := range tc.txns {
					batch[i] = store.TxnCommit{TxnID: x.id, Events: events(x.events...)}
				}
				if err := s.CommitTransactions(ctx, "as", batch); err != nil {
					t.Fatalf("CommitTransactions: %v", err)
				}
				stored := seqsByID(t, s)
				for i, x := range tc.txns {
					got := batch[i]
					if got.Duplicate != x.wantDup || got.Inserted != x.wantInserted {
						t.Errorf("txns[%d] (%s) = duplicate %v, inserted %d; want %v, %d",
							i, x.id, got.Duplicate, got.Inserted, x.wantDup, x.wantInserted)
					}
					for j, e := range got.Events {
						want := int64(0)
						if x.wantNew[j] {
							want = stored[e.EventID]
						}
						if e.Seq != want {
							t.Errorf("txns[%d].Events[%d] (%s).Seq = %d, want %d", i, j, e.EventID, e.Seq, want)
						}
					}
				}
				if got := pendingIDs(t, s); !slices.Equal(got, tc.wantPending) {
					t.Errorf("pending = %v, want %v", got, tc.wantPending)
				}
			})
		})
	}
}

func TestCommitTransactionsEmpty(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		if err := s.CommitTransactions(t.Context(), "as", nil); err != nil {
			t.Fatalf("CommitTransactions(nil) = %v", err)
		}
	})
}

func TestMarkEventsDoneRanges(t *testing.T) {
	// Ten events with seqs s[0..9]; each case marks some done and expects the rest pending.
	tests := []struct {
		name        string
		mark        func(s []int64) []int64
		wantPending []int // indexes into the ten events
	}{
		{"one seq", func(s []int64) []int64 { return s[4:5] }, []int{0, 1, 2, 3, 5, 6, 7, 8, 9}},
		{"one run", func(s []int64) []int64 { return s[2:6] }, []int{0, 1, 6, 7, 8, 9}},
		{"unsorted with gaps", func(s []int64) []int64 { return []int64{s[9], s[0], s[5], s[1], s[6]} },
			[]int{2, 3, 4, 7, 8}},
		{"repeated seqs", func(s []int64) []int64 { return []int64{s[3], s[3], s[4], s[3]} },
			[]int{0, 1, 2, 5, 6, 7, 8, 9}},
		{"every other seq", func(s []int64) []int64 { return []int64{s[0], s[2], s[4], s[6], s[8]} },
			[]int{1, 3, 5, 7, 9}},
		{"unknown seqs around known ones", func(s []int64) []int64 { return []int64{s[9] + 1, s[9] + 5, s[0], -3, 0} },
			[]int{1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"all", func(s []int64) []int64 { return s }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			storetest.Dialects(t, func(t *testing.T, s *store.Store) {
				ctx := t.Context()
				evs := events(numbered("$e", 10)...)
				if _, _, err := s.CommitTransaction(ctx, "as", "t1", evs); err != nil {
					t.Fatal(err)
				}
				seqs := make([]int64, len(evs))
				for i, e := range evs {
					seqs[i] = e.Seq
				}
				mark := tc.mark(seqs)
				before := slices.Clone(mark)
				if err := s.MarkEventsDone(ctx, mark); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(mark, before) {
					t.Errorf("MarkEventsDone reordered its argument: %v, was %v", mark, before)
				}
				var want []string
				for _, i := range tc.wantPending {
					want = append(want, evs[i].EventID)
				}
				if got := pendingIDs(t, s); !slices.Equal(got, want) {
					t.Errorf("pending = %v, want %v", got, want)
				}
			})
		})
	}
}

func TestMarkEventsDoneLeavesFailedEvents(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		evs := events("$a", "$b", "$c")
		if _, _, err := s.CommitTransaction(ctx, "as", "t1", evs); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEventFailed(ctx, evs[1].Seq, "gave up"); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkEventsDone(ctx, []int64{evs[0].Seq, evs[1].Seq, evs[2].Seq}); err != nil {
			t.Fatal(err)
		}
		recs, err := s.InboxRecords(ctx, "$b")
		if err != nil || len(recs) != 1 {
			t.Fatalf("InboxRecords($b) = %v, %v", recs, err)
		}
		if recs[0].State != "failed" || recs[0].LastError != "gave up" {
			t.Errorf("failed event is %q (%q), want failed (gave up)", recs[0].State, recs[0].LastError)
		}
	})
}

func TestMarkEventsDoneManyRanges(t *testing.T) {
	// Every other one of 400 events: 200 ranges, more than one UPDATE statement holds,
	// and a last statement padded to its size.
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		evs := events(numbered("$e", 400)...)
		if _, _, err := s.CommitTransaction(ctx, "as", "t1", evs); err != nil {
			t.Fatal(err)
		}
		var mark []int64
		var want []string
		for i, e := range evs {
			if i%2 == 0 {
				mark = append(mark, e.Seq)
			} else {
				want = append(want, e.EventID)
			}
		}
		if err := s.MarkEventsDone(ctx, mark); err != nil {
			t.Fatal(err)
		}
		if got := pendingIDs(t, s); !slices.Equal(got, want) {
			t.Errorf("pending = %d events, want %d", len(got), len(want))
		}
	})
}

func TestCommitTransactionsFillsSeqWithoutDuplicates(t *testing.T) {
	// Three transactions of 90 new events, journaled as one batch.
	storetest.Dialects(t, func(t *testing.T, s *store.Store) {
		ctx := t.Context()
		// An earlier commit, pruned since, leaves the seq counter above the largest seq.
		if _, _, err := s.CommitTransaction(ctx, "as", "t0", events("$old")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().ExecContext(ctx, `DELETE FROM inbox_batch`); err != nil {
			t.Fatal(err)
		}
		batch := make([]store.TxnCommit, 3)
		for i := range batch {
			batch[i] = store.TxnCommit{TxnID: fmt.Sprint("t", i+1), Events: events(numbered(fmt.Sprint("$t", i, "-"), 90)...)}
		}
		if err := s.CommitTransactions(ctx, "as", batch); err != nil {
			t.Fatal(err)
		}
		stored := seqsByID(t, s)
		for i, c := range batch {
			if c.Duplicate || c.Inserted != 90 {
				t.Errorf("txns[%d] = duplicate %v, inserted %d; want false, 90", i, c.Duplicate, c.Inserted)
			}
			for j, e := range c.Events {
				if want := stored[e.EventID]; e.Seq != want || e.Seq == 0 {
					t.Fatalf("txns[%d].Events[%d] (%s).Seq = %d, want %d", i, j, e.EventID, e.Seq, want)
				}
			}
		}
	})
}
