package ucri

import (
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// messageIDNamespace is the UUIDv5 namespace of DerivedMessageID. It is fixed forever:
// changing it would change every derived id, and a message rebuilt after a restart would no
// longer carry the id it was first sent with.
var messageIDNamespace = uuid.MustParse("782e7028-b7d3-44f8-b116-c686033a1ea5")

// NewMessageID returns a random UUID (version 4) for an envelope's messageId.
func NewMessageID() string {
	return uuid.NewString()
}

// DerivedMessageID returns a name-based UUID (version 5) of parts under Switchboard's fixed
// namespace. The same parts always give the same id, so a message that is rebuilt after a
// crash (from e.g. a Matrix event id and the destination OID) is sent again with the id the
// receiver may already have seen, and the receiver can drop the duplicate. The parts are
// length-prefixed before hashing, so ("ab", "c") and ("a", "bc") give different ids.
func DerivedMessageID(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
	}
	return uuid.NewSHA1(messageIDNamespace, []byte(b.String())).String()
}

// IsUUID reports whether s is a UUID in its 36-character text form
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hex digits of either case), the form JSON Schema's
// "uuid" format requires. URN prefixes, braces and the 32-digit form are not accepted.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHexDigit(c) {
				return false
			}
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// FormatTime formats t as UCRI2 date-times are sent: UTC, RFC 3339 with seconds and "Z",
// without fractional seconds (e.g. "2024-01-01T10:05:08Z").
func FormatTime(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
}

// IsOID reports whether s is an OID as the UCRI2 schemas define it: it matches
// ^([0-9]+\.?)+$, i.e. groups of digits separated by single dots (a trailing dot is
// allowed by that pattern).
func IsOID(s string) bool {
	if s == "" || s[0] == '.' {
		return false
	}
	prevDot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		case '0' <= c && c <= '9':
			prevDot = false
		default:
			return false
		}
	}
	return true
}
