package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Keys of the PostgreSQL transaction-level advisory locks that serialize writers. They are
// arbitrary constants ("SB" and a small number) shared by every Switchboard process on the
// same database.
const (
	lockMigrate int64 = 0x5342_0000_0000_0001
	lockInbox   int64 = 0x5342_0000_0000_0002
	lockOutbox  int64 = 0x5342_0000_0000_0003
)

// inTx runs f in a database transaction, committing when f returns nil and rolling back
// otherwise. When lock is not zero and the database is PostgreSQL, the transaction first
// takes that advisory lock (released at commit or rollback); on SQLite every write
// transaction is already exclusive. errRollback from f rolls back and is not an error.
func (s *Store) inTx(ctx context.Context, lock int64, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if lock != 0 && s.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lock); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("lock: %w", err)
		}
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		if errors.Is(err, errRollback) {
			return nil
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// errRollback makes inTx roll back without reporting an error.
var errRollback = errors.New("store: rollback")

// updateOne runs an UPDATE that must match exactly one row; no row is ErrNotFound.
func (s *Store) updateOne(ctx context.Context, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// count runs a query returning one integer.
func (s *Store) count(ctx context.Context, query string, args ...any) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		return 0, err
	}
	return n, nil
}

// notFound maps sql.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// nonNil returns b, or an empty slice when b is nil, for NOT NULL blob columns.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
