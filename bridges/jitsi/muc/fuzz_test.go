package muc

import (
	"testing"
	"unicode/utf8"
)

// FuzzParsePresence checks that no presence makes the parser panic, and that what it
// keeps is bounded and clean.
func FuzzParsePresence(f *testing.F) {
	for _, s := range []string{
		`<presence from="r@c.x/n"><x xmlns="http://jabber.org/protocol/muc#user"><item jid="a@x/r" nick="m"/><status code="110"/><status code="303"/><destroy/></x><nick xmlns="http://jabber.org/protocol/nick">A</nick><identity><user><id>i</id><name>N</name><avatar>u</avatar></user></identity></presence>`,
		`<presence type="error" from="r@c.x/n"><error type="cancel"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/></error></presence>`,
		`<presence type="unavailable"/>`,
		`<presence><a><b><c>` + "\x00\u202e" + `</c></b></a></presence>`,
		`<!DOCTYPE x><presence/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := parsePresenceBytes(raw)
		if err != nil {
			return
		}
		for _, s := range []string{p.XNick, p.Name, p.ID, p.Avatar} {
			if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxNameRunes {
				t.Fatalf("unclean value %q", s)
			}
			for _, r := range s {
				if r < 0x20 || r == 0x7f || r == '\u202e' {
					t.Fatalf("control character in %q", s)
				}
			}
		}
		if len(p.Statuses) > 16 {
			t.Fatalf("%d status codes kept", len(p.Statuses))
		}
		_ = occupantFrom(p, "n")
	})
}
