package sipuri

import (
	"fmt"
	"net/netip"
	"strings"
)

// UserAOR is the AOR on m.Domain through which the Matrix user userID ("@local:server")
// appears in SIP:
//
//   - a user of m.Homeserver whose localpart is in the current Matrix grammar, has no '='
//     and does not start with '/' ([a-z0-9._+-][a-z0-9._/+-]*) keeps it:
//     "@alice:hs.example" is "alice@<Domain>";
//   - every other user (other servers, historical localparts with upper case or other
//     characters, localparts with '=' or a leading '/') is "local@server" escaped: each
//     byte outside [A-Za-z0-9-_.!~*'()+/], and a leading '/', becomes "=xx" (lower case
//     hex), so "@bob:other.example" is
//     "bob=40other.example@<Domain>" and "@Bob:hs.example:8448" is
//     "Bob=40hs.example=3a8448@<Domain>". The result uses only characters a SIP user part
//     carries without percent-escaping, and always contains '=', so it never collides
//     with the first form.
//
// Ghosts of this bridge (users of m.Homeserver in its Prefix namespace) are refused with
// ErrLoop; user IDs whose AOR would exceed MaxLen with ErrTooLong.
func (m Mapper) UserAOR(userID string) (AOR, error) {
	local, server, err := parseUserID(userID)
	if err != nil {
		return AOR{}, err
	}
	if server == m.Homeserver && m.IsGhost(local) {
		return AOR{}, fmt.Errorf("%w: %q is a ghost of the SIP bridge", ErrLoop, userID)
	}
	user := local
	if server != m.Homeserver || !isSimpleLocalpart(local) {
		user = escapeMatrix(local + "@" + server)
	}
	a := AOR{User: user, Host: m.Domain}
	if err := a.Validate(); err != nil {
		return AOR{}, fmt.Errorf("sipuri: user ID %q has no AOR: %w", userID, err)
	}
	return a, nil
}

// MatrixUser is the Matrix user ID behind an AOR on m.Domain: the inverse of UserAOR,
// accepting only what UserAOR returns.
func (m Mapper) MatrixUser(a AOR) (string, error) {
	if a.Host != m.Domain || a.User == "" {
		return "", fmt.Errorf("%w: %s is not an address on %s", ErrNotMapped, a, m.Domain)
	}
	userID := "@" + a.User + ":" + m.Homeserver
	if strings.IndexByte(a.User, '=') >= 0 {
		raw, err := unescapeMatrix(a.User)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrNotMapped, a, err)
		}
		at := strings.LastIndexByte(raw, '@')
		if at < 0 {
			return "", fmt.Errorf("%w: %s does not encode a Matrix user", ErrNotMapped, a)
		}
		userID = "@" + raw[:at] + ":" + raw[at+1:]
	}
	// Only the canonical spelling maps back, and never to a ghost of the bridge.
	again, err := m.UserAOR(userID)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrNotMapped, a, err)
	}
	if again != a {
		return "", fmt.Errorf("%w: %s is not in canonical form", ErrNotMapped, a)
	}
	return userID, nil
}

// isSimpleLocalpart: a localpart that is its own SIP user part. A leading '/' is left
// out so that no user part starts with "//" ("sip://" would need a percent-escape).
func isSimpleLocalpart(s string) bool {
	return validLocalpart(s) && strings.IndexByte(s, '=') < 0 && s[0] != '/'
}

// isMatrixRaw: the bytes escapeMatrix keeps (RFC 3261 unreserved, '+' and '/').
func isMatrixRaw(c byte) bool {
	return isUnreserved(c) || c == '+' || c == '/'
}

func escapeMatrix(s string) string {
	const lowerHex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isMatrixRaw(c) && (i > 0 || c != '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(lowerHex[c>>4])
		b.WriteByte(lowerHex[c&15])
	}
	return b.String()
}

// unescapeMatrix reverses escapeMatrix; non-canonical spellings are left to the caller's
// round trip check.
func unescapeMatrix(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			if i+3 > len(s) {
				return "", fmt.Errorf("truncated '=' sequence in %q", s)
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("bad sequence %q", s[i:i+3])
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case isMatrixRaw(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("byte %q not allowed", rune(c))
		}
	}
	return b.String(), nil
}

// parseUserID splits a Matrix user ID and checks it with the spec's relaxed rules:
// at most 255 bytes, a non-empty localpart of printable ASCII without ':' (historical
// localparts included), a valid server name.
func parseUserID(userID string) (local, server string, err error) {
	if len(userID) > maxUserIDLen {
		return "", "", fmt.Errorf("sipuri: user ID too long (%d bytes, at most %d)", len(userID), maxUserIDLen)
	}
	rest, ok := strings.CutPrefix(userID, "@")
	local, server, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || local == "" {
		return "", "", fmt.Errorf("sipuri: %q is not a Matrix user ID", userID)
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c < 0x21 || c > 0x7e {
			return "", "", fmt.Errorf("sipuri: user ID %q has a character not allowed in a localpart", userID)
		}
	}
	if !validServerName(server) {
		return "", "", fmt.Errorf("sipuri: user ID %q has an invalid server name", userID)
	}
	return local, server, nil
}

// validServerName: server_name = hostname [ ":" port ], hostname = IPv4address /
// "[" IPv6address "]" / dns-name, dns-name = 1*255 [A-Za-z0-9.-], port = 1*5 DIGIT.
func validServerName(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host, port = s[:end+1], s[end+1:]
		if port != "" {
			p, ok := strings.CutPrefix(port, ":")
			if !ok {
				return false
			}
			port = p
			if port == "" {
				return false
			}
		}
		ip, err := netip.ParseAddr(host[1:end])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return false
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if port == "" {
				return false
			}
		}
		if host == "" || len(host) > 255 {
			return false
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; !isAlnum(c) && c != '.' && c != '-' {
				return false
			}
		}
	}
	if len(port) > 5 {
		return false
	}
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
	}
	return true
}
