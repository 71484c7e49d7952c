package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// High availability on PostgreSQL: any number of Switchboard processes share a database;
// the one holding the instance lock (a session advisory lock, see instance.go) leads and
// does all the work, the others wait for the lock as standbys. PostgreSQL releases the lock
// when the leader's session ends (its process died, its connection was cut), and a standby
// takes it.
//
// Fencing. A leader must stop before a standby starts. The leader checks its lock session
// every CheckInterval (a query with CheckTimeout); Leadership.Valid is true only until
// CheckInterval+CheckTimeout after the last check that succeeded, measured on the
// monotonic clock, so a leader that was paused, or whose session is gone, stops
// acting on its own at once, and Lost closes when a check fails (the daemon then exits).
// A new leader waits a fence delay longer than that before it acts. Every leader raises
// the epoch in ha_leader, so its writes can be told from an older leader's.

// LeaderOptions tune AcquireLeadership; zero values mean the defaults.
type LeaderOptions struct {
	// Holder names the process in ha_leader (host and pid, say).
	Holder string
	// CheckInterval is how often the leader checks its lock session; default 1s.
	CheckInterval time.Duration
	// CheckTimeout bounds one check; default 1s.
	CheckTimeout time.Duration
	// Poll is how often a standby tries the lock; default 500ms.
	Poll time.Duration
}

func (o *LeaderOptions) defaults() {
	if o.CheckInterval <= 0 {
		o.CheckInterval = time.Second
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
}

// Lease is how long after its last good check a leader may act: CheckInterval +
// CheckTimeout. A new leader's fence delay must be longer.
func (o LeaderOptions) Lease() time.Duration {
	o.defaults()
	return o.CheckInterval + o.CheckTimeout
}

// ErrNoLeadership is returned by AcquireLeadership on SQLite.
var ErrNoLeadership = errors.New("store: high availability needs PostgreSQL")

// Leadership is this process's lead over the database.
type Leadership struct {
	// Epoch is this leadership's number: one more than the previous leader's.
	Epoch int64

	conn    *sql.Conn
	store   *Store
	opts    LeaderOptions
	start   time.Time    // monotonic base of validTo
	validTo atomic.Int64 // nanoseconds since start until which the lease holds
	lost    chan struct{}
	once    sync.Once
	stop    context.CancelFunc
	done    chan struct{}
}

// AcquireLeadership waits until this process holds the instance lock, raises the epoch
// and returns the leadership, checked in the background until Release. It returns when
// ctx ends first.
func (s *Store) AcquireLeadership(ctx context.Context, o LeaderOptions) (*Leadership, error) {
	if s.dialect != Postgres {
		return nil, ErrNoLeadership
	}
	o.defaults()
	conn, err := s.lockSession(ctx, o)
	if err != nil {
		return nil, err
	}
	l := &Leadership{conn: conn, store: s, opts: o, start: time.Now(), lost: make(chan struct{}), done: make(chan struct{})}
	l.renew()
	fail := func(err error) (*Leadership, error) {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(instanceLockKey))
		conn.Close()
		return nil, err
	}
	if l.Epoch, err = s.raiseEpoch(ctx, o.Holder, time.Now().UnixMilli()); err != nil {
		return fail(err)
	}
	if err := s.own(ctx); err != nil {
		return fail(err)
	}
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.stop = cancel
	go l.check(cctx)
	return l, nil
}

// lockSession opens a connection and polls the instance lock on it until it has it.
func (s *Store) lockSession(ctx context.Context, o LeaderOptions) (*sql.Conn, error) {
	for {
		conn, err := s.db.Conn(ctx)
		if err == nil {
			// A cut connection must end the session soon on the server's side too, so that
			// a standby can take over (PostgreSQL's default is the kernel's: two hours).
			_, err = conn.ExecContext(ctx, `SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3`)
		}
		for err == nil {
			var ok bool
			if err = conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, int64(instanceLockKey)).Scan(&ok); err == nil && ok {
				return conn, nil
			}
			if err == nil {
				select {
				case <-ctx.Done():
					err = ctx.Err()
				case <-time.After(o.Poll):
				}
			}
		}
		if conn != nil {
			conn.Close()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		select { // the database is away: try again
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}

// renew extends the lease from now.
func (l *Leadership) renew() {
	l.validTo.Store(int64(time.Since(l.start) + l.opts.CheckInterval + l.opts.CheckTimeout))
}

// Valid reports whether this process may still act as the leader: its last check of the
// lock session succeeded less than the lease ago (monotonic clock), and none has failed.
func (l *Leadership) Valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	return int64(time.Since(l.start)) < l.validTo.Load()
}

// Lost is closed when a check of the lock session fails: the lock may be gone, and
// another process may lead soon.
func (l *Leadership) Lost() <-chan struct{} { return l.lost }

// check checks the lock session every CheckInterval until ctx ends or a check fails.
func (l *Leadership) check(ctx context.Context) {
	defer close(l.done)
	t := time.NewTicker(l.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, l.opts.CheckTimeout)
		// The lock lives as long as its session: a session that answers still holds it.
		_, err := l.conn.ExecContext(cctx, `SELECT 1`)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.once.Do(func() { close(l.lost) })
			return
		}
		l.renew()
	}
}

// Release gives up the lead: the checks stop and the lock is released.
func (l *Leadership) Release() {
	l.stop()
	<-l.done
	l.once.Do(func() { close(l.lost) })
	l.store.disown()
	_, _ = l.conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(instanceLockKey))
	l.conn.Close()
}
