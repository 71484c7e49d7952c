package appservice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// Bridge info (MSC2346): every portal carries an m.bridge state event, and the same
// content under the older uk.half-shot.bridge type, naming the network the room is bridged
// to, so that clients (Element's room settings, "Bridges") can show it.
//
// State events are never encrypted, even in encrypted rooms: bridge info must hold only
// what is public anyway (a protocol, a MUC's JID, a mailbox's address, a case ID), never
// names of people, subjects or message content.

// BridgeInfoPrefix is the bridge prefix of Switchboard's bridge-info state keys
// ("net.switchboard://<protocol>/<network>/<channel>").
const BridgeInfoPrefix = "net.switchboard"

// BridgeInfoTypes are the state event types that carry bridge info: the MSC's m.bridge and
// uk.half-shot.bridge, which Element reads too. Both get the same content and state key.
var BridgeInfoTypes = []event.Type{event.StateBridge, event.StateHalfShotBridge}

// BridgeInfoSection is one level of the bridged network's hierarchy: the protocol, the
// network or the channel. Only ID is required.
type BridgeInfoSection struct {
	// ID identifies the protocol, network or channel; lowercase where the network
	// compares it case-insensitively. Required.
	ID string `json:"id"`
	// DisplayName is the name shown to users; may be empty.
	DisplayName string `json:"displayname,omitempty"`
	// AvatarURL is an mxc URI of an icon; may be empty.
	AvatarURL id.ContentURIString `json:"avatar_url,omitempty"`
	// ExternalURL links to the protocol, network or channel outside Matrix (such as
	// "xmpp:room@muc.example.org?join"); may be empty.
	ExternalURL string `json:"external_url,omitempty"`
}

// BridgeInfo is the content of a portal's bridge-info state events (MSC2346, with the
// bridgebot field that Element and mautrix bridges use).
type BridgeInfo struct {
	// BridgeBot is the user that bridges the room (the management bot, or a module's own
	// bot). Required.
	BridgeBot id.UserID `json:"bridgebot"`
	// Creator is the Matrix user who set the bridge up, when one did; may be empty.
	Creator id.UserID `json:"creator,omitempty"`
	// Protocol is the network's kind as users know it ("xmpp", "email", "sip"). Required.
	Protocol BridgeInfoSection `json:"protocol"`
	// Network is the particular network (a server, a domain), when the protocol has such
	// a level; may be nil.
	Network *BridgeInfoSection `json:"network,omitempty"`
	// Channel is what this room is linked to (a MUC, a mailbox, a peer). Required.
	Channel BridgeInfoSection `json:"channel"`
}

// ErrBadBridgeInfo is returned for bridge info that lacks a required field.
var ErrBadBridgeInfo = errors.New("appservice: incomplete bridge info")

// Validate reports a missing required field.
func (bi BridgeInfo) Validate() error {
	switch {
	case bi.BridgeBot == "":
		return fmt.Errorf("%w: no bridgebot", ErrBadBridgeInfo)
	case bi.Protocol.ID == "":
		return fmt.Errorf("%w: no protocol id", ErrBadBridgeInfo)
	case bi.Network != nil && bi.Network.ID == "":
		return fmt.Errorf("%w: a network without id", ErrBadBridgeInfo)
	case bi.Channel.ID == "":
		return fmt.Errorf("%w: no channel id", ErrBadBridgeInfo)
	}
	return nil
}

// StateKey is the state key of the bridge-info events, as the MSC asks: the bridge prefix,
// then the protocol, network (when there is one) and channel IDs, each with "/" escaped as
// "%2F": "net.switchboard://xmpp/muc.example.org/room@muc.example.org".
func (bi BridgeInfo) StateKey() string {
	esc := func(s string) string { return strings.ReplaceAll(s, "/", "%2F") }
	var b strings.Builder
	b.WriteString(BridgeInfoPrefix + "://" + esc(bi.Protocol.ID) + "/")
	if bi.Network != nil {
		b.WriteString(esc(bi.Network.ID) + "/")
	}
	b.WriteString(esc(bi.Channel.ID))
	return b.String()
}

// digest identifies the state key and content, for EnsureBridgeInfo's record.
func (bi BridgeInfo) digest() string {
	raw, _ := json.Marshal(bi) // plain strings: cannot fail
	sum := sha256.Sum256(append([]byte(bi.StateKey()+"\n"), raw...))
	return hex.EncodeToString(sum[:16])
}

// SetBridgeInfo writes info into roomID as this user, once under each of BridgeInfoTypes.
// Setting the same state again changes nothing in the room, but it is a request (and, on
// some homeservers, a new event) each time: portals use [EnsureBridgeInfo]. The user needs
// the power to send state events in the room.
func (in *Intent) SetBridgeInfo(ctx context.Context, roomID id.RoomID, info BridgeInfo) error {
	if err := info.Validate(); err != nil {
		return err
	}
	key := info.StateKey()
	for _, t := range BridgeInfoTypes {
		if _, err := in.SendState(ctx, roomID, t, key, &info); err != nil {
			return fmt.Errorf("failed to set the bridge info (%s) of %s: %w", t.Type, roomID, err)
		}
	}
	return nil
}

// bridgeInfoKey is the module's store key that records the bridge info written in a room.
func bridgeInfoKey(roomID id.RoomID) string { return "bridgeinfo:" + roomID.String() }

// EnsureBridgeInfo writes info into roomID as in (see [Intent.SetBridgeInfo]) unless the
// module's store records that this room got this very info (state key and content)
// already, and records it once written. It reports whether it wrote. Calling it for every
// portal at each start costs one store read per portal; it writes only for new portals and
// after a change of the info.
func EnsureBridgeInfo(ctx context.Context, st ModuleStore, in *Intent, roomID id.RoomID, info BridgeInfo) (bool, error) {
	if err := info.Validate(); err != nil {
		return false, err
	}
	want := info.digest()
	have, err := st.GetKV(ctx, bridgeInfoKey(roomID))
	if err == nil && have == want {
		return false, nil
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("failed to read the bridge info record of %s: %w", roomID, err)
	}
	if err := in.SetBridgeInfo(ctx, roomID, info); err != nil {
		return false, err
	}
	if err := st.PutKV(ctx, bridgeInfoKey(roomID), want); err != nil {
		return true, fmt.Errorf("failed to record the bridge info of %s: %w", roomID, err)
	}
	return true, nil
}
