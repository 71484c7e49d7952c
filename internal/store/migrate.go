package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// A migration moves the schema from version-1 to version. Migrations are forward-only and
// never edited once released: a change is a new migration appended to migrations.
type migration struct {
	version int
	name    string
	// stmts are run in order, in one transaction with the version row. They are written
	// once for both dialects; the {placeholders} of dialectTypes are replaced first.
	stmts []string
	// only, when set, limits stmts to one dialect; on the other the migration records its
	// version and changes nothing.
	only Dialect
	// run, when set, runs after stmts in the same transaction: a change that SQL alone
	// cannot make.
	run func(ctx context.Context, tx *sql.Tx, d Dialect) error
}

// dialectTypes are the column types that differ between the dialects.
var dialectTypes = map[Dialect]*strings.Replacer{
	SQLite: strings.NewReplacer(
		"{serial_pk}", "INTEGER PRIMARY KEY AUTOINCREMENT",
		"{bigint}", "INTEGER",
		"{blob}", "BLOB",
	),
	Postgres: strings.NewReplacer(
		"{serial_pk}", "BIGSERIAL PRIMARY KEY",
		"{bigint}", "BIGINT",
		"{blob}", "BYTEA",
	),
}

var migrations = []migration{
	{version: 1, name: "initial schema", stmts: []string{
		`CREATE TABLE txn_journal (
			scope       TEXT NOT NULL,
			txn_id      TEXT NOT NULL,
			received_at {bigint} NOT NULL,
			PRIMARY KEY (scope, txn_id)
		)`,
		`CREATE TABLE inbox (
			seq         {serial_pk},
			event_id    TEXT NOT NULL UNIQUE,
			room_id     TEXT NOT NULL DEFAULT '',
			kind        TEXT NOT NULL,
			payload     {blob} NOT NULL,
			state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
			attempts    INTEGER NOT NULL DEFAULT 0,
			last_error  TEXT NOT NULL DEFAULT '',
			received_at {bigint} NOT NULL
		)`,
		`CREATE INDEX inbox_pending ON inbox (seq) WHERE state = 'pending'`,
		`CREATE TABLE outbox (
			seq         {serial_pk},
			module      TEXT NOT NULL,
			remote_id   TEXT NOT NULL,
			room_id     TEXT NOT NULL,
			sender      TEXT NOT NULL,
			event_type  TEXT NOT NULL,
			content     {blob} NOT NULL,
			ts          {bigint} NOT NULL DEFAULT 0,
			txn_id      TEXT NOT NULL,
			event_id    TEXT NOT NULL DEFAULT '',
			attempts    INTEGER NOT NULL DEFAULT 0,
			state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
			last_error  TEXT NOT NULL DEFAULT '',
			created_at  {bigint} NOT NULL,
			UNIQUE (module, remote_id)
		)`,
		`CREATE INDEX outbox_pending ON outbox (seq) WHERE state = 'pending'`,
		`CREATE TABLE message_map (
			module    TEXT NOT NULL,
			remote_id TEXT NOT NULL,
			room_id   TEXT NOT NULL,
			event_id  TEXT NOT NULL,
			PRIMARY KEY (module, remote_id)
		)`,
		`CREATE INDEX message_map_event ON message_map (module, event_id)`,
		`CREATE TABLE portal (
			module     TEXT NOT NULL,
			remote_key TEXT NOT NULL,
			room_id    TEXT NOT NULL,
			PRIMARY KEY (module, remote_key)
		)`,
		`CREATE UNIQUE INDEX portal_room ON portal (room_id)`,
		`CREATE TABLE ghost (
			user_id       TEXT NOT NULL PRIMARY KEY,
			registered_at {bigint} NOT NULL
		)`,
		`CREATE TABLE kv (
			key   TEXT NOT NULL PRIMARY KEY,
			value TEXT NOT NULL
		)`,
	}},
	{version: 2, name: "outbox: the Matrix event a message answers", stmts: []string{
		`ALTER TABLE outbox ADD COLUMN caused_by TEXT NOT NULL DEFAULT ''`,
	}},
	{version: 3, name: "outbox: look up a row by its transaction ID (the echo of a send in doubt)", stmts: []string{
		`CREATE INDEX outbox_txn ON outbox (txn_id)`,
	}},
	// The watermark starts below the lowest pending event (or above the last one). Pending
	// events are then found from it along the primary key, so the partial index of pending
	// rows, one more b-tree written for every event, goes.
	{version: 4, name: "inbox: the handled watermark (every event below it is done or failed)", stmts: []string{
		`CREATE TABLE inbox_progress (
			id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
			done_below  {bigint} NOT NULL
		)`,
		`INSERT INTO inbox_progress (id, done_below) VALUES (1, COALESCE(
			(SELECT MIN(seq) FROM inbox WHERE state = 'pending'),
			(SELECT MAX(seq) + 1 FROM inbox),
			0))`,
		`DROP INDEX inbox_pending`,
	}},
	// On SQLite the unique index of event IDs goes: Matrix event IDs are random, so every
	// new event dirtied another leaf page of that index (one more page written to the WAL
	// and checkpointed per event) and an ingest of 100 events cost five times as much once
	// the journal held half a million. Event IDs are deduplicated against the recent
	// window instead (inbox_recent.go). SQLite cannot drop a UNIQUE constraint, so the table
	// is rebuilt; the AUTOINCREMENT high-water mark is carried over (also when every row was
	// pruned), so that no seq is ever reused below the handled watermark. PostgreSQL keeps
	// its index: there its cost is the server's, and a standby taking over needs no window.
	{version: 5, name: "inbox (SQLite): event IDs deduplicated against the recent window, not a unique index", only: SQLite, stmts: []string{
		`CREATE TABLE inbox_v5 (
			seq         INTEGER PRIMARY KEY AUTOINCREMENT,
			event_id    TEXT NOT NULL,
			room_id     TEXT NOT NULL DEFAULT '',
			kind        TEXT NOT NULL,
			payload     BLOB NOT NULL,
			state       TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
			attempts    INTEGER NOT NULL DEFAULT 0,
			last_error  TEXT NOT NULL DEFAULT '',
			received_at INTEGER NOT NULL
		)`,
		`INSERT INTO inbox_v5 (seq, event_id, room_id, kind, payload, state, attempts, last_error, received_at)
			SELECT seq, event_id, room_id, kind, payload, state, attempts, last_error, received_at FROM inbox ORDER BY seq`,
		`DELETE FROM sqlite_sequence WHERE name = 'inbox_v5'`,
		`INSERT INTO sqlite_sequence (name, seq) SELECT 'inbox_v5', COALESCE(MAX(seq), 0) FROM (
			SELECT seq FROM sqlite_sequence WHERE name = 'inbox'
			UNION ALL SELECT MAX(seq) FROM inbox
			UNION ALL SELECT done_below - 1 FROM inbox_progress) AS hw WHERE seq IS NOT NULL`,
		`DROP TABLE inbox`,
		`ALTER TABLE inbox_v5 RENAME TO inbox`,
	}},
	// PostgreSQL too: its unique index of random event IDs took a third of the time of an
	// ingest (measured: 31,500 against 47,600 events/s). The instance holding the instance
	// lock deduplicates against the recent window; others check under the inbox lock.
	{version: 6, name: "inbox (PostgreSQL): event IDs deduplicated against the recent window, not a unique index", only: Postgres, stmts: []string{
		`ALTER TABLE inbox DROP CONSTRAINT IF EXISTS inbox_event_id_key`,
	}},
	// The inbox as batches, a row per commit (inbox_batch.go); the per-event state that is
	// not "pending" in a table of its own; the next seq in a counter row, which also orders
	// commits on PostgreSQL. migrateInboxBatches moves the journaled events over.
	{version: 7, name: "inbox: a row per commit, per-event state only where it is not pending", stmts: []string{
		`CREATE TABLE inbox_batch (
			first_seq   {bigint} NOT NULL PRIMARY KEY,
			count       INTEGER NOT NULL CHECK (count > 0),
			body        {blob} NOT NULL,
			received_at {bigint} NOT NULL
		)`,
		`CREATE TABLE inbox_state (
			seq         {bigint} NOT NULL PRIMARY KEY,
			state       TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
			attempts    INTEGER NOT NULL DEFAULT 0,
			last_error  TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE TABLE inbox_next (
			id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
			next_seq    {bigint} NOT NULL
		)`,
	}, run: migrateInboxBatches},
	// PostgreSQL: a batch's body is S2 already; pglz trying to compress it again, and
	// moving a 7 KB body (100 events) out of line into the TOAST table, cost the server
	// time on every commit. Bodies that fit a page stay in it, larger ones go out of line
	// uncompressed.
	{version: 8, name: "inbox (PostgreSQL): batch bodies stored as they are", only: Postgres, stmts: []string{
		`ALTER TABLE inbox_batch ALTER COLUMN body SET STORAGE EXTERNAL`,
		`ALTER TABLE inbox_batch SET (toast_tuple_target = 8160)`,
	}},
	// The scanner's verdicts by the SHA-256 of a file (scan.go): a file scanned before a
	// crash is not scanned again when its message is handled again.
	{version: 9, name: "scan verdicts", stmts: []string{
		`CREATE TABLE scan_verdict (
			sha256      TEXT NOT NULL PRIMARY KEY,
			infected    INTEGER NOT NULL CHECK (infected IN (0, 1)),
			signature   TEXT NOT NULL DEFAULT '',
			scanned_at  {bigint} NOT NULL
		)`,
		`CREATE INDEX scan_verdict_scanned_at ON scan_verdict (scanned_at)`,
	}},
	// High availability (leader.go): the leader's epoch, raised by every new leader.
	{version: 10, name: "leader epoch", stmts: []string{
		`CREATE TABLE ha_leader (
			id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
			epoch       {bigint} NOT NULL,
			holder      TEXT NOT NULL,
			since       {bigint} NOT NULL
		)`,
	}},
	// PostgreSQL: writes to the core's state only under the leader's epoch (fence.go).
	{version: 11, name: "epoch fence", only: Postgres, run: fenceMigration},
}

// LatestVersion is the schema version this code migrates to.
func LatestVersion() int { return migrations[len(migrations)-1].version }

// migrate brings the schema to LatestVersion, one transaction per migration. Concurrent
// migrators (two processes starting at once) wait for each other: PostgreSQL through an
// advisory lock, SQLite through its write lock taken at BEGIN.
func (s *Store) migrate(ctx context.Context) error {
	var current int
	err := s.inTx(ctx, lockMigrate, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS switchboard_version (
			version    INTEGER NOT NULL PRIMARY KEY,
			applied_at BIGINT NOT NULL
		)`); err != nil {
			return err
		}
		var err error
		current, err = schemaVersion(ctx, tx)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	if latest := LatestVersion(); current > latest {
		return fmt.Errorf("store: database schema version %d is newer than this Switchboard supports (%d)", current, latest)
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("store: migrate to version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// apply runs m in one transaction unless another process applied it meanwhile.
func (s *Store) apply(ctx context.Context, m migration) error {
	return s.inTx(ctx, lockMigrate, func(tx *sql.Tx) error {
		current, err := schemaVersion(ctx, tx)
		switch {
		case err != nil:
			return err
		case current >= m.version:
			return errRollback // applied by a concurrent migrator
		case current != m.version-1:
			return fmt.Errorf("schema is at version %d", current)
		}
		if s.dialect == Postgres && current >= 10 {
			// A migration may change fenced tables (fence.go): it writes under the current
			// epoch, for this transaction only.
			if _, err := tx.ExecContext(ctx, `SELECT set_config('switchboard.epoch',
				COALESCE((SELECT epoch::text FROM ha_leader WHERE id = 1), ''), true)`); err != nil {
				return err
			}
		}
		types := dialectTypes[s.dialect]
		for _, stmt := range m.stmts {
			if m.only != "" && m.only != s.dialect {
				break
			}
			if _, err := tx.ExecContext(ctx, types.Replace(stmt)); err != nil {
				return err
			}
		}
		if m.run != nil {
			if err := m.run(ctx, tx, s.dialect); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO switchboard_version (version, applied_at) VALUES ($1, $2)`,
			m.version, time.Now().UnixMilli())
		return err
	})
}

// SchemaVersion reports the schema version recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM switchboard_version`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return v, nil
}

func schemaVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var v int
	err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM switchboard_version`).Scan(&v)
	return v, err
}
