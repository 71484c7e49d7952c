package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// inserted commits ids as transaction txn through s and returns the IDs it inserted.
func inserted(t *testing.T, s *store.Store, txn string, ids ...string) []string {
	t.Helper()
	evs := events(ids...)
	if _, _, err := s.CommitTransaction(t.Context(), "as", txn, evs); err != nil {
		t.Fatalf("commit %s: %v", txn, err)
	}
	var got []string
	for _, e := range evs {
		if e.Seq > 0 {
			got = append(got, e.EventID)
		}
	}
	return got
}

// TestInboxWindowInstance: on both dialects the instance holding the instance lock
// deduplicates against its window, which it loads when it takes the lock; a writer without
// the lock checks under the inbox lock (on PostgreSQL only before anyone took the lock:
// then the epoch fence refuses it, fence.go); after a commit of unknown outcome the
// instance loads what was committed before it trusts its window again; once the lock is
// given back it checks under the inbox lock again.
func TestInboxWindowInstance(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			uri := storetest.NewDatabaseURI(t, d)
			open := func() *store.Store {
				s, err := store.Open(t.Context(), uri)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			owner, other := open(), open()
			if got := inserted(t, other, "t0", "$before"); len(got) != 1 {
				t.Fatalf("inserted %v", got)
			}
			release, err := owner.LockInstance(t.Context(), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := inserted(t, owner, "t1", "$before", "$a", "$a"); len(got) != 1 || got[0] != "$a" {
				t.Errorf("owner inserted %v, want [$a]: $before was journaled before it took the lock", got)
			}
			if got := inserted(t, owner, "t2", "$a", "$b"); len(got) != 1 || got[0] != "$b" {
				t.Errorf("owner inserted %v, want [$b]", got)
			}
			if d == store.Postgres {
				if _, _, err := other.CommitTransaction(t.Context(), "as", "t3", events("$b", "$c")); !store.IsFenced(err) {
					t.Errorf("writer without the lock: %v, want fenced", err)
				}
				// What it would have journaled, through the owner.
				inserted(t, owner, "t3", "$c")
			} else if got := inserted(t, other, "t3", "$b", "$c"); len(got) != 1 || got[0] != "$c" {
				t.Errorf("writer without the lock inserted %v, want [$c]", got)
			}
			store.MarkRecentStale(owner)
			if got := inserted(t, owner, "t4", "$c", "$d"); len(got) != 1 || got[0] != "$d" {
				t.Errorf("owner after an unknown outcome inserted %v, want [$d]", got)
			}
			release()
			if d == store.Postgres {
				// The former owner still writes under the newest epoch: the fence lets it.
				inserted(t, owner, "t5", "$e")
			} else if got := inserted(t, other, "t5", "$e"); len(got) != 1 {
				t.Fatalf("inserted %v", got)
			}
			if got := inserted(t, owner, "t6", "$e", "$f"); len(got) != 1 || got[0] != "$f" {
				t.Errorf("former owner inserted %v, want [$f]", got)
			}
		})
	}
}

// TestInboxWindow: on both dialects an event ID is a duplicate while it is in the window:
// across a restart, and not when only its hash matches; an ID that left the window, or
// whose event was pruned, is new again.
func TestInboxWindow(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := t.Context()
			open := func(uri string) *store.Store {
				s, err := store.Open(ctx, uri)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			uri := storetest.NewDatabaseURI(t, d)
			s := open(uri)
			if got := inserted(t, s, "t1", "$a", "$b"); !slices.Equal(got, []string{"$a", "$b"}) {
				t.Fatalf("inserted %v", got)
			}
			_ = s.Close()
			s = open(uri)
			if got := inserted(t, s, "t2", "$a", "$c", "$c"); !slices.Equal(got, []string{"$c"}) {
				t.Errorf("after a restart inserted %v, want [$c]", got)
			}

			store.CollideRecent(s, "$c", "$new")
			if got := inserted(t, s, "t3", "$new"); !slices.Equal(got, []string{"$new"}) {
				t.Errorf("inserted %v, want [$new]: a hash hit is checked against the journal", got)
			}

			evs := events("$p")
			if _, _, err := s.CommitTransaction(ctx, "as", "t4", evs); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordInboxProgress(ctx, evs[0].Seq+1, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Prune(ctx, time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if got := inserted(t, s, "t5", "$p"); !slices.Equal(got, []string{"$p"}) {
				t.Errorf("inserted %v, want [$p]: it was pruned", got)
			}

			small := open(storetest.NewDatabaseURI(t, d))
			store.SetRecentWindow(small, 3)
			ids := make([]string, 5)
			for i := range ids {
				ids[i] = fmt.Sprint("$w", i)
			}
			inserted(t, small, "w1", ids...)
			if n := store.RecentLen(small); n != 3 {
				t.Errorf("window holds %d IDs, want 3", n)
			}
			if got := inserted(t, small, "w2", "$w0", "$w4"); !slices.Equal(got, []string{"$w0"}) {
				t.Errorf("inserted %v, want [$w0]: $w4 is in the window, $w0 left it", got)
			}
		})
	}
}
