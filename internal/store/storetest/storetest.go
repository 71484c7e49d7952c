// Package storetest opens throw-away Switchboard databases for tests: a SQLite file in the
// test's temporary directory, or a fresh PostgreSQL database (dropped when the test ends) on
// the server named by the SWITCHBOARD_TEST_POSTGRES environment variable, for example
//
//	SWITCHBOARD_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
//
// PostgreSQL tests are skipped when the variable is unset.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// PostgresEnv names the environment variable holding the URI of a PostgreSQL server (any
// database on it) where tests may create and drop databases.
const PostgresEnv = "SWITCHBOARD_TEST_POSTGRES"

// Open returns a migrated Store on a fresh database of dialect, closed (and for PostgreSQL
// dropped) when t ends.
func Open(t testing.TB, dialect store.Dialect) *store.Store {
	t.Helper()
	uri := NewDatabaseURI(t, dialect)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, uri)
	if err != nil {
		t.Fatalf("storetest: open %s store: %v", dialect, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("storetest: close %s store: %v", dialect, err)
		}
	})
	return s
}

// Dialects runs f as the subtests "sqlite" and "postgres", each on its own fresh Store.
func Dialects(t *testing.T, f func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			f(t, Open(t, d))
		})
	}
}

// NewDatabaseURI returns the URI of a fresh, empty database of dialect, for tests that open
// it themselves (for example in a separate process): a SQLite file in t.TempDir(), or a new
// PostgreSQL database dropped (with any connections still open) when t ends. It skips t for
// PostgreSQL when SWITCHBOARD_TEST_POSTGRES is unset.
func NewDatabaseURI(t testing.TB, dialect store.Dialect) string {
	t.Helper()
	switch dialect {
	case store.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "switchboard.db")
	case store.Postgres:
		return newPostgresDatabase(t)
	}
	t.Fatalf("storetest: unknown dialect %q", dialect)
	return ""
}

func newPostgresDatabase(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(PostgresEnv)
	if admin == "" {
		t.Skipf("storetest: %s is not set; set it to a PostgreSQL URI (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) to run PostgreSQL tests", PostgresEnv)
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// The URI may hold a password: it is not printed.
		t.Fatalf("storetest: %s is not a postgres:// URI", PostgresEnv)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "sbtest_" + hex.EncodeToString(b[:])
	// name is a letter-and-hex identifier: safe to splice into SQL.
	adminExec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() { adminExec(t, admin, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u.Path = "/" + name
	return u.String()
}

// adminExec runs one statement on the admin database with its own short-lived connection.
func adminExec(t testing.TB, uri, stmt string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", uri)
	if err != nil {
		t.Fatalf("storetest: connect to test postgres server: %v", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Fatalf("storetest: %s: %v", stmt, err)
	}
}
