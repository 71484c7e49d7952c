package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

func TestOpenURI(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name        string
		uri         string
		wantDialect store.Dialect
		wantFile    string // for SQLite: the file that must exist afterwards
		wantErr     string // substring of the error
		notInErr    string // a secret that must not appear in the error
	}{
		{name: "sqlite scheme", uri: "sqlite:" + filepath.Join(dir, "a.db"), wantDialect: store.SQLite, wantFile: "a.db"},
		{name: "sqlite scheme with slashes", uri: "sqlite://" + filepath.Join(dir, "b.db"), wantDialect: store.SQLite, wantFile: "b.db"},
		{name: "file scheme", uri: "file:" + filepath.Join(dir, "c.db"), wantDialect: store.SQLite, wantFile: "c.db"},
		{name: "bare path", uri: filepath.Join(dir, "d.db"), wantDialect: store.SQLite, wantFile: "d.db"},
		{name: "bare path with a colon", uri: filepath.Join(dir, "e:1.db"), wantDialect: store.SQLite, wantFile: "e:1.db"},
		{name: "empty", uri: "", wantErr: "empty database URI"},
		{name: "empty sqlite path", uri: "sqlite:", wantErr: "empty sqlite database path"},
		{name: "query in sqlite path", uri: "sqlite:" + filepath.Join(dir, "f.db?mode=ro"), wantErr: "must not contain"},
		{
			name: "unknown scheme names the scheme only", uri: "mysql://root:hunter2@db.example/switchboard",
			wantErr: `unsupported database URI scheme "mysql"`, notInErr: "hunter2",
		},
		{
			name: "unreachable postgres hides the password", uri: "postgres://sb:hunter2@127.0.0.1:1/switchboard?connect_timeout=2",
			wantErr: "store: connect to postgres database", notInErr: "hunter2",
		},
		{name: "postgres without slashes", uri: "postgres:switchboard", wantErr: "must start with postgres://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			s, err := store.Open(ctx, tc.uri)
			if tc.wantErr != "" {
				if err == nil {
					s.Close()
					t.Fatalf("Open(%q) succeeded, want error %q", tc.uri, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Open error = %q, want it to contain %q", err, tc.wantErr)
				}
				if tc.notInErr != "" && strings.Contains(err.Error(), tc.notInErr) {
					t.Errorf("Open error %q reveals %q", err, tc.notInErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.uri, err)
			}
			defer s.Close()
			if s.Dialect() != tc.wantDialect {
				t.Errorf("Dialect = %s, want %s", s.Dialect(), tc.wantDialect)
			}
			if err := s.Ping(ctx); err != nil {
				t.Errorf("Ping: %v", err)
			}
			if tc.wantFile != "" {
				if matches, _ := filepath.Glob(filepath.Join(dir, tc.wantFile)); len(matches) != 1 {
					t.Errorf("database file %s was not created", tc.wantFile)
				}
			}
		})
	}
}

func TestSQLitePragmas(t *testing.T) {
	s := storetest.Open(t, store.SQLite)
	tests := []struct {
		pragma, want string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	}
	for _, tc := range tests {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := s.DB().QueryRowContext(t.Context(), "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
			}
		})
	}
}

// TestReopen closes a database and opens it again, as a restart does: everything persists
// and the migrations do not run again.
func TestReopen(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			uri := storetest.NewDatabaseURI(t, d)
			ctx := t.Context()
			s, err := store.Open(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.CommitTransaction(ctx, "as", "t1", events("$a", "$b")); err != nil {
				t.Fatal(err)
			}
			msg, _, err := s.EnqueueOutbox(ctx, message("xmpp", "m1"))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.PutKV(ctx, "core/k", "v"); err != nil {
				t.Fatal(err)
			}
			applied := versionRows(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s, err = store.Open(ctx, uri)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer s.Close()
			if v, err := s.SchemaVersion(ctx); err != nil || v != store.LatestVersion() {
				t.Errorf("SchemaVersion = %d, %v; want %d", v, err, store.LatestVersion())
			}
			if got := versionRows(t, s); got != applied {
				t.Errorf("migrations ran again: version rows %q, before %q", got, applied)
			}
			if dup, _, err := s.CommitTransaction(ctx, "as", "t1", events("$a")); err != nil || !dup {
				t.Errorf("recommit after reopen = duplicate %v, %v; want true", dup, err)
			}
			if got := pendingIDs(t, s); len(got) != 2 || got[0] != "$a" || got[1] != "$b" {
				t.Errorf("pending after reopen = %v, want [$a $b]", got)
			}
			if got, err := s.GetOutbox(ctx, "xmpp", "m1"); err != nil || got.Seq != msg.Seq || got.TxnID != msg.TxnID {
				t.Errorf("outbox after reopen = %+v, %v; want %+v", got, err, msg)
			}
			if v, err := s.GetKV(ctx, "core/k"); err != nil || v != "v" {
				t.Errorf("GetKV after reopen = %q, %v", v, err)
			}
		})
	}
}

// versionRows describes the rows of the version table, applied_at included.
func versionRows(t *testing.T, s *store.Store) string {
	t.Helper()
	rows, err := s.DB().QueryContext(t.Context(), `SELECT version, applied_at FROM switchboard_version ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	n := 0
	for rows.Next() {
		var v, at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		n++
		fmt.Fprintf(&b, "%d@%d ", v, at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != store.LatestVersion() {
		t.Fatalf("%d version rows, want %d", n, store.LatestVersion())
	}
	return b.String()
}

func TestNewerSchemaIsRefused(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			uri := storetest.NewDatabaseURI(t, d)
			ctx := t.Context()
			s, err := store.Open(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			future := store.LatestVersion() + 1
			_, err = s.DB().ExecContext(ctx, `INSERT INTO switchboard_version (version, applied_at) VALUES ($1, 0)`, future)
			if cerr := s.Close(); err != nil || cerr != nil {
				t.Fatal(err, cerr)
			}
			s, err = store.Open(ctx, uri)
			if err == nil {
				s.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "newer") {
				t.Errorf("Open of a newer schema = %v, want an error saying it is newer", err)
			}
		})
	}
}
