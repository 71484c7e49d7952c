package e2ee

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Encrypt encrypts content of type evtType as sender for roomID. It returns nil, nil when
// the room is not encrypted. The Megolm session is shared first with every device of the
// room's joined and invited members (an invited user who joins later can read what was sent
// since the invite, as in Element); a session whose recipients no longer match the members' devices (a
// member left, a device was added or removed) is replaced. The session's new state is
// committed to the crypto store before Encrypt returns, so the encrypted event can be sent
// (and, after a crash, a new encryption of the same message sent) without reusing an index.
func (m *Manager) Encrypt(ctx context.Context, sender id.UserID, roomID id.RoomID, evtType event.Type, content json.RawMessage) (*event.EncryptedEventContent, error) {
	enc, err := m.RoomEncryption(ctx, sender, roomID)
	if err != nil || enc == nil {
		return nil, err
	}
	mach, err := m.Machine(ctx, sender)
	if err != nil {
		return nil, err
	}
	members, err := recipients(ctx, mach, roomID)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if err := m.share(ctx, mach, roomID, members); err != nil {
			return nil, err
		}
		encrypted, err := mach.EncryptMegolmEvent(ctx, roomID, evtType, content)
		if err == nil {
			return encrypted, nil
		}
		if attempt > 0 || !errors.Is(err, crypto.ErrNoGroupSession) {
			return nil, fmt.Errorf("e2ee: failed to encrypt: %w", err)
		}
	}
}

// share makes sure the room's outbound session is shared with exactly the members' current
// devices. It holds the sender's account lock: fetching device keys and sharing a session
// both write state of the Olm machine that mautrix does not guard (its cache of the user's
// own cross-signing keys, the Olm sessions), so two rooms of one sender, or a to-device
// event being decrypted, must not run it at the same time (the race detector caught
// ShareGroupSession in two rooms resetting and reading that cache at once).
func (m *Manager) share(ctx context.Context, mach *crypto.OlmMachine, roomID id.RoomID, members []id.UserID) error {
	l := m.accountLock(mach.Client.UserID)
	l.Lock()
	defer l.Unlock()
	if err := m.refreshDevices(ctx, mach, members); err != nil {
		return err
	}
	if err := m.checkRecipients(ctx, mach, roomID, members); err != nil {
		return err
	}
	if err := mach.ShareGroupSession(ctx, roomID, members); err != nil {
		return fmt.Errorf("e2ee: failed to share the room key: %w", err)
	}
	m.noteShared(ctx, mach, roomID, members)
	return nil
}

// recipients lists the room's joined and invited members: a room made with invites (the
// 116117 bot's case rooms) gets its first message before the invited users joined, and
// they must be able to read it once they do.
func recipients(ctx context.Context, mach *crypto.OlmMachine, roomID id.RoomID) ([]id.UserID, error) {
	resp, err := mach.Client.Members(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("e2ee: failed to list the room's members: %w", err)
	}
	members := make([]id.UserID, 0, len(resp.Chunk))
	for _, evt := range resp.Chunk {
		if evt == nil || evt.StateKey == nil {
			continue
		}
		switch m, _ := evt.Content.Raw["membership"].(string); event.Membership(m) {
		case event.MembershipJoin, event.MembershipInvite:
			members = append(members, id.UserID(*evt.StateKey))
		}
	}
	return members, nil
}

// refreshDevices fetches the device lists of members that a transaction said changed.
func (m *Manager) refreshDevices(ctx context.Context, mach *crypto.OlmMachine, members []id.UserID) error {
	outdated, err := mach.CryptoStore.GetOutdatedTrackedUsers(ctx)
	if err != nil {
		return fmt.Errorf("e2ee: failed to read outdated device lists: %w", err)
	}
	if len(outdated) == 0 {
		return nil
	}
	in := make(map[id.UserID]bool, len(members))
	for _, u := range members {
		in[u] = true
	}
	var fetch []id.UserID
	for _, u := range outdated {
		if in[u] {
			fetch = append(fetch, u)
		}
	}
	if len(fetch) > 0 {
		if _, err := mach.FetchKeys(ctx, fetch, false); err != nil {
			return fmt.Errorf("e2ee: failed to fetch device keys: %w", err)
		}
	}
	return nil
}

// checkRecipients removes the room's outbound session when it was not shared with exactly
// the members' current devices: a device of a member has not got it (a new member or a new
// device: mautrix records every device it shared a session with), or a member it was shared
// with is gone (recorded in memory when it was shared; after a restart the first message
// of a room starts a new session).
func (m *Manager) checkRecipients(ctx context.Context, mach *crypto.OlmMachine, roomID id.RoomID, members []id.UserID) error {
	sess, err := mach.CryptoStore.GetOutboundGroupSession(ctx, roomID)
	if err != nil || sess == nil || !sess.Shared || sess.Expired() {
		return err
	}
	key := shareKey{mach.Client.UserID, roomID}
	m.sharedMu.Lock()
	rec, known := m.shared[key]
	m.sharedMu.Unlock()
	rotate := ""
	switch {
	case !known || rec.session != sess.ID():
		rotate = "shared before a restart"
	case !sameMembers(rec.members, members):
		rotate = "the members changed"
	}
	for _, u := range members {
		if rotate != "" {
			break
		}
		devices, err := mach.CryptoStore.GetDevices(ctx, u)
		if err != nil {
			return fmt.Errorf("e2ee: failed to read devices: %w", err)
		}
		for d, dev := range devices {
			if u == mach.Client.UserID && d == mach.Client.DeviceID {
				continue // the sender's own device is never sent the key
			}
			shared, err := mach.CryptoStore.IsOutboundGroupSessionShared(ctx, u, dev.IdentityKey, sess.ID())
			if err != nil {
				return fmt.Errorf("e2ee: failed to read the session's recipients: %w", err)
			}
			if !shared {
				rotate = "a device without the key"
				break
			}
		}
	}
	if rotate == "" {
		return nil
	}
	zerolog.Ctx(ctx).Debug().Stringer("room_id", roomID).Stringer("sender", mach.Client.UserID).Str("reason", rotate).Msg("Starting a new room key")
	if err := mach.CryptoStore.RemoveOutboundGroupSession(ctx, roomID); err != nil {
		return fmt.Errorf("e2ee: failed to rotate the room key: %w", err)
	}
	return nil
}

// shareKey names the outbound session of one sender in one room.
type shareKey struct {
	sender id.UserID
	room   id.RoomID
}

// shareRecord is who an outbound session was shared with, as far as this process knows.
type shareRecord struct {
	session id.SessionID
	members map[id.UserID]bool
}

// noteShared records the members the room's current session was shared with.
func (m *Manager) noteShared(ctx context.Context, mach *crypto.OlmMachine, roomID id.RoomID, members []id.UserID) {
	sess, err := mach.CryptoStore.GetOutboundGroupSession(ctx, roomID)
	if err != nil || sess == nil {
		return
	}
	set := make(map[id.UserID]bool, len(members))
	for _, u := range members {
		set[u] = true
	}
	m.sharedMu.Lock()
	m.shared[shareKey{mach.Client.UserID, roomID}] = shareRecord{session: sess.ID(), members: set}
	m.sharedMu.Unlock()
}

func sameMembers(set map[id.UserID]bool, members []id.UserID) bool {
	if len(set) != len(members) {
		return false
	}
	for _, u := range members {
		if !set[u] {
			return false
		}
	}
	return true
}
