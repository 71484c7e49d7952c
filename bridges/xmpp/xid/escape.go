package xid

import "strings"

// XEP-0106 (JID Escaping), written here because mellium.im/xmpp/jid's Unescape (v0.22.0)
// reads the wrong bytes for an escape sequence that is not at the start of its input (and
// can index out of range).

// escapes are the characters XEP-0106 escapes, with their sequences.
var escapes = map[byte]string{
	' ': `\20`, '"': `\22`, '&': `\26`, '\'': `\27`, '/': `\2f`,
	':': `\3a`, '<': `\3c`, '>': `\3e`, '@': `\40`, '\\': `\5c`,
}

// unescapes maps each escape sequence (without its backslash) back to its character.
var unescapes = func() map[string]byte {
	m := make(map[string]byte, len(escapes))
	for c, seq := range escapes {
		m[seq[1:]] = c
	}
	return m
}()

// escapeLocal escapes s for a JID localpart. A backslash is escaped only where it would
// otherwise start an escape sequence, as the XEP says.
func escapeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		seq, ok := escapes[c]
		switch {
		case c == '\\' && !startsEscape(s[i+1:]):
			b.WriteByte(c)
		case ok:
			b.WriteString(seq)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeLocal reverses escapeLocal.
func unescapeLocal(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && startsEscape(s[i+1:]) {
			b.WriteByte(unescapes[strings.ToLower(s[i+1:i+3])])
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func startsEscape(s string) bool {
	if len(s) < 2 {
		return false
	}
	_, ok := unescapes[strings.ToLower(s[:2])]
	return ok
}
