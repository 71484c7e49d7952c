package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// OutboxMessage is a message a module sends to Matrix, recorded before it is sent so that a
// resend after a crash reuses the same transaction id.
type OutboxMessage struct {
	Seq       int64  // assigned by the store
	Module    string // module ID
	RemoteID  string // the remote network's message id; (Module, RemoteID) is unique
	RoomID    string
	Sender    string // Matrix user ID of the ghost (or bot) that sends
	EventType string
	Content   []byte // event content JSON
	TS        int64  // origin timestamp in ms for ts massaging; 0 for none
	TxnID     string // client-server transaction id derived from (Module, RemoteID)
	EventID   string // set once sent
	Attempts  int
	State     string // "pending", "sent" or "failed"
	LastError string
	// CausedBy is the Matrix event this message answers, if any: when the message cannot
	// be sent, that event gets the failure status.
	CausedBy string
}

// Outbox states.
const (
	OutboxPending = "pending"
	OutboxSent    = "sent"
	OutboxFailed  = "failed"
)

const outboxColumns = `seq, module, remote_id, room_id, sender, event_type, content, ts, txn_id,
	event_id, attempts, state, last_error, caused_by`

type scanner interface{ Scan(dest ...any) error }

func scanOutbox(row scanner) (OutboxMessage, error) {
	var m OutboxMessage
	err := row.Scan(&m.Seq, &m.Module, &m.RemoteID, &m.RoomID, &m.Sender, &m.EventType, &m.Content,
		&m.TS, &m.TxnID, &m.EventID, &m.Attempts, &m.State, &m.LastError, &m.CausedBy)
	return m, err
}

// EnqueueOutbox stores m as pending unless (m.Module, m.RemoteID) exists; it returns the
// stored row either way (existing is true for an existing row, whose state may be sent).
// The Seq, EventID, Attempts, State and LastError of m are ignored.
func (s *Store) EnqueueOutbox(ctx context.Context, m OutboxMessage) (stored OutboxMessage, existing bool, err error) {
	err = s.inTx(ctx, lockOutbox, func(tx *sql.Tx) error {
		var seq int64
		err := tx.QueryRowContext(ctx,
			`INSERT INTO outbox (module, remote_id, room_id, sender, event_type, content, ts, txn_id, created_at, caused_by)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			 ON CONFLICT (module, remote_id) DO NOTHING RETURNING seq`,
			m.Module, m.RemoteID, m.RoomID, m.Sender, m.EventType, nonNil(m.Content), m.TS, m.TxnID,
			time.Now().UnixMilli(), m.CausedBy).Scan(&seq)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			existing = true
			stored, err = scanOutbox(tx.QueryRowContext(ctx,
				`SELECT `+outboxColumns+` FROM outbox WHERE module = $1 AND remote_id = $2`, m.Module, m.RemoteID))
			return err
		case err != nil:
			return err
		}
		stored = m
		stored.Seq, stored.EventID, stored.Attempts, stored.State, stored.LastError = seq, "", 0, OutboxPending, ""
		stored.Content = nonNil(m.Content)
		return nil
	})
	if err != nil {
		return OutboxMessage{}, false, fmt.Errorf("store: enqueue message %s/%s: %w", m.Module, m.RemoteID, err)
	}
	return stored, existing, nil
}

// PendingOutbox returns up to limit pending messages in Seq order.
func (s *Store) PendingOutbox(ctx context.Context, limit int) ([]OutboxMessage, error) {
	return s.PendingOutboxAfter(ctx, 0, limit)
}

// PendingOutboxAfter returns up to limit pending messages with Seq > afterSeq, in Seq order.
func (s *Store) PendingOutboxAfter(ctx context.Context, afterSeq int64, limit int) ([]OutboxMessage, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+outboxColumns+` FROM outbox WHERE state = 'pending' AND seq > $1 ORDER BY seq LIMIT $2`,
		afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("store: load pending messages: %w", err)
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		m, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("store: load pending messages: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load pending messages: %w", err)
	}
	return out, nil
}

// MarkOutboxSent records the event id of a sent message and, in the same transaction, the
// message map entry (Module, RemoteID) → (RoomID, eventID).
func (s *Store) MarkOutboxSent(ctx context.Context, seq int64, eventID string) error {
	err := s.inTx(ctx, 0, func(tx *sql.Tx) error {
		var module, remoteID, roomID string
		err := tx.QueryRowContext(ctx,
			`UPDATE outbox SET state = 'sent', event_id = $2, last_error = '' WHERE seq = $1
			 RETURNING module, remote_id, room_id`, seq, eventID).Scan(&module, &remoteID, &roomID)
		if err != nil {
			return notFound(err)
		}
		return mapSent(ctx, tx, module, remoteID, roomID, eventID)
	})
	if err != nil {
		return fmt.Errorf("store: mark message %d sent: %w", seq, err)
	}
	return nil
}

// mapSent writes the message map entry of a sent outbox row.
func mapSent(ctx context.Context, tx *sql.Tx, module, remoteID, roomID, eventID string) error {
	_, err := tx.ExecContext(ctx,
		`INSERT INTO message_map (module, remote_id, room_id, event_id) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (module, remote_id) DO UPDATE SET room_id = excluded.room_id, event_id = excluded.event_id`,
		module, remoteID, roomID, eventID)
	return err
}

// MarkOutboxSentByTxn records that the pending row carrying txnID, sent by sender into
// roomID, was sent as eventID: the same record as MarkOutboxSent (row sent and message map
// entry, in one transaction). It is how the echo of a message (the homeserver pushing the
// event back, its content carrying the transaction ID) settles a row whose send was in doubt.
//
// It returns the row as it is afterwards, and recorded=true when this call changed it. A row
// that is already sent or failed is returned unchanged (recorded=false), which makes the call
// idempotent and safe against the outbox recording the same send concurrently. No row with
// that transaction ID, sender and room is ErrNotFound.
func (s *Store) MarkOutboxSentByTxn(ctx context.Context, txnID, sender, roomID, eventID string) (row OutboxMessage, recorded bool, err error) {
	// Most echoes are of rows the outbox has recorded already: a read answers them without
	// a write transaction (which on SQLite takes the database's write lock).
	row, err = scanOutbox(s.db.QueryRowContext(ctx,
		`SELECT `+outboxColumns+` FROM outbox WHERE txn_id = $1 AND sender = $2 AND room_id = $3 ORDER BY seq LIMIT 1`,
		txnID, sender, roomID))
	switch {
	case err != nil:
		return OutboxMessage{}, false, fmt.Errorf("store: message with transaction %s: %w", txnID, notFound(err))
	case row.State != OutboxPending:
		return row, false, nil
	}
	err = s.inTx(ctx, 0, func(tx *sql.Tx) error {
		var seq int64
		err := tx.QueryRowContext(ctx,
			`UPDATE outbox SET state = 'sent', event_id = $4, last_error = ''
			 WHERE txn_id = $1 AND sender = $2 AND room_id = $3 AND state = 'pending' RETURNING seq`,
			txnID, sender, roomID, eventID).Scan(&seq)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			recorded = true
		}
		row, err = scanOutbox(tx.QueryRowContext(ctx,
			`SELECT `+outboxColumns+` FROM outbox WHERE txn_id = $1 AND sender = $2 AND room_id = $3 ORDER BY seq LIMIT 1`,
			txnID, sender, roomID))
		if err != nil {
			return notFound(err)
		}
		if !recorded {
			return nil
		}
		return mapSent(ctx, tx, row.Module, row.RemoteID, row.RoomID, eventID)
	})
	if err != nil {
		return OutboxMessage{}, false, fmt.Errorf("store: mark message with transaction %s sent: %w", txnID, err)
	}
	return row, recorded, nil
}

// InDoubtOutbox returns up to limit pending rows of module that were attempted at least once
// (whose send may have reached the homeserver), oldest first; roomID, when not empty, limits
// them to one room.
func (s *Store) InDoubtOutbox(ctx context.Context, module, roomID string, limit int) ([]OutboxMessage, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+outboxColumns+` FROM outbox WHERE state = 'pending' AND attempts > 0 AND module = $1
		 AND ($2 = '' OR room_id = $2) ORDER BY seq LIMIT $3`, module, roomID, limit)
	if err != nil {
		return nil, fmt.Errorf("store: load messages in doubt: %w", err)
	}
	defer rows.Close()
	var out []OutboxMessage
	for rows.Next() {
		m, err := scanOutbox(rows)
		if err != nil {
			return nil, fmt.Errorf("store: load messages in doubt: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load messages in doubt: %w", err)
	}
	return out, nil
}

// RecordOutboxAttempt increments the attempt counter and stores the error; returns the count.
func (s *Store) RecordOutboxAttempt(ctx context.Context, seq int64, errText string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx,
		`UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE seq = $1 RETURNING attempts`,
		seq, errText).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: record attempt of message %d: %w", seq, notFound(err))
	}
	return n, nil
}

// MarkOutboxFailed records that the message was given up on.
func (s *Store) MarkOutboxFailed(ctx context.Context, seq int64, errText string) error {
	err := s.updateOne(ctx, `UPDATE outbox SET state = 'failed', last_error = $2 WHERE seq = $1`, seq, errText)
	if err != nil {
		return fmt.Errorf("store: mark message %d failed: %w", seq, err)
	}
	return nil
}

// GetOutbox returns the outbox row of (module, remoteID), or ErrNotFound.
func (s *Store) GetOutbox(ctx context.Context, module, remoteID string) (OutboxMessage, error) {
	m, err := scanOutbox(s.db.QueryRowContext(ctx,
		`SELECT `+outboxColumns+` FROM outbox WHERE module = $1 AND remote_id = $2`, module, remoteID))
	if err != nil {
		return OutboxMessage{}, fmt.Errorf("store: get message %s/%s: %w", module, remoteID, notFound(err))
	}
	return m, nil
}

// OutboxDepth counts pending outbox messages.
func (s *Store) OutboxDepth(ctx context.Context) (int, error) {
	n, err := s.count(ctx, `SELECT COUNT(*) FROM outbox WHERE state = 'pending'`)
	if err != nil {
		return 0, fmt.Errorf("store: count pending messages: %w", err)
	}
	return n, nil
}
