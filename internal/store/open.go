package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib" // also registers the "pgx" driver, which tests open
	_ "modernc.org/sqlite"           // registers the "sqlite" driver
)

// sqliteParams are the DSN parameters of every SQLite connection. synchronous=FULL makes
// every commit durable in WAL mode (NORMAL could lose the last transactions on power loss,
// and an acknowledged homeserver transaction must never be lost). _txlock=immediate takes
// the write lock at BEGIN, so that two processes on one file wait for each other (busy
// timeout) instead of failing to upgrade a read lock.
var sqliteParams = url.Values{
	"_pragma": {
		"busy_timeout(10000)",
		"foreign_keys(1)",
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"wal_autocheckpoint(" + strconv.Itoa(checkpointFallbackPages) + ")", // see checkpoint.go
	},
	"_txlock": {"immediate"},
}.Encode()

// Open opens (creating if needed) the database at uri and migrates it. A uri of the form
// "sqlite:PATH" or "file:PATH" or a bare path is embedded SQLite (WAL, foreign keys, busy
// timeout); "postgres://…" or "postgresql://…" is PostgreSQL. The SQLite database and its
// "-wal" and "-shm" files are readable by their owner only (mode 0600; wider modes of
// existing files are narrowed with a warning): they hold message bodies.
func Open(ctx context.Context, uri string) (*Store, error) {
	dialect, target, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	s := &Store{dialect: dialect}
	switch dialect {
	case SQLite:
		if err := protectSQLiteFiles(ctx, target); err != nil {
			return nil, err
		}
		db, err := sql.Open("sqlite", target+"?"+sqliteParams)
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite database %s: %w", target, err)
		}
		// One connection: SQLite has a single writer anyway, and a pool of one turns
		// SQLITE_BUSY between our own connections into waiting in database/sql.
		db.SetMaxOpenConns(1)
		s.db, s.path = db, target
	case Postgres:
		// target is the URI itself; it may hold a password, so it never goes into errors.
		cfg, err := pgx.ParseConfig(target)
		if err != nil {
			return nil, errors.New("store: invalid postgres database URI")
		}
		// Every connection writes under this process's leader epoch (fence.go).
		s.db = stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(s.syncEpoch), stdlib.OptionResetSession(s.syncEpoch))
	}
	return s.open(ctx)
}

// open connects, migrates and loads what the store keeps in memory.
func (s *Store) open(ctx context.Context) (*Store, error) {
	db, dialect, target := s.db, s.dialect, s.path
	var err error
	if err = db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to %s database: %w", dialect, err)
	}
	if err = s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	s.recent = newRecentIDs() // PostgreSQL: loaded by LockInstance or per commit
	if dialect == SQLite {
		if err = s.loadRecent(ctx); err != nil {
			db.Close()
			return nil, err
		}
		if s.checkpoints, err = startCheckpointer(ctx, target); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// parseURI splits uri into its dialect and what the driver opens: a file path for SQLite,
// the URI itself for PostgreSQL.
func parseURI(uri string) (Dialect, string, error) {
	if uri == "" {
		return "", "", errors.New("store: empty database URI")
	}
	scheme, rest, hasScheme := strings.Cut(uri, ":")
	if !hasScheme || !isScheme(scheme) {
		return sqlitePath(uri)
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if !strings.HasPrefix(rest, "//") {
			return "", "", fmt.Errorf("store: %s database URI must start with %s://", scheme, scheme)
		}
		return Postgres, uri, nil
	case "sqlite", "file":
		// "sqlite:///abs/path" and "sqlite://rel/path" are accepted as well.
		return sqlitePath(strings.TrimPrefix(rest, "//"))
	}
	if strings.HasPrefix(rest, "//") {
		// Only the scheme: the rest of the URI may carry a password.
		return "", "", fmt.Errorf("store: unsupported database URI scheme %q", scheme)
	}
	// A colon without "//" is part of a file name ("./db:1", "C:\db").
	return sqlitePath(uri)
}

func sqlitePath(path string) (Dialect, string, error) {
	switch {
	case path == "":
		return "", "", errors.New("store: empty sqlite database path")
	case strings.ContainsAny(path, "?#"):
		return "", "", fmt.Errorf("store: sqlite database path %q must not contain '?' or '#'", path)
	}
	return SQLite, path, nil
}

// isScheme reports whether s is a URI scheme: a letter, then letters, digits, '+', '-', '.'.
// A single letter is a Windows drive, not a scheme.
func isScheme(s string) bool {
	if len(s) < 2 {
		return false
	}
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// poolConns bounds the connections of the SQLite pool that Pool returns.
const poolConns = 4

// Pool returns a database handle with several connections for code that manages its own
// tables and locking and must not share the core's single SQLite connection (mautrix-go's
// crypto store: it holds a query open while it waits for its own locks, which another of
// its calls holds while it waits for a connection — with one connection, forever). On
// SQLite it is a second handle to the same file with the same parameters (WAL: readers do
// not wait for the writer; writers wait for each other up to the busy timeout); on
// PostgreSQL it is the store's own pool. It is closed with the store.
func (s *Store) Pool() (*sql.DB, error) {
	if s.dialect != SQLite {
		return s.db, nil
	}
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	if s.pool == nil {
		db, err := sql.Open("sqlite", s.path+"?"+sqliteParams)
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite pool %s: %w", s.path, err)
		}
		db.SetMaxOpenConns(poolConns)
		s.pool = db
	}
	return s.pool, nil
}
