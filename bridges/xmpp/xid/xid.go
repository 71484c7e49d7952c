// Package xid maps XMPP addresses to Matrix IDs and back, for the XMPP bridge:
//
//   - an XMPP user (bare JID) is the ghost @<prefix><encoded JID>:<homeserver>, the JID
//     encoded with the Matrix spec's "mapping from other character sets" (so upper case,
//     '@', '/' and non-ASCII survive the trip);
//   - a MUC room (bare JID) is the alias #<prefix><encoded JID>:<homeserver>;
//   - a Matrix user @local:server is the JID local\40server@<component>, escaped with
//     XEP-0106 (JID Escaping), so XMPP clients show it as "local@server".
//
// Every mapping is reversible, and the reverse accepts only the canonical form: two
// different Matrix IDs never map to one JID and the other way round, so a ghost cannot be
// spoofed by an alternative spelling. The package knows Matrix IDs but nothing of the
// appservice.
package xid

import (
	"errors"
	"fmt"
	"strings"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"
)

// ErrNotMapped is wrapped by every error of the reverse mappings.
var ErrNotMapped = errors.New("xid: not a mapped address")

// DefaultPrefix is the localpart prefix of the bridge's ghosts and aliases.
const DefaultPrefix = "_xmpp_"

// Mapper maps between one homeserver and one XMPP component. All fields are required;
// a Mapper is immutable and safe for concurrent use.
type Mapper struct {
	// Homeserver is the Matrix server name, such as "example.org".
	Homeserver string
	// Component is the bridge's XMPP component domain, such as "matrix.example.org".
	Component string
	// Prefix of ghost and alias localparts, such as DefaultPrefix.
	Prefix string
}

// GhostUserID is the Matrix ghost of the XMPP user j (its bare JID). A JID whose text does
// not parse back to itself (mellium accepts "..", whose text "." is no JID) has no ghost.
func (m Mapper) GhostUserID(j jid.JID) (id.UserID, error) {
	enc, err := encodeBare(j)
	if err != nil {
		return "", err
	}
	return id.NewUserID(m.Prefix+enc, m.Homeserver), nil
}

func encodeBare(j jid.JID) (string, error) {
	bare := j.Bare().String()
	if again, err := jid.Parse(bare); err != nil || !again.Equal(j.Bare()) {
		return "", fmt.Errorf("xid: JID %q does not parse back to itself", bare)
	}
	return id.EncodeUserLocalpart(bare), nil
}

// OccupantUserID is the ghost of a MUC occupant whose real JID is hidden: the occupant
// JID (room@service/nick) encoded like a bare JID. Such ghosts do not map back (they
// cannot be messaged directly).
func (m Mapper) OccupantUserID(occupant jid.JID) (id.UserID, error) {
	s := occupant.String()
	if again, err := jid.Parse(s); err != nil || !again.Equal(occupant) || occupant.Resourcepart() == "" {
		return "", fmt.Errorf("xid: %q is not an occupant JID", s)
	}
	return id.NewUserID(m.Prefix+id.EncodeUserLocalpart(s), m.Homeserver), nil
}

// JIDForGhost is the bare JID that a ghost user ID stands for.
func (m Mapper) JIDForGhost(userID id.UserID) (jid.JID, error) {
	localpart, server, err := userID.Parse()
	if err != nil || server != m.Homeserver {
		return jid.JID{}, fmt.Errorf("%w: %q is not a user of %s", ErrNotMapped, userID, m.Homeserver)
	}
	return m.decode(localpart, "user ID "+userID.String())
}

// RoomAlias is the Matrix alias of the MUC room j (its bare JID).
func (m Mapper) RoomAlias(j jid.JID) (id.RoomAlias, error) {
	enc, err := encodeBare(j)
	if err != nil {
		return "", err
	}
	return id.NewRoomAlias(m.Prefix+enc, m.Homeserver), nil
}

// JIDForAlias is the MUC room that an alias stands for.
func (m Mapper) JIDForAlias(alias id.RoomAlias) (jid.JID, error) {
	s := alias.String()
	if !strings.HasPrefix(s, "#") || !strings.HasSuffix(s, ":"+m.Homeserver) {
		return jid.JID{}, fmt.Errorf("%w: %q is not an alias of %s", ErrNotMapped, alias, m.Homeserver)
	}
	return m.decode(s[1:len(s)-len(m.Homeserver)-1], "alias "+s)
}

func (m Mapper) decode(localpart, what string) (jid.JID, error) {
	encoded, ok := strings.CutPrefix(localpart, m.Prefix)
	if !ok || encoded == "" {
		return jid.JID{}, fmt.Errorf("%w: %s does not start with %q", ErrNotMapped, what, m.Prefix)
	}
	raw, err := id.DecodeUserLocalpart(encoded)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %s: %v", ErrNotMapped, what, err)
	}
	j, err := jid.Parse(raw)
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: %s is not a valid JID: %v", ErrNotMapped, what, err)
	}
	// Only the canonical spelling maps back: "=61" and "a" must not both be "a".
	if j.Resourcepart() != "" || m.Prefix+id.EncodeUserLocalpart(j.String()) != localpart {
		return jid.JID{}, fmt.Errorf("%w: %s is not in canonical form", ErrNotMapped, what)
	}
	return j, nil
}

// PuppetJID is the JID through which the Matrix user appears in XMPP: the user ID without
// its sigil, "local@server", XEP-0106-escaped as the localpart of a JID on the component.
// User IDs that XMPP cannot represent exactly (upper case, which JID localparts fold, or
// characters PRECIS forbids) are an error rather than a lossy mapping.
func (m Mapper) PuppetJID(userID id.UserID) (jid.JID, error) {
	localpart, server, err := userID.Parse()
	if err != nil {
		return jid.JID{}, fmt.Errorf("xid: invalid user ID %q: %w", userID, err)
	}
	j, err := jid.New(escapeLocal(localpart+"@"+server), m.Component, "")
	if err != nil {
		return jid.JID{}, fmt.Errorf("xid: user ID %q has no JID: %w", userID, err)
	}
	if back, err := m.UserIDForPuppet(j); err != nil || back != userID {
		return jid.JID{}, fmt.Errorf("xid: user ID %q cannot be represented exactly in XMPP", userID)
	}
	return j, nil
}

// UserIDForPuppet is the Matrix user behind a JID on the component.
func (m Mapper) UserIDForPuppet(j jid.JID) (id.UserID, error) {
	if j.Domainpart() != m.Component || j.Localpart() == "" {
		return "", fmt.Errorf("%w: %q is not a JID of %s", ErrNotMapped, j, m.Component)
	}
	raw := unescapeLocal(j.Localpart())
	at := strings.LastIndexByte(raw, '@')
	if at <= 0 || at == len(raw)-1 {
		return "", fmt.Errorf("%w: %q does not name a Matrix user", ErrNotMapped, j)
	}
	userID := id.NewUserID(raw[:at], raw[at+1:])
	if _, _, err := userID.ParseAndValidateRelaxed(); err != nil {
		return "", fmt.Errorf("%w: %q does not name a valid Matrix user: %v", ErrNotMapped, j, err)
	}
	if escapeLocal(raw) != j.Localpart() {
		return "", fmt.Errorf("%w: %q is not in canonical form", ErrNotMapped, j)
	}
	return userID, nil
}
