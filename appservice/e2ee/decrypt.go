package e2ee

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
	"go.mau.fi/util/dbutil"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// ErrNoKey means the room key of an event has not arrived (yet).
var ErrNoKey = errors.New("e2ee: the room key has not arrived")

// ErrWithheld means the sender's device refused to share the room key with the bridge.
var ErrWithheld = errors.New("e2ee: the sender withheld the room key")

// Decrypt decrypts an m.room.encrypted timeline event with the machine of whichever of
// Switchboard's users received its room key. It returns an error wrapping ErrNoKey when no
// one has the key yet; wait on KeyArrived and try again.
func (m *Manager) Decrypt(ctx context.Context, evt *event.Event) (*event.Event, error) {
	evt.Type.Class = event.MessageEventType
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
		return nil, fmt.Errorf("e2ee: malformed encrypted event: %w", err)
	}
	content, ok := evt.Content.Parsed.(*event.EncryptedEventContent)
	if !ok {
		return nil, errors.New("e2ee: malformed encrypted event")
	}
	if content.Algorithm != id.AlgorithmMegolmV1 {
		return nil, fmt.Errorf("e2ee: unsupported algorithm %q", content.Algorithm)
	}
	var account string
	var session []byte
	var withheld sql.NullString
	err := m.db.QueryRow(ctx, `SELECT account_id, session, withheld_code FROM crypto_megolm_inbound_session
		WHERE room_id=$1 AND session_id=$2 ORDER BY (session IS NULL) LIMIT 1`,
		evt.RoomID.String(), content.SessionID.String()).Scan(&account, &session, &withheld)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoKey
	} else if err != nil {
		return nil, fmt.Errorf("e2ee: failed to look up the room key: %w", err)
	}
	if session == nil {
		// m.unavailable answers a key request: someone else may still have the key.
		if withheld.Valid && withheld.String != "" && withheld.String != string(event.RoomKeyWithheldUnavailable) {
			return nil, fmt.Errorf("%w (%s)", ErrWithheld, withheld.String)
		}
		return nil, ErrNoKey
	}
	mach, err := m.Machine(ctx, id.UserID(account))
	if err != nil {
		return nil, err
	}
	decrypted, err := mach.DecryptMegolmEvent(ctx, evt)
	if errors.Is(err, crypto.ErrNoSessionFound) {
		return nil, ErrNoKey
	} else if err != nil {
		return nil, fmt.Errorf("e2ee: failed to decrypt: %w", err)
	}
	return decrypted, nil
}

// RequestKey asks the devices of evt's sender for its room key, as asker (one of
// Switchboard's users in the room, whose device the key was meant for). The homeserver
// drops to-device events it could not deliver while Switchboard was down (Synapse does),
// so a room key sent then is only had by asking; clients answer for sessions they shared
// with the asking device. The answer arrives as a to-device event like any room key.
func (m *Manager) RequestKey(ctx context.Context, asker id.UserID, evt *event.Event) error {
	content, ok := evt.Content.Parsed.(*event.EncryptedEventContent)
	if !ok {
		return errors.New("e2ee: not an encrypted event")
	}
	mach, err := m.Machine(ctx, asker)
	if err != nil {
		return err
	}
	//lint:ignore SA1019 the sender key and device ID are deprecated in events but still sent
	senderKey, device := content.SenderKey, content.DeviceID
	if device == "" {
		device = "*" // every device of the sender
	}
	err = mach.SendRoomKeyRequest(ctx, evt.RoomID, senderKey, content.SessionID, "",
		map[id.UserID][]id.DeviceID{evt.Sender: {device}})
	if err != nil {
		return fmt.Errorf("e2ee: failed to request the room key: %w", err)
	}
	return nil
}

// KeyArrived returns a channel that is closed when the next room key arrives.
func (m *Manager) KeyArrived() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.keyWake
}

func (m *Manager) sessionReceived(context.Context, id.RoomID, id.SessionID, uint32) {
	m.mu.Lock()
	close(m.keyWake)
	m.keyWake = make(chan struct{})
	m.mu.Unlock()
}

// ToDevice is a to-device event of a transaction, with its recipient (MSC2409).
type ToDevice struct {
	ToUserID   id.UserID   `json:"to_user_id"`
	ToDeviceID id.DeviceID `json:"to_device_id"`
}

// HandleToDevice hands a journaled to-device event to its recipient's machine. Events for
// users or devices Switchboard has no machine for are ignored.
func (m *Manager) HandleToDevice(ctx context.Context, raw json.RawMessage) error {
	var to ToDevice
	if err := json.Unmarshal(raw, &to); err != nil {
		return fmt.Errorf("e2ee: malformed to-device event: %w", err)
	}
	dev, err := m.deviceOf(ctx, to.ToUserID)
	if err != nil {
		return err
	}
	if dev == "" || (to.ToDeviceID != "" && to.ToDeviceID != dev) {
		// A device of an earlier database, or a user without one: nobody can read it.
		zerolog.Ctx(ctx).Debug().Stringer("to_user_id", to.ToUserID).Stringer("to_device_id", to.ToDeviceID).
			Stringer("our_device_id", dev).Msg("Ignoring a to-device event for a device that is not ours")
		return nil
	}
	mach, err := m.Machine(ctx, to.ToUserID)
	if err != nil {
		return err
	}
	var evt event.Event
	if err := json.Unmarshal(raw, &evt); err != nil {
		return fmt.Errorf("e2ee: malformed to-device event: %w", err)
	}
	evt.Type.Class = event.ToDeviceEventType
	if err := evt.Content.ParseRaw(evt.Type); err != nil && !errors.Is(err, event.ErrUnsupportedContentType) {
		return nil // malformed content: nothing to do (mautrix would log it too)
	}
	l := m.accountLock(to.ToUserID)
	l.Lock()
	defer l.Unlock()
	zerolog.Ctx(ctx).Debug().Stringer("to_user_id", to.ToUserID).Str("type", evt.Type.Type).Stringer("sender", evt.Sender).
		Msg("Handling a to-device event")
	mach.HandleToDeviceEvent(ctx, &evt)
	return nil
}

// MarkDevicesChanged records, durably, that the device lists of users changed (a
// transaction's device_lists): their keys are fetched again before the next encryption.
func (m *Manager) MarkDevicesChanged(ctx context.Context, users []id.UserID) error {
	if len(users) == 0 {
		return nil
	}
	cs := crypto.NewSQLCryptoStore(m.db, dbutil.NoopLogger, "", "", nil)
	if err := cs.MarkTrackedUsersOutdated(ctx, users); err != nil {
		return fmt.Errorf("e2ee: failed to record device-list changes: %w", err)
	}
	return nil
}

// HandleOTKCounts tops up the one-time keys of devices that report few left, in the
// background (one upload per user at a time).
func (m *Manager) HandleOTKCounts(counts map[id.UserID]map[id.DeviceID]mautrix.OTKCount) {
	for user, devices := range counts {
		for device, count := range devices {
			mach, loaded := m.hasMachine(user)
			if loaded && mach.Client.DeviceID != device {
				continue
			}
			m.otkMu.Lock()
			if m.otkRun[user] {
				m.otkMu.Unlock()
				continue
			}
			m.otkRun[user] = true
			m.otkMu.Unlock()
			count.UserID, count.DeviceID = user, device
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				defer func() {
					m.otkMu.Lock()
					delete(m.otkRun, user)
					m.otkMu.Unlock()
				}()
				l := m.accountLock(user)
				l.Lock()
				defer l.Unlock()
				ctx := m.bgContext()
				if !loaded {
					// A device of ours that this process has not used yet: load it to
					// top up its keys, when it is ours.
					if dev, err := m.deviceOf(ctx, user); err != nil || dev != device {
						return
					}
					var err error
					if mach, err = m.Machine(ctx, user); err != nil {
						return
					}
				}
				mach.HandleOTKCounts(ctx, &count)
			}()
		}
	}
}
