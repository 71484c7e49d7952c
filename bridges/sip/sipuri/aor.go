// Package sipuri is the addressing of the SIP bridge, kept apart from Matrix and the
// appservice so it can be reused and fuzzed alone:
//
//   - an AOR (address of record, user@host) is parsed from a SIP or SIPS URI and kept in
//     canonical form: the user part percent-decoded and case-sensitive, the host lower case,
//     port, parameters and headers dropped;
//   - a SIP user is the Matrix ghost whose localpart is Prefix + the AOR "user@host" encoded
//     with the Matrix spec's "mapping from other character sets", as mautrix encodes it
//     (upper case -> '_' + lower case, '_' -> "__", bytes other than [a-z0-9.+-] -> "=xx"),
//     e.g. "alice@example.org" is the ghost "_sip_alice=40example.org";
//   - a Matrix user is an AOR on the bridge's own SIP domain: "@alice:<Homeserver>" is
//     "alice@<Domain>", every other user is escaped reversibly (see [Mapper.UserAOR]);
//   - a [DomainList] says which SIP domains may talk to the bridge.
//
// Every mapping is reversible, and the reverse accepts only the canonical form: two
// different SIP users never map to one ghost and two Matrix users never to one AOR, so no
// identity can be spoofed by an alternative spelling. Ghosts of the bridge never map to
// an AOR and AORs on the bridge's own domain never to a ghost, so nothing loops.
package sipuri

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest SIP URI (input of [ParseAOR] and output of [AOR.URI]) in bytes.
const MaxLen = 256

var (
	// ErrInvalidAOR is wrapped by every error of ParseAOR.
	ErrInvalidAOR = errors.New("sipuri: invalid SIP address")
	// ErrTelURI is returned (wrapping ErrInvalidAOR) for a tel: URI, which names a phone
	// number rather than a SIP user; the bridge addresses SIP users only.
	ErrTelURI = fmt.Errorf("%w: tel: URIs are not supported, use a sip: URI (user=phone)", ErrInvalidAOR)
	// ErrTooLong is wrapped when an address or the identifier it maps to exceeds its limit.
	ErrTooLong = errors.New("sipuri: address too long")
)

// AOR is a SIP address of record in canonical form: User is the percent-decoded user part
// (case-sensitive, never empty, valid UTF-8 without control characters) and Host the lower
// case host name, dotted IPv4 address or bracketed IPv6 reference ("[2001:db8::1]"). The
// zero AOR is not valid; get AORs from ParseAOR or the Mapper.
type AOR struct {
	User, Host string
}

// String is the AOR as "user@host", the user part percent-encoded where SIP needs it (so
// the text is unambiguous and ParseAOR reads it back).
func (a AOR) String() string {
	return escapeUser(a.User) + "@" + a.Host
}

// URI is the AOR as a SIP URI, "sip:user@host".
func (a AOR) URI() string {
	return "sip:" + a.String()
}

// Validate reports whether a is in canonical form, i.e. what ParseAOR returns for its URI.
func (a AOR) Validate() error {
	b, err := ParseAOR(a.URI())
	if err != nil {
		return err
	}
	if b != a {
		return fmt.Errorf("%w: %q is not in canonical form", ErrInvalidAOR, a.URI())
	}
	return nil
}

// ParseAOR reads a SIP address of record. It accepts "sip:alice@example.org",
// "sips:alice@example.org", either in angle brackets ("<sip:alice@example.org>", without a
// display name), and the bare "alice@example.org"; surrounding blanks are ignored. Port,
// URI parameters and headers are checked for stray characters and dropped. The user part
// is required and percent-decoded (so "%61lice" and "alice" are the same user, and a
// reserved character such as ';' is the same whether escaped or not); the host is lower
// cased, a trailing dot dropped, an IPv6 reference written in its canonical form. Rejected:
// inputs and canonical URIs longer than MaxLen bytes, other schemes (tel: with ErrTelURI),
// passwords in the URI, characters RFC 3261 does not allow, a user that decodes to invalid
// UTF-8 or control characters, and internationalized host names (use their A-labels).
func ParseAOR(s string) (AOR, error) {
	if len(s) > MaxLen {
		return AOR{}, fmt.Errorf("%w: %w: %d bytes, at most %d", ErrInvalidAOR, ErrTooLong, len(s), MaxLen)
	}
	in := strings.Trim(s, " \t")
	if strings.HasPrefix(in, "<") || strings.HasSuffix(in, ">") {
		if len(in) < 2 || in[0] != '<' || in[len(in)-1] != '>' {
			return AOR{}, fmt.Errorf("%w: unbalanced angle brackets (display names are not accepted)", ErrInvalidAOR)
		}
		in = in[1 : len(in)-1]
	}
	at := strings.IndexByte(in, '@')
	if colon := strings.IndexByte(in, ':'); colon >= 0 && (at < 0 || colon < at) && isScheme(in[:colon]) {
		switch scheme := strings.ToLower(in[:colon]); scheme {
		case "sip", "sips":
			in = in[colon+1:]
			at -= colon + 1
		case "tel":
			return AOR{}, ErrTelURI
		default:
			return AOR{}, fmt.Errorf("%w: unsupported URI scheme %q (only sip and sips)", ErrInvalidAOR, scheme)
		}
	}
	if at < 0 {
		return AOR{}, fmt.Errorf("%w: no user part (want user@host)", ErrInvalidAOR)
	}
	userinfo, rest := in[:at], in[at+1:]
	if strings.IndexByte(userinfo, ':') >= 0 {
		// The password is deliberately not quoted.
		return AOR{}, fmt.Errorf("%w: URI carries a password", ErrInvalidAOR)
	}
	if strings.HasPrefix(userinfo, "//") {
		return AOR{}, fmt.Errorf("%w: \"//\" after the scheme (SIP URIs are not hierarchical; escape a leading '/' as %%2F)", ErrInvalidAOR)
	}
	user, err := unescapeUser(userinfo)
	if err != nil {
		return AOR{}, err
	}
	hostport, tail := rest, ""
	if i := strings.IndexAny(rest, ";?"); i >= 0 {
		hostport, tail = rest[:i], rest[i:]
	}
	if err := checkTail(tail); err != nil {
		return AOR{}, err
	}
	host, err := splitPort(hostport)
	if err != nil {
		return AOR{}, err
	}
	if host, err = canonHost(host); err != nil {
		return AOR{}, err
	}
	a := AOR{User: user, Host: host}
	if n := len(a.URI()); n > MaxLen {
		return AOR{}, fmt.Errorf("%w: %w: canonical URI has %d bytes, at most %d", ErrInvalidAOR, ErrTooLong, n, MaxLen)
	}
	return a, nil
}

// isScheme: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }

// isUnreserved: RFC 3261 unreserved = alphanum / mark.
func isUnreserved(c byte) bool {
	return isAlnum(c) || strings.IndexByte("-_.!~*'()", c) >= 0
}

// isUserChar: the characters RFC 3261 allows unescaped in a user part (unreserved /
// user-unreserved).
func isUserChar(c byte) bool {
	return isUnreserved(c) || strings.IndexByte("&=+$,;?/", c) >= 0
}

const upperHex = "0123456789ABCDEF"

// escapeUser percent-encodes the bytes a user part cannot carry as they are, and the
// first '/' of a leading "//" (which would make "sip://" look hierarchical).
func escapeUser(user string) string {
	var b strings.Builder
	for i := 0; i < len(user); i++ {
		c := user[i]
		if isUserChar(c) && (i > 0 || !strings.HasPrefix(user, "//")) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
	return b.String()
}

// unescapeUser decodes and checks a user part.
func unescapeUser(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty user part", ErrInvalidAOR)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+3 > len(s) {
				return "", fmt.Errorf("%w: truncated escape in user part %q", ErrInvalidAOR, s)
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", fmt.Errorf("%w: bad escape %q in user part %q", ErrInvalidAOR, s[i:i+3], s)
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case isUserChar(c):
			b.WriteByte(c)
		default:
			return "", fmt.Errorf("%w: character %q not allowed in user part %q", ErrInvalidAOR, rune(c), s)
		}
	}
	user := b.String()
	if !utf8.ValidString(user) {
		return "", fmt.Errorf("%w: user part %q is not UTF-8", ErrInvalidAOR, s)
	}
	for _, r := range user {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", fmt.Errorf("%w: user part %q contains a control character", ErrInvalidAOR, s)
		}
	}
	return user, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case isDigit(c):
		return c - '0', true
	case c|0x20 >= 'a' && c|0x20 <= 'f':
		return (c | 0x20) - 'a' + 10, true
	}
	return 0, false
}

// checkTail checks URI parameters and headers (";..." and "?...") for characters that
// cannot occur there; their content is not interpreted.
func checkTail(tail string) error {
	for i := 0; i < len(tail); i++ {
		c := tail[i]
		if !isUnreserved(c) && strings.IndexByte("[]/:&+$%=;?", c) < 0 {
			return fmt.Errorf("%w: character %q not allowed in URI parameters or headers", ErrInvalidAOR, rune(c))
		}
	}
	return nil
}

// splitPort removes an optional ":port" from hostport.
func splitPort(hostport string) (string, error) {
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", fmt.Errorf("%w: unterminated IPv6 reference %q", ErrInvalidAOR, hostport)
		}
		host, port = hostport[:end+1], hostport[end+1:]
		if port != "" && port[0] != ':' {
			return "", fmt.Errorf("%w: junk after IPv6 reference in %q", ErrInvalidAOR, hostport)
		}
		port = strings.TrimPrefix(port, ":")
		if port == "" && strings.HasSuffix(hostport, ":") {
			return "", fmt.Errorf("%w: empty port in %q", ErrInvalidAOR, hostport)
		}
	} else if i := strings.IndexByte(hostport, ':'); i >= 0 {
		host, port = hostport[:i], hostport[i+1:]
		if port == "" {
			return "", fmt.Errorf("%w: empty port in %q", ErrInvalidAOR, hostport)
		}
	}
	if port != "" {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil || len(port) > 5 || !isDigit(port[0]) {
			return "", fmt.Errorf("%w: bad port %q", ErrInvalidAOR, port)
		}
	}
	return host, nil
}

// canonHost checks a host (hostname / IPv4address / IPv6reference, RFC 3261 25.1) and
// returns its canonical form.
func canonHost(h string) (string, error) {
	if h == "" {
		return "", fmt.Errorf("%w: empty host", ErrInvalidAOR)
	}
	if h[0] == '[' {
		if len(h) < 2 || h[len(h)-1] != ']' {
			return "", fmt.Errorf("%w: bad IPv6 reference %q", ErrInvalidAOR, h)
		}
		ip, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return "", fmt.Errorf("%w: bad IPv6 reference %q", ErrInvalidAOR, h)
		}
		return "[" + ip.String() + "]", nil
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if len(h) > 253 {
		return "", fmt.Errorf("%w: host name too long", ErrInvalidAOR)
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("%w: bad host %q", ErrInvalidAOR, h)
		}
		for i := 0; i < len(l); i++ {
			if !isAlnum(l[i]) && l[i] != '-' {
				return "", fmt.Errorf("%w: bad host %q", ErrInvalidAOR, h)
			}
		}
	}
	// The top label of a host name starts with a letter; otherwise it is an IPv4 address.
	if top := labels[len(labels)-1]; isDigit(top[0]) {
		ip, err := netip.ParseAddr(h)
		if err != nil || !ip.Is4() {
			return "", fmt.Errorf("%w: bad IPv4 address %q", ErrInvalidAOR, h)
		}
		return ip.String(), nil
	}
	return h, nil
}
