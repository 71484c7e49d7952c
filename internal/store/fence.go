package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The epoch fence (PostgreSQL). Every process that takes the instance lock, the leader of
// a high-availability group (leader.go) or a single instance (instance.go), raises the
// epoch in ha_leader and from then on writes under it: each of its connections carries
// it as the setting switchboard.epoch. A trigger on every table of the core's state
// (migration 11) refuses a write whose session carries another epoch than ha_leader's:
// once a new process took the lock and raised the epoch, an old one that still runs (a
// paused or partitioned leader that has not noticed yet) cannot change the journal, the
// outbox, the maps or the modules' keys any more: its write fails (IsFenced).
//
// The trigger reads ha_leader without locking it: a transaction of the old leader that
// read the epoch just before the new leader raised it may still commit. Such a
// transaction ran when the old leader's lock session ended; the new leader acts only
// after its fence delay, which is much longer than a transaction.

// fencedTables are the tables of the core's state that the fence guards.
var fencedTables = []string{"txn_journal", "inbox_batch", "inbox_state", "inbox_next", "inbox_progress",
	"outbox", "message_map", "portal", "ghost", "kv", "scan_verdict"}

// fenceMigration creates the trigger function and the triggers (migration 11).
func fenceMigration(ctx context.Context, tx *sql.Tx, d Dialect) error {
	if d != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `CREATE FUNCTION switchboard_fence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	leader BIGINT;
	mine TEXT;
BEGIN
	SELECT epoch INTO leader FROM ha_leader WHERE id = 1;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	mine := current_setting('switchboard.epoch', true);
	IF mine IS NULL OR mine = '' OR mine::bigint <> leader THEN
		RAISE EXCEPTION 'switchboard fenced: epoch % writes, epoch % leads', coalesce(nullif(mine, ''), 'none'), leader;
	END IF;
	RETURN NULL;
END
$$`); err != nil {
		return err
	}
	for _, t := range fencedTables {
		if _, err := tx.ExecContext(ctx, `CREATE TRIGGER switchboard_fence BEFORE INSERT OR UPDATE OR DELETE ON `+t+
			` FOR EACH STATEMENT EXECUTE FUNCTION switchboard_fence()`); err != nil {
			return fmt.Errorf("trigger on %s: %w", t, err)
		}
	}
	return nil
}

// raiseEpoch makes this process the writer of the next epoch (it holds the instance
// lock) and returns it.
func (s *Store) raiseEpoch(ctx context.Context, holder string, nowMillis int64) (int64, error) {
	var epoch int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO ha_leader (id, epoch, holder, since) VALUES (1, 1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET epoch = ha_leader.epoch + 1, holder = excluded.holder, since = excluded.since
		RETURNING epoch`, holder, nowMillis).Scan(&epoch)
	if err != nil {
		return 0, fmt.Errorf("store: raise the leader epoch: %w", err)
	}
	s.epoch.Store(epoch)
	return epoch, nil
}

// syncEpoch gives a connection the process's epoch before it is used (pgx's AfterConnect
// and ResetSession): once per connection and epoch.
func (s *Store) syncEpoch(ctx context.Context, conn *pgx.Conn) error {
	epoch := s.epoch.Load()
	data := conn.PgConn().CustomData()
	if epoch == 0 || data["switchboard.epoch"] == epoch {
		return nil
	}
	if _, err := conn.Exec(ctx, `SELECT set_config('switchboard.epoch', $1, false)`, strconv.FormatInt(epoch, 10)); err != nil {
		return err
	}
	data["switchboard.epoch"] = epoch
	return nil
}

// IsFenced reports whether err is the fence's refusal of a write: another process leads
// now, under a newer epoch.
func IsFenced(err error) bool {
	return err != nil && strings.Contains(err.Error(), "switchboard fenced:")
}
