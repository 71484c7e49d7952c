// Package addr maps email addresses to Matrix ghost user IDs and back, for the email
// bridge. The ghost of "local@domain" is @<prefix><encoded address>:<homeserver>, the
// address encoded with the Matrix spec's "mapping from other character sets" (so upper
// case, '@' and non-ASCII survive the trip). The domain is lower-cased, since DNS names
// are case-insensitive; the local part is kept as it is, since RFC 5321 lets the receiving
// server treat it case-sensitively.
//
// The mapping is reversible, and the reverse accepts only the canonical form: two different
// user IDs never map to one address, so a ghost cannot be spoofed by an alternative
// spelling. The package knows Matrix IDs but nothing of the appservice or of IMAP and SMTP.
package addr

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"

	"maunium.net/go/mautrix/id"
)

// ErrNotMapped is wrapped by every error of AddressForGhost.
var ErrNotMapped = errors.New("addr: not a mapped user ID")

// ErrInvalidAddress is wrapped by every error of GhostUserID.
var ErrInvalidAddress = errors.New("addr: invalid email address")

// DefaultPrefix is the localpart prefix of the bridge's ghosts.
const DefaultPrefix = "_email_"

// MaxAddressLen is the longest address (in bytes) that has a ghost: the RFC 5321 limit of
// a forward path without its angle brackets.
const MaxAddressLen = 254

// maxUserIDLen is the Matrix limit on the length of a user ID, in bytes.
const maxUserIDLen = 255

// Mapper maps between email addresses and the ghosts of one homeserver. All fields are
// required; a Mapper is immutable and safe for concurrent use.
type Mapper struct {
	// Homeserver is the Matrix server name, such as "example.org".
	Homeserver string
	// Prefix of ghost localparts, such as DefaultPrefix.
	Prefix string
}

// GhostUserID is the Matrix ghost of an email address. address is anything that
// net/mail.ParseAddress accepts ("alice@example.org", "Alice <alice@example.org>"); only
// the address itself counts, not the display name. Addresses without a domain, longer
// than MaxAddressLen, whose local part would need quoting, or whose ghost would exceed the
// Matrix limit of 255 bytes are refused with an error wrapping ErrInvalidAddress.
func (m Mapper) GhostUserID(address string) (id.UserID, error) {
	canonical, err := Canonical(address)
	if err != nil {
		return "", err
	}
	userID := id.NewUserID(m.Prefix+id.EncodeUserLocalpart(canonical), m.Homeserver)
	if len(userID) > maxUserIDLen {
		return "", fmt.Errorf("%w: the ghost of %q would be longer than %d bytes", ErrInvalidAddress, canonical, maxUserIDLen)
	}
	return userID, nil
}

// Canonical is the form of address that GhostUserID maps and AddressForGhost returns: the
// bare addr-spec with its domain lower-cased. It fails like GhostUserID.
func Canonical(address string) (string, error) {
	if len(address) > MaxAddressLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidAddress, MaxAddressLen)
	}
	parsed, err := mail.ParseAddress(address)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrInvalidAddress, address, err)
	}
	at := strings.LastIndexByte(parsed.Address, '@')
	if at <= 0 || at == len(parsed.Address)-1 {
		return "", fmt.Errorf("%w: %q has no local part or no domain", ErrInvalidAddress, address)
	}
	canonical := parsed.Address[:at] + "@" + strings.ToLower(parsed.Address[at+1:])
	// net/mail unquotes local parts ("a b"@x becomes a b@x); such an address cannot be
	// written back unquoted, so it has no ghost rather than a lossy one.
	again, err := mail.ParseAddress(canonical)
	if err != nil || again.Address != canonical || again.Name != "" {
		return "", fmt.Errorf("%w: %q is not a plain addr-spec", ErrInvalidAddress, address)
	}
	if len(canonical) > MaxAddressLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidAddress, MaxAddressLen)
	}
	return canonical, nil
}

// AddressForGhost is the email address a ghost user ID stands for, in the canonical form
// (see Canonical). Only the canonical spelling of a ghost maps back; every other user ID
// gives an error wrapping ErrNotMapped.
func (m Mapper) AddressForGhost(userID id.UserID) (string, error) {
	localpart, server, err := userID.Parse()
	if err != nil || server != m.Homeserver {
		return "", fmt.Errorf("%w: %q is not a user of %s", ErrNotMapped, userID, m.Homeserver)
	}
	encoded, ok := strings.CutPrefix(localpart, m.Prefix)
	if !ok || encoded == "" {
		return "", fmt.Errorf("%w: %q does not start with %q", ErrNotMapped, userID, m.Prefix)
	}
	address, err := id.DecodeUserLocalpart(encoded)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrNotMapped, userID, err)
	}
	// Only the canonical spelling maps back: "=61" and "a", or an upper-case domain, must
	// not name the same mailbox as the canonical ghost.
	if again, err := m.GhostUserID(address); err != nil || again != userID {
		return "", fmt.Errorf("%w: %q is not the canonical ghost of an address", ErrNotMapped, userID)
	}
	return address, nil
}
