package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// ErrInstanceRunning is returned by LockInstance when another process holds the lock.
var ErrInstanceRunning = errors.New("store: another Switchboard instance is using this database")

// instanceLockKey is the PostgreSQL advisory lock that marks the running instance
// ("switchboard" in ASCII, as a number).
const instanceLockKey = 0x7377697463686264

// LockInstance makes sure that only one Switchboard process works on this database: two
// would dispatch the same journaled events and send the same outbox rows at once. SQLite
// takes an exclusive lock on "PATH.lock", PostgreSQL a session advisory lock on a dedicated
// connection; the operating system or the server releases either when the process dies, so
// a restart after kill -9 finds it free (LockInstance waits up to wait for a lock held by a
// process that is just going away). release gives the lock back.
func (s *Store) LockInstance(ctx context.Context, wait time.Duration) (release func(), err error) {
	deadline := time.Now().Add(wait)
	for {
		release, err = s.tryLockInstance(ctx)
		if err == nil && s.dialect == Postgres {
			host, _ := os.Hostname()
			if _, err := s.raiseEpoch(ctx, fmt.Sprintf("%s:%d", host, os.Getpid()), time.Now().UnixMilli()); err != nil {
				release()
				return nil, err
			}
			return s.ownWhileLocked(ctx, release)
		}
		if !errors.Is(err, ErrInstanceRunning) || time.Now().After(deadline) {
			return release, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Store) tryLockInstance(ctx context.Context) (func(), error) {
	if s.dialect == SQLite {
		f, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store: instance lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, ErrInstanceRunning
			}
			return nil, fmt.Errorf("store: instance lock: %w", err)
		}
		return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: instance lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, int64(instanceLockKey)).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: instance lock: %w", err)
	}
	if !ok {
		conn.Close()
		return nil, ErrInstanceRunning
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(instanceLockKey))
		conn.Close()
	}, nil
}

// ownWhileLocked lets the PostgreSQL inbox deduplicate against its window without asking
// the database while the instance lock taken with release is held (inbox_postgres.go).
func (s *Store) ownWhileLocked(ctx context.Context, release func()) (func(), error) {
	if err := s.own(ctx); err != nil {
		release()
		return nil, err
	}
	return func() {
		s.disown()
		release()
	}, nil
}
