package e2eeclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// CreateEncryptedRoom creates a room with m.room.encryption (Megolm) in its initial state.
func (c *Client) CreateEncryptedRoom(ctx context.Context, req *mautrix.ReqCreateRoom) (id.RoomID, error) {
	r := *req
	enc := &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}
	r.InitialState = append(slices.Clone(req.InitialState), &event.Event{
		Type: event.StateEncryption, StateKey: new(string), Content: event.Content{Parsed: enc},
	})
	resp, err := c.cli.CreateRoom(ctx, &r)
	if err != nil {
		return "", fmt.Errorf("e2eeclient: failed to create the room: %w", err)
	}
	if err := c.state.SetEncryptionEvent(ctx, resp.RoomID, enc); err != nil {
		return "", fmt.Errorf("e2eeclient: %w", err)
	}
	return resp.RoomID, nil
}

// Send sends content as evtType to roomID: encrypted when the room has m.room.encryption
// (after sharing the room's Megolm session with every device of every joined member, as
// Element does), plain otherwise.
func (c *Client) Send(ctx context.Context, roomID id.RoomID, evtType event.Type, content any) (id.EventID, error) {
	encrypted, err := c.isEncrypted(ctx, roomID)
	if err != nil {
		return "", err
	}
	if !encrypted {
		resp, err := c.cli.SendMessageEvent(ctx, roomID, evtType, content)
		if err != nil {
			return "", fmt.Errorf("e2eeclient: failed to send: %w", err)
		}
		return resp.EventID, nil
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.shareRoomKey(ctx, roomID); err != nil {
		return "", err
	}
	enc, err := c.mach.EncryptMegolmEvent(ctx, roomID, evtType, content)
	if err != nil {
		return "", fmt.Errorf("e2eeclient: failed to encrypt: %w", err)
	}
	return c.sendEncrypted(ctx, roomID, enc)
}

// SendWithheldKey sends content as an encrypted m.room.message to roomID with a new
// Megolm session that is shared with nobody (the recipients cannot decrypt it; this
// client does not keep an inbound copy either, so it cannot answer key requests for it).
// release shares exactly that session's key (m.room_key over Olm) with every device of
// every member joined at release time, as a late room key.
func (c *Client) SendWithheldKey(ctx context.Context, roomID id.RoomID, content any) (id.EventID, func(ctx context.Context) error, error) {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	encEvt, err := c.state.GetEncryptionEvent(ctx, roomID)
	if err != nil {
		return "", nil, fmt.Errorf("e2eeclient: %w", err)
	} else if encEvt == nil {
		if _, err := c.isEncrypted(ctx, roomID); err != nil {
			return "", nil, err
		}
		if encEvt, _ = c.state.GetEncryptionEvent(ctx, roomID); encEvt == nil {
			return "", nil, fmt.Errorf("e2eeclient: room %s is not encrypted", roomID)
		}
	}
	hv, err := c.state.GetHistoryVisibility(ctx, roomID)
	if err != nil {
		return "", nil, fmt.Errorf("e2eeclient: %w", err)
	}
	withheld, err := crypto.NewOutboundGroupSession(roomID, encEvt, hv)
	if err != nil {
		return "", nil, fmt.Errorf("e2eeclient: %w", err)
	}
	// The key at index 0, taken before the first encryption ratchets the session.
	key := withheld.ShareContent()
	withheld.Shared = true

	// Encrypt with the withheld session in place of the room's outbound session, then
	// put the room's session back.
	store := c.mach.CryptoStore
	prev, err := store.GetOutboundGroupSession(ctx, roomID)
	if err != nil {
		return "", nil, fmt.Errorf("e2eeclient: %w", err)
	}
	if err := store.AddOutboundGroupSession(ctx, withheld); err != nil {
		return "", nil, fmt.Errorf("e2eeclient: %w", err)
	}
	enc, encErr := c.mach.EncryptMegolmEvent(ctx, roomID, event.EventMessage, content)
	if prev != nil {
		err = store.AddOutboundGroupSession(ctx, prev)
	} else {
		err = store.RemoveOutboundGroupSession(ctx, roomID)
	}
	if encErr != nil {
		return "", nil, fmt.Errorf("e2eeclient: failed to encrypt: %w", encErr)
	} else if err != nil {
		return "", nil, fmt.Errorf("e2eeclient: failed to restore the room's session: %w", err)
	}
	eventID, err := c.sendEncrypted(ctx, roomID, enc)
	if err != nil {
		return "", nil, err
	}
	release := func(ctx context.Context) error {
		c.sendMu.Lock()
		defer c.sendMu.Unlock()
		devices, err := c.memberDevices(ctx, roomID)
		if err != nil {
			return err
		}
		var errs []error
		for _, dev := range devices {
			if dev.UserID == c.cli.UserID && dev.DeviceID == c.cli.DeviceID {
				continue
			}
			if err := c.mach.SendEncryptedToDevice(ctx, dev, event.ToDeviceRoomKey, key); err != nil {
				errs = append(errs, fmt.Errorf("e2eeclient: failed to send the room key to %s/%s: %w", dev.UserID, dev.DeviceID, err))
			}
		}
		return errors.Join(errs...)
	}
	return eventID, release, nil
}

// sendEncrypted sends an m.room.encrypted event.
func (c *Client) sendEncrypted(ctx context.Context, roomID id.RoomID, enc *event.EncryptedEventContent) (id.EventID, error) {
	resp, err := c.cli.SendMessageEvent(ctx, roomID, event.EventEncrypted, enc)
	if err != nil {
		return "", fmt.Errorf("e2eeclient: failed to send: %w", err)
	}
	return resp.EventID, nil
}

// isEncrypted says whether roomID has m.room.encryption, asking the homeserver when the
// state store (fed by /sync) does not know it yet.
func (c *Client) isEncrypted(ctx context.Context, roomID id.RoomID) (bool, error) {
	if ok, err := c.state.IsEncrypted(ctx, roomID); err != nil || ok {
		return ok, err
	}
	var enc event.EncryptionEventContent
	err := c.cli.StateEvent(ctx, roomID, event.StateEncryption, "", &enc)
	if errors.Is(err, mautrix.MNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("e2eeclient: failed to get the encryption state of %s: %w", roomID, err)
	}
	if enc.Algorithm == "" {
		return false, nil
	}
	if err := c.state.SetEncryptionEvent(ctx, roomID, &enc); err != nil {
		return false, fmt.Errorf("e2eeclient: %w", err)
	}
	return true, nil
}

// shareRoomKey makes sure the room's outbound Megolm session has been shared with every
// current device of every joined member: it fetches their keys afresh and starts a new
// session when the set of devices differs from the one the session went to (a member or
// device joined or left since). The caller holds sendMu.
func (c *Client) shareRoomKey(ctx context.Context, roomID id.RoomID) error {
	devices, err := c.memberDevices(ctx, roomID)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(devices))
	users := make([]id.UserID, 0)
	for _, dev := range devices {
		keys = append(keys, dev.UserID.String()+"|"+dev.DeviceID.String()+"|"+dev.IdentityKey.String())
		if !slices.Contains(users, dev.UserID) {
			users = append(users, dev.UserID)
		}
	}
	slices.Sort(keys)
	fingerprint := strings.Join(keys, "\n")
	store := c.mach.CryptoStore
	sess, err := store.GetOutboundGroupSession(ctx, roomID)
	if err != nil {
		return fmt.Errorf("e2eeclient: %w", err)
	}
	if sess != nil && c.sharedWith[roomID] != (shareRecord{sessionID: sess.ID(), devices: fingerprint}) {
		if err := store.RemoveOutboundGroupSession(ctx, roomID); err != nil {
			return fmt.Errorf("e2eeclient: %w", err)
		}
	}
	if err := c.mach.ShareGroupSession(ctx, roomID, users); err != nil {
		return fmt.Errorf("e2eeclient: failed to share the room key: %w", err)
	}
	if sess, err = store.GetOutboundGroupSession(ctx, roomID); err != nil || sess == nil {
		return fmt.Errorf("e2eeclient: no outbound session after sharing: %w", err)
	}
	c.sharedWith[roomID] = shareRecord{sessionID: sess.ID(), devices: fingerprint}
	return nil
}

// memberDevices returns every device of every member joined to roomID, with keys
// fetched afresh from the homeserver.
func (c *Client) memberDevices(ctx context.Context, roomID id.RoomID) ([]*id.Device, error) {
	resp, err := c.cli.JoinedMembers(ctx, roomID)
	if err != nil {
		return nil, fmt.Errorf("e2eeclient: failed to get the members of %s: %w", roomID, err)
	}
	users := make([]id.UserID, 0, len(resp.Joined))
	for userID := range resp.Joined {
		users = append(users, userID)
	}
	slices.Sort(users)
	if _, err := c.mach.FetchKeys(ctx, users, true); err != nil {
		return nil, fmt.Errorf("e2eeclient: failed to fetch the members' keys: %w", err)
	}
	var devices []*id.Device
	for _, userID := range users {
		devs, err := c.mach.CryptoStore.GetDevices(ctx, userID)
		if err != nil {
			return nil, fmt.Errorf("e2eeclient: %w", err)
		}
		for _, dev := range devs {
			devices = append(devices, dev)
		}
	}
	return devices, nil
}
