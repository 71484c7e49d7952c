// Package store is Switchboard's database layer: embedded SQLite by default, PostgreSQL by
// URI. It holds the transaction journal, the durable inbox of homeserver events, the outbox
// of messages to send to Matrix, and the shared maps from remote ids to Matrix ids. It knows
// nothing of Matrix beyond opaque strings and bytes.
package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrNotFound is returned by lookups that find no row.
var ErrNotFound = errors.New("store: not found")

// Dialect names the SQL database behind a Store.
type Dialect string

// The supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Store is an open database with Switchboard's schema migrated to the latest version.
// It is safe for concurrent use.
//
// Inbox and outbox sequence numbers become visible in increasing order: a reader that
// remembers the last Seq it loaded never misses a row committed later (on PostgreSQL the
// writers of each table are serialized by an advisory lock for this; on SQLite there is a
// single connection).
type Store struct {
	db      *sql.DB // immutable
	dialect Dialect // immutable
	path    string  // immutable; the SQLite file, empty for PostgreSQL

	stmts   stmtCache  // prepared statements of the inbox fast paths
	recent  *recentIDs // the inbox's event-ID deduplication window
	batches batchCache // the inbox batch decoded last

	checkpoints *checkpointer // SQLite: background WAL checkpoints

	// epoch is the leader epoch this process writes under (PostgreSQL, fence.go); 0
	// until it holds the instance lock.
	epoch atomic.Int64

	poolMu sync.Mutex
	pool   *sql.DB // guarded by poolMu; see Pool
}

// Close closes the database.
func (s *Store) Close() error {
	if s.checkpoints != nil {
		s.checkpoints.stop()
	}
	s.stmts.close()
	s.poolMu.Lock()
	defer s.poolMu.Unlock()
	if s.pool != nil {
		_ = s.pool.Close()
		s.pool = nil
	}
	return s.db.Close()
}

// Dialect reports which database this is.
func (s *Store) Dialect() Dialect { return s.dialect }

// Ping checks that the database answers (readiness).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// DB exposes the handle for modules' own tables (each module prefixes its tables with its
// ID) and for tests.
//
// On SQLite the pool holds a single connection: a caller holding a transaction or open
// rows from DB must not call other Store methods until it has released them.
func (s *Store) DB() *sql.DB { return s.db }
