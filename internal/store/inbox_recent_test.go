package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func openSQLite(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func recentEvents(ids ...string) []InboxEvent {
	evs := make([]InboxEvent, len(ids))
	for i, id := range ids {
		evs[i] = InboxEvent{EventID: id, RoomID: "!r:example.org", Kind: "timeline", Payload: []byte(`{}`)}
	}
	return evs
}

// commitIDs commits ids as transaction txn and returns the IDs inserted.
func commitIDs(t *testing.T, s *Store, txn string, ids ...string) []string {
	t.Helper()
	evs := recentEvents(ids...)
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

func sameIDs(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestRecentWindow: on SQLite an event ID is a duplicate while it is in the window: across a
// restart, after another writer of the same file committed it, and not when only its hash
// matches; an ID that left the window, or whose row was pruned, is new again.
func TestRecentWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sb.db")
	t.Run("restart", func(t *testing.T) {
		s := openSQLite(t, path)
		if got := commitIDs(t, s, "t1", "$a", "$b"); !sameIDs(got, []string{"$a", "$b"}) {
			t.Fatalf("inserted %v", got)
		}
		_ = s.Close()
		s = openSQLite(t, path)
		if got := commitIDs(t, s, "t2", "$a", "$c", "$c"); !sameIDs(got, []string{"$c"}) {
			t.Errorf("after a restart inserted %v, want [$c]", got)
		}
	})
	t.Run("other writer", func(t *testing.T) {
		s1, s2 := openSQLite(t, path), openSQLite(t, path)
		if got := commitIDs(t, s1, "o1", "$x"); !sameIDs(got, []string{"$x"}) {
			t.Fatalf("inserted %v", got)
		}
		if got := commitIDs(t, s2, "o2", "$x", "$y"); !sameIDs(got, []string{"$y"}) {
			t.Errorf("second writer inserted %v, want [$y]", got)
		}
		if got := commitIDs(t, s1, "o3", "$y"); len(got) != 0 {
			t.Errorf("first writer inserted %v, want nothing", got)
		}
	})
	t.Run("hash collision", func(t *testing.T) {
		s := openSQLite(t, path)
		commitIDs(t, s, "c1", "$old")
		r := s.recent
		r.mu.Lock()
		r.seqs[r.hash("$new")] = r.seqs[r.hash("$old")] // as if the two IDs hashed alike
		r.mu.Unlock()
		if got := commitIDs(t, s, "c2", "$new"); !sameIDs(got, []string{"$new"}) {
			t.Errorf("inserted %v, want [$new]: a hash hit is checked against the journal", got)
		}
	})
	t.Run("window bound", func(t *testing.T) {
		s := openSQLite(t, filepath.Join(t.TempDir(), "small.db"))
		s.recent.size = 3
		commitIDs(t, s, "w1", "$w0", "$w1", "$w2", "$w3", "$w4")
		if n := len(s.recent.seqs); n != 3 {
			t.Errorf("window holds %d IDs, want 3", n)
		}
		if got := commitIDs(t, s, "w2", "$w0", "$w4"); !sameIDs(got, []string{"$w0"}) {
			t.Errorf("inserted %v, want [$w0]: $w4 is in the window, $w0 left it", got)
		}
	})
	t.Run("pruned", func(t *testing.T) {
		s := openSQLite(t, filepath.Join(t.TempDir(), "pruned.db"))
		evs := recentEvents("$p")
		if _, _, err := s.CommitTransaction(t.Context(), "as", "p1", evs); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordInboxProgress(t.Context(), evs[0].Seq+1, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Prune(t.Context(), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := commitIDs(t, s, "p2", "$p"); !sameIDs(got, []string{"$p"}) {
			t.Errorf("inserted %v, want [$p]: its row was pruned", got)
		}
	})
}

// TestMigrateInbox: the per-event SQLite inbox of version 4, rebuilt without its unique
// index (5) and moved into batches (7), keeps its events and states, and never hands out
// a seq again, even when every row had been pruned.
func TestMigrateInbox(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prune  bool
		wantAt int64 // the first seq after the migration
	}{
		{name: "rows kept", wantAt: 6},
		{name: "all pruned", prune: true, wantAt: 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "v4.db")
			openV4(t, path, func(db *sql.DB) {
				for i := 1; i <= 5; i++ {
					state := "done"
					if i == 5 {
						state = "pending"
					}
					if _, err := db.Exec(`INSERT INTO inbox (event_id, kind, payload, state, attempts, received_at) VALUES (?, 'timeline', '{}', ?, ?, 1)`,
						fmt.Sprintf("$v%d", i), state, i); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := db.Exec(`UPDATE inbox_progress SET done_below = 5`); err != nil {
					t.Fatal(err)
				}
				if tc.prune {
					if _, err := db.Exec(`DELETE FROM inbox`); err != nil {
						t.Fatal(err)
					}
				}
			})
			s := openSQLite(t, path)
			if v, err := s.SchemaVersion(t.Context()); err != nil || v != LatestVersion() {
				t.Fatalf("SchemaVersion = %d, %v", v, err)
			}
			var old int
			if err := s.db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'inbox'`).Scan(&old); err != nil || old != 0 {
				t.Errorf("the per-event inbox table is still there (%v)", err)
			}
			if !tc.prune {
				pending, err := s.PendingEvents(t.Context(), 0, 10)
				if err != nil || len(pending) != 1 || pending[0].EventID != "$v5" || pending[0].Attempts != 5 {
					t.Errorf("PendingEvents = %+v, %v; want $v5 with 5 attempts", pending, err)
				}
				if got := commitIDs(t, s, "n0", "$v3", "$v5"); len(got) != 0 {
					t.Errorf("inserted %v, want nothing: both were journaled before the migration", got)
				}
			}
			evs := recentEvents("$new")
			if _, _, err := s.CommitTransaction(t.Context(), "as", "n1", evs); err != nil {
				t.Fatal(err)
			}
			if evs[0].Seq != tc.wantAt {
				t.Errorf("first seq after the migration %d, want %d", evs[0].Seq, tc.wantAt)
			}
		})
	}
}

// openV4 creates a SQLite database at schema version 4 and lets fill write to it.
func openV4(t *testing.T, path string, fill func(db *sql.DB)) {
	t.Helper()
	saved := migrations
	migrations = migrations[:4]
	defer func() { migrations = saved }()
	db, err := sql.Open("sqlite", path+"?"+sqliteParams)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	defer db.Close()
	s := &Store{db: db, dialect: SQLite, path: path}
	if err := s.migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SchemaVersion(t.Context()); v != 4 {
		t.Fatalf("schema version %d, want 4", v)
	}
	fill(s.db)
}
