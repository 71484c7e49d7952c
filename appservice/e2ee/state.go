package e2ee

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// stateStore is what mautrix's Olm machines need to know about rooms: whether a room is
// encrypted and with which settings. A room's m.room.encryption is kept in
// switchboard_e2ee_room once known (it cannot be removed from a room); members are asked
// from the homeserver when a message is encrypted (see encrypt.go).
type stateStore struct {
	m *Manager

	mu    sync.Mutex
	rooms map[id.RoomID]*event.EncryptionEventContent // encrypted rooms
	// plain holds rooms the homeserver said are unencrypted, until an m.room.encryption
	// event is noted (Switchboard's users see it: the homeserver pushes it).
	plain map[id.RoomID]bool
}

func newStateStore(m *Manager) *stateStore {
	return &stateStore{m: m, rooms: make(map[id.RoomID]*event.EncryptionEventContent), plain: make(map[id.RoomID]bool)}
}

// IsEncrypted implements crypto.StateStore from what is known locally.
func (s *stateStore) IsEncrypted(ctx context.Context, roomID id.RoomID) (bool, error) {
	c, err := s.GetEncryptionEvent(ctx, roomID)
	return c != nil, err
}

// GetEncryptionEvent implements crypto.StateStore from what is known locally.
func (s *stateStore) GetEncryptionEvent(ctx context.Context, roomID id.RoomID) (*event.EncryptionEventContent, error) {
	s.mu.Lock()
	c, ok := s.rooms[roomID]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	var raw string
	err := s.m.db.QueryRow(ctx, `SELECT encryption FROM switchboard_e2ee_room WHERE room_id=$1`, roomID.String()).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var content event.EncryptionEventContent
	if err := json.Unmarshal([]byte(raw), &content); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.rooms[roomID] = &content
	s.mu.Unlock()
	return &content, nil
}

// GetHistoryVisibility implements crypto.StateStore; Switchboard does not share history.
func (s *stateStore) GetHistoryVisibility(context.Context, id.RoomID) (*event.HistoryVisibilityEventContent, error) {
	return nil, nil
}

// FindSharedRooms implements crypto.StateStore. Key rotation on device changes is done by
// the recipient check before each encryption, so no rooms are reported.
func (s *stateStore) FindSharedRooms(context.Context, id.UserID) ([]id.RoomID, error) {
	return nil, nil
}

// setEncryption records that roomID is encrypted.
func (s *stateStore) setEncryption(ctx context.Context, roomID id.RoomID, content *event.EncryptionEventContent) error {
	raw, err := json.Marshal(content)
	if err != nil {
		return err
	}
	if _, err := s.m.db.Exec(ctx, `INSERT INTO switchboard_e2ee_room (room_id, encryption) VALUES ($1, $2)
		ON CONFLICT (room_id) DO UPDATE SET encryption=excluded.encryption`, roomID.String(), string(raw)); err != nil {
		return fmt.Errorf("e2ee: failed to record the room's encryption: %w", err)
	}
	s.mu.Lock()
	s.rooms[roomID] = content
	delete(s.plain, roomID)
	s.mu.Unlock()
	return nil
}

// RoomEncryption says whether roomID is encrypted, asking the homeserver as asker (a member)
// when nothing is known locally. A room found unencrypted is asked again next time: the
// state can change.
func (m *Manager) RoomEncryption(ctx context.Context, asker id.UserID, roomID id.RoomID) (*event.EncryptionEventContent, error) {
	if c, err := m.state.GetEncryptionEvent(ctx, roomID); err != nil || c != nil {
		return c, err
	}
	m.state.mu.Lock()
	plain := m.state.plain[roomID]
	m.state.mu.Unlock()
	if plain {
		return nil, nil
	}
	var content event.EncryptionEventContent
	err := m.opts.AS.Client(asker).StateEvent(ctx, roomID, event.StateEncryption, "", &content)
	if errors.Is(err, mautrix.MNotFound) || (err == nil && content.Algorithm == "") {
		m.state.mu.Lock()
		m.state.plain[roomID] = true
		m.state.mu.Unlock()
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("e2ee: failed to read the room's encryption state: %w", err)
	}
	return &content, m.state.setEncryption(ctx, roomID, &content)
}

// NoteEncryption records an m.room.encryption state event seen in a transaction.
func (m *Manager) NoteEncryption(ctx context.Context, evt *event.Event) error {
	if evt.Type != event.StateEncryption || evt.StateKey == nil || *evt.StateKey != "" {
		return nil
	}
	var content event.EncryptionEventContent
	if err := json.Unmarshal(evt.Content.VeryRaw, &content); err != nil || content.Algorithm == "" {
		return nil
	}
	return m.state.setEncryption(ctx, evt.RoomID, &content)
}
