package store_test

import (
	"fmt"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// TestMigrateInboxToBatches: on both dialects the per-event inbox of version 4 moves into
// batches with its events, payloads, states, attempts and errors; the watermark still
// holds; IDs journaled before stay duplicates; and the next seq is above every seq handed
// out before, also those of rows deleted since.
func TestMigrateInboxToBatches(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := t.Context()
			rows := []struct {
				state, lastError string
				attempts         int
			}{
				{"done", "", 0}, {"failed", "no key", 3}, {"pending", "", 0}, {"pending", "timeout", 2}, {"done", "", 1}, {"pending", "", 0},
			}
			var stmts []string
			for i, r := range rows {
				stmts = append(stmts, fmt.Sprintf(`INSERT INTO inbox (event_id, room_id, kind, payload, state, attempts, last_error, received_at)
					VALUES ('$m%d', '!r:x', 'timeline', '{"n":%d}', '%s', %d, '%s', 1000)`, i+1, i+1, r.state, r.attempts, r.lastError))
			}
			// Seq 6 is deleted (pruned, say); the watermark is at 2: seq 1 is done.
			s := migrateFromV4(t, d, append(stmts, `DELETE FROM inbox WHERE seq = 6`, `UPDATE inbox_progress SET done_below = 2`)...)
			recs, err := s.InboxRecords(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			want := []string{
				"1 $m1 done 0 '' {\"n\":1}",
				"2 $m2 failed 3 'no key' {\"n\":2}",
				"3 $m3 pending 0 '' {\"n\":3}",
				"4 $m4 pending 2 'timeout' {\"n\":4}",
				"5 $m5 done 1 '' {\"n\":5}",
			}
			if len(recs) != len(want) {
				t.Fatalf("%d records after the migration, want %d: %+v", len(recs), len(want), recs)
			}
			for i, r := range recs {
				got := fmt.Sprintf("%d %s %s %d '%s' %s", r.Seq, r.EventID, r.State, r.Attempts, r.LastError, r.Payload)
				if got != want[i] {
					t.Errorf("record %d = %s, want %s", i, got, want[i])
				}
			}
			pending, err := s.PendingEvents(ctx, 0, 10)
			if err != nil || len(pending) != 2 || pending[0].Seq != 3 || pending[1].Seq != 4 || pending[1].Attempts != 2 {
				t.Errorf("PendingEvents = %+v, %v; want seqs 3 and 4 (2 attempts)", pending, err)
			}
			if n, err := s.InboxDepth(ctx); err != nil || n != 2 {
				t.Errorf("InboxDepth = %d, %v; want 2", n, err)
			}
			evs := events("$m3", "$m6", "$new")
			if _, _, err := s.CommitTransaction(ctx, "as", "after", evs); err != nil {
				t.Fatal(err)
			}
			if evs[0].Seq != 0 || evs[1].Seq != 7 || evs[2].Seq != 8 {
				t.Errorf("seqs after the migration %d, %d, %d; want 0 ($m3 was journaled), 7, 8 (6 was handed out before)",
					evs[0].Seq, evs[1].Seq, evs[2].Seq)
			}
		})
	}
}

// TestMigrateInboxAllPruned: with every row of the per-event inbox deleted, the next seq
// after the migration is still above every seq handed out before.
func TestMigrateInboxAllPruned(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			ctx := t.Context()
			var stmts []string
			for i := range 3 {
				stmts = append(stmts, fmt.Sprintf(`INSERT INTO inbox (event_id, kind, payload, received_at) VALUES ('$gone%d', 'timeline', '{}', 1)`, i))
			}
			s := migrateFromV4(t, d, append(stmts, `DELETE FROM inbox`)...)
			evs := events("$next")
			if _, _, err := s.CommitTransaction(ctx, "as", "t", evs); err != nil {
				t.Fatal(err)
			}
			if evs[0].Seq != 4 {
				t.Errorf("first seq after the migration %d, want 4", evs[0].Seq)
			}
		})
	}
}

// TestBatchBodyStoredAsIs: on PostgreSQL a batch body is neither compressed again nor moved
// out of line while it fits a page (migration 8).
func TestBatchBodyStoredAsIs(t *testing.T) {
	s := storetest.Open(t, store.Postgres)
	var storage string
	var options []byte
	err := s.DB().QueryRowContext(t.Context(), `SELECT a.attstorage, COALESCE(array_to_string(c.reloptions, ','), '')
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE c.relname = 'inbox_batch' AND a.attname = 'body'`).Scan(&storage, &options)
	if err != nil {
		t.Fatal(err)
	}
	if storage != "e" || string(options) != "toast_tuple_target=8160" {
		t.Errorf("body storage %q, table options %q; want e (external, uncompressed) and toast_tuple_target=8160", storage, options)
	}
}

// migrateFromV4 creates a database of dialect d at schema version 4, runs stmts on it,
// and opens it with the latest schema.
func migrateFromV4(t *testing.T, d store.Dialect, stmts ...string) *store.Store {
	t.Helper()
	ctx := t.Context()
	uri := storetest.NewDatabaseURI(t, d)
	old, err := store.OpenAtVersion(ctx, uri, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := old.DB().ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_ = old.Close()
	s, err := store.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
