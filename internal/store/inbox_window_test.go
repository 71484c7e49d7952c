package store_test

import (
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
// the lock checks under the inbox lock; after a commit of unknown outcome the instance
// loads what was committed before it trusts its window again; once the lock is given back
// it checks under the inbox lock again.
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
			if got := inserted(t, other, "t3", "$b", "$c"); len(got) != 1 || got[0] != "$c" {
				t.Errorf("writer without the lock inserted %v, want [$c]", got)
			}
			store.MarkRecentStale(owner)
			if got := inserted(t, owner, "t4", "$c", "$d"); len(got) != 1 || got[0] != "$d" {
				t.Errorf("owner after an unknown outcome inserted %v, want [$d]", got)
			}
			release()
			if got := inserted(t, other, "t5", "$e"); len(got) != 1 {
				t.Fatalf("inserted %v", got)
			}
			if got := inserted(t, owner, "t6", "$e", "$f"); len(got) != 1 || got[0] != "$f" {
				t.Errorf("former owner inserted %v, want [$f]", got)
			}
		})
	}
}
