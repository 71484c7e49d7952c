package sipuri

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNotMapped is wrapped by every error of the reverse mappings (GhostAOR,
	// MatrixUser): the identifier is not one this bridge hands out.
	ErrNotMapped = errors.New("sipuri: not a mapped address")
	// ErrLoop is wrapped when an identifier belongs to the bridge itself (a ghost of the
	// bridge as a SIP user, an AOR on the bridge's domain as a ghost) and mapping it would
	// loop messages through the bridge.
	ErrLoop = errors.New("sipuri: address belongs to the bridge itself")
)

// DefaultPrefix is the localpart prefix of the bridge's ghosts.
const DefaultPrefix = "_sip_"

// maxUserIDLen is the longest Matrix user ID, "@localpart:server", in bytes.
const maxUserIDLen = 255

// Mapper maps between one homeserver and the bridge's SIP domain. All fields are required
// (check them with Validate at start); a Mapper is immutable and safe for concurrent use.
// With an empty Prefix every localpart counts as a ghost, so UserAOR refuses everybody.
type Mapper struct {
	// Homeserver is the Matrix server name, such as "example.org".
	Homeserver string
	// Domain is the bridge's SIP domain, such as "matrix.example.org"; Matrix users are
	// AORs on it.
	Domain string
	// Prefix of ghost localparts, such as DefaultPrefix; lower case [a-z0-9._=/+-].
	Prefix string
}

// Validate checks the fields of m.
func (m Mapper) Validate() error {
	var errs []error
	if !validServerName(m.Homeserver) {
		errs = append(errs, fmt.Errorf("sipuri: homeserver %q is not a Matrix server name", m.Homeserver))
	}
	if h, err := canonHost(m.Domain); err != nil || h != m.Domain || strings.HasPrefix(h, "[") {
		errs = append(errs, fmt.Errorf("sipuri: domain %q is not a lower case host name or IPv4 address", m.Domain))
	}
	if m.Prefix == "" || !validLocalpart(m.Prefix) {
		errs = append(errs, fmt.Errorf("sipuri: prefix %q is not a valid start of a Matrix localpart", m.Prefix))
	}
	return errors.Join(errs...)
}

// GhostLocalpart is the localpart of the ghost of the SIP user a: Prefix followed by
// "user@host" encoded as mautrix encodes localparts (so "Alice@example.org" is
// "_sip__alice=40example.org"). AORs on the bridge's own Domain are refused with ErrLoop
// (they are Matrix users), AORs whose ghost user ID would exceed 255 bytes with ErrTooLong.
func (m Mapper) GhostLocalpart(a AOR) (string, error) {
	if err := a.Validate(); err != nil {
		return "", err
	}
	if a.Host == m.Domain {
		return "", fmt.Errorf("%w: %s is on the bridge's domain", ErrLoop, a)
	}
	localpart := m.Prefix + encodeLocalpart(a.User+"@"+a.Host)
	if n := len("@:") + len(localpart) + len(m.Homeserver); n > maxUserIDLen {
		return "", fmt.Errorf("%w: ghost of %s would have %d bytes, at most %d", ErrTooLong, a, n, maxUserIDLen)
	}
	return localpart, nil
}

// GhostAOR is the SIP user whose ghost has the given localpart: the inverse of
// GhostLocalpart, accepting only what GhostLocalpart returns.
func (m Mapper) GhostAOR(localpart string) (AOR, error) {
	encoded, ok := strings.CutPrefix(localpart, m.Prefix)
	if !ok || m.Prefix == "" || encoded == "" {
		return AOR{}, fmt.Errorf("%w: localpart %q does not start with %q", ErrNotMapped, localpart, m.Prefix)
	}
	raw, err := decodeLocalpart(encoded)
	if err != nil {
		return AOR{}, fmt.Errorf("%w: localpart %q: %w", ErrNotMapped, localpart, err)
	}
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return AOR{}, fmt.Errorf("%w: localpart %q does not encode user@host", ErrNotMapped, localpart)
	}
	a := AOR{User: raw[:at], Host: raw[at+1:]}
	if err := a.Validate(); err != nil {
		return AOR{}, fmt.Errorf("%w: localpart %q: %w", ErrNotMapped, localpart, err)
	}
	// Only the canonical spelling maps back: "=61" and "a" must not both be "a".
	if again, err := m.GhostLocalpart(a); err != nil || again != localpart {
		return AOR{}, fmt.Errorf("%w: localpart %q is not in canonical form", ErrNotMapped, localpart)
	}
	return a, nil
}

// IsGhost reports whether localpart (on the bridge's homeserver) is in the bridge's ghost
// namespace, whether or not it decodes to an AOR.
func (m Mapper) IsGhost(localpart string) bool {
	return strings.HasPrefix(localpart, m.Prefix)
}

// encodeLocalpart is the Matrix spec's "mapping from other character sets" as mautrix's
// id.EncodeUserLocalpart writes it: [a-z0-9.+-] stay, A-Z become '_' + lower case, '_'
// becomes "__", every other byte "=xx" in lower case hex.
func encodeLocalpart(s string) string {
	const lowerHex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', isDigit(c), c == '.', c == '+', c == '-':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte('_')
			b.WriteByte(c + 'a' - 'A')
		case c == '_':
			b.WriteString("__")
		default:
			b.WriteByte('=')
			b.WriteByte(lowerHex[c>>4])
			b.WriteByte(lowerHex[c&15])
		}
	}
	return b.String()
}

// decodeLocalpart reverses encodeLocalpart. It rejects bytes encodeLocalpart never writes
// and malformed sequences; other non-canonical spellings ("=61") are left to the caller's
// round trip check.
func decodeLocalpart(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', isDigit(c), c == '.', c == '+', c == '-':
			b.WriteByte(c)
		case c == '_':
			if i+1 >= len(s) {
				return "", errors.New("'_' at the end")
			}
			switch n := s[i+1]; {
			case n == '_':
				b.WriteByte('_')
			case n >= 'a' && n <= 'z':
				b.WriteByte(n - 'a' + 'A')
			default:
				return "", fmt.Errorf("bad sequence %q", s[i:i+2])
			}
			i++
		case c == '=':
			if i+3 > len(s) {
				return "", errors.New("truncated '=' sequence")
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("bad sequence %q", s[i:i+3])
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		default:
			return "", fmt.Errorf("byte %q not allowed", rune(c))
		}
	}
	return b.String(), nil
}

// validLocalpart: the current Matrix grammar of user localparts, [a-z0-9._=/+-]+.
func validLocalpart(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z') && !isDigit(c) && strings.IndexByte("._=/+-", c) < 0 {
			return false
		}
	}
	return s != ""
}
