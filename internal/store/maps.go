package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"
)

// PutMessage maps a remote message id to a Matrix event (idempotent: an existing mapping is
// left as it is).
func (s *Store) PutMessage(ctx context.Context, module, remoteID, roomID, eventID string) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO message_map (module, remote_id, room_id, event_id) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (module, remote_id) DO NOTHING`, module, remoteID, roomID, eventID)
	if err != nil {
		return fmt.Errorf("store: map message %s/%s: %w", module, remoteID, err)
	}
	return nil
}

// MessageByRemote returns the room and event of a remote message, or ErrNotFound.
func (s *Store) MessageByRemote(ctx context.Context, module, remoteID string) (roomID, eventID string, err error) {
	err = s.db.QueryRowContext(ctx,
		`SELECT room_id, event_id FROM message_map WHERE module = $1 AND remote_id = $2`,
		module, remoteID).Scan(&roomID, &eventID)
	if err != nil {
		return "", "", fmt.Errorf("store: message %s/%s: %w", module, remoteID, notFound(err))
	}
	return roomID, eventID, nil
}

// MessageByEvent returns the remote id of a Matrix event, or ErrNotFound. When several
// remote messages map to the event, the smallest remote id is returned.
func (s *Store) MessageByEvent(ctx context.Context, module, eventID string) (remoteID string, err error) {
	err = s.db.QueryRowContext(ctx,
		`SELECT remote_id FROM message_map WHERE module = $1 AND event_id = $2 ORDER BY remote_id LIMIT 1`,
		module, eventID).Scan(&remoteID)
	if err != nil {
		return "", fmt.Errorf("store: message of event %s in %s: %w", eventID, module, notFound(err))
	}
	return remoteID, nil
}

// PutPortal maps a module's remote chat key to a Matrix room (idempotent upsert). A room
// belongs to one portal only: mapping a room already used by another key fails.
func (s *Store) PutPortal(ctx context.Context, module, remoteKey, roomID string) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO portal (module, remote_key, room_id) VALUES ($1, $2, $3)
		 ON CONFLICT (module, remote_key) DO UPDATE SET room_id = excluded.room_id`,
		module, remoteKey, roomID)
	if err != nil {
		return fmt.Errorf("store: put portal %s/%s: %w", module, remoteKey, err)
	}
	return nil
}

// ClaimPortal maps a module's remote chat key to a Matrix room like PutPortal, taking the
// room over from any other portal it belonged to (such as a management bot's command
// room that is being linked to a remote chat), in one transaction.
func (s *Store) ClaimPortal(ctx context.Context, module, remoteKey, roomID string) error {
	err := s.inTx(ctx, 0, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM portal WHERE room_id = $1`, roomID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO portal (module, remote_key, room_id) VALUES ($1, $2, $3)
			 ON CONFLICT (module, remote_key) DO UPDATE SET room_id = excluded.room_id`,
			module, remoteKey, roomID)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: claim portal %s/%s: %w", module, remoteKey, err)
	}
	return nil
}

// DeletePortal removes a module's portal and returns the room it mapped to, or ErrNotFound
// when the module has no portal by that key. The message map and the room are left alone.
func (s *Store) DeletePortal(ctx context.Context, module, remoteKey string) (roomID string, err error) {
	err = s.inTx(ctx, 0, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`SELECT room_id FROM portal WHERE module = $1 AND remote_key = $2`, module, remoteKey).Scan(&roomID)
		if err != nil {
			return notFound(err)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM portal WHERE module = $1 AND remote_key = $2`, module, remoteKey)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store: delete portal %s/%s: %w", module, remoteKey, err)
	}
	return roomID, nil
}

// PortalByKey returns the room of a remote chat, or ErrNotFound.
func (s *Store) PortalByKey(ctx context.Context, module, remoteKey string) (roomID string, err error) {
	err = s.db.QueryRowContext(ctx,
		`SELECT room_id FROM portal WHERE module = $1 AND remote_key = $2`, module, remoteKey).Scan(&roomID)
	if err != nil {
		return "", fmt.Errorf("store: portal %s/%s: %w", module, remoteKey, notFound(err))
	}
	return roomID, nil
}

// PortalByRoom returns the module and remote key of a room, or ErrNotFound.
func (s *Store) PortalByRoom(ctx context.Context, roomID string) (module, remoteKey string, err error) {
	err = s.db.QueryRowContext(ctx,
		`SELECT module, remote_key FROM portal WHERE room_id = $1`, roomID).Scan(&module, &remoteKey)
	if err != nil {
		return "", "", fmt.Errorf("store: portal of room %s: %w", roomID, notFound(err))
	}
	return module, remoteKey, nil
}

// IsGhostRegistered reports whether userID was registered with the homeserver.
func (s *Store) IsGhostRegistered(ctx context.Context, userID string) (bool, error) {
	n, err := s.count(ctx, `SELECT COUNT(*) FROM ghost WHERE user_id = $1`, userID)
	if err != nil {
		return false, fmt.Errorf("store: ghost %s: %w", userID, err)
	}
	return n > 0, nil
}

// MarkGhostRegistered records that userID is registered.
func (s *Store) MarkGhostRegistered(ctx context.Context, userID string) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO ghost (user_id, registered_at) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING`,
		userID, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store: mark ghost %s registered: %w", userID, err)
	}
	return nil
}

// GetKV returns a value a component stored under key, or ErrNotFound. Keys are namespaced by
// the caller ("module/xmpp/…", "core/…").
func (s *Store) GetKV(ctx context.Context, key string) (string, error) {
	var v string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = $1`, key).Scan(&v); err != nil {
		return "", fmt.Errorf("store: get key %s: %w", key, notFound(err))
	}
	return v, nil
}

// PutKV stores value under key (upsert).
func (s *Store) PutKV(ctx context.Context, key, value string) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		key, value)
	if err != nil {
		return fmt.Errorf("store: put key %s: %w", key, err)
	}
	return nil
}

// KV is one key-value row.
type KV struct {
	Key, Value string
}

// ListKV returns the rows whose key starts with prefix, ordered by key, at most limit rows
// (0 for all).
func (s *Store) ListKV(ctx context.Context, prefix string, limit int) ([]KV, error) {
	// Keys compare bytewise: SQLite's default, PostgreSQL's "C" collation (a database's
	// own collation may ignore punctuation and interleave prefixes).
	col := ""
	if s.dialect == Postgres {
		col = ` COLLATE "C"`
	}
	q := `SELECT key, value FROM kv WHERE key` + col + ` >= $1 AND key` + col + ` < $2 ORDER BY key` + col
	if limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(limit)
	}
	rows, err := s.db.QueryContext(ctx, q, prefix, prefix+"\U0010FFFF")
	if err != nil {
		return nil, fmt.Errorf("store: list keys %s*: %w", prefix, err)
	}
	defer rows.Close()
	var out []KV
	for rows.Next() {
		var kv KV
		if err := rows.Scan(&kv.Key, &kv.Value); err != nil {
			return nil, fmt.Errorf("store: list keys %s*: %w", prefix, err)
		}
		out = append(out, kv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys %s*: %w", prefix, err)
	}
	return out, nil
}

// DeleteKV removes key; a missing key is not an error.
func (s *Store) DeleteKV(ctx context.Context, key string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM kv WHERE key = $1`, key); err != nil {
		return fmt.Errorf("store: delete key %s: %w", key, err)
	}
	return nil
}
