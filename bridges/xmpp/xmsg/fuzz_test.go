package xmsg

import (
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzParseMessage: ParseMessage never panics, and what it reads, Marshal writes so that
// it reads back equal.
func FuzzParseMessage(f *testing.F) {
	for _, seed := range []string{
		`<message xmlns='jabber:component:accept' from='a@b.example/r' to='c@d.example' id='m1' type='chat'><body>hi</body></message>`,
		`<message xml:lang='de'><body xml:lang='en'>x</body><body>y</body><subject/><thread>t</thread></message>`,
		`<message><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p style='x'>a<br/><x:b xmlns:x='urn:x'/></p></body></html></message>`,
		`<message><reactions xmlns='urn:xmpp:reactions:0' id='m'><reaction>👍</reaction></reactions><reply xmlns='urn:xmpp:reply:0' to='a@b' id='x'/></message>`,
		`<message><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='3'/></fallback><body>&gt; a</body></message>`,
		`<message><apply-to xmlns='urn:xmpp:fasten:0' id='m0'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to></message>`,
		`<message><x xmlns='jabber:x:oob'><url>u</url><desc>d</desc></x><delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/></message>`,
		`<message><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>t</text></error></message>`,
		`<message><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='owner' jid='a@b'><actor nick='n'/></item><status code='104'/><invite to='c@d'/></x></message>`,
		`<message><stanza-id xmlns='urn:xmpp:sid:0' id='s' by='b'/><origin-id xmlns='urn:xmpp:sid:0' id='o'/><gone xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMessage(raw)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed message: %v\ninput %q", err, raw)
		}
		again, err := ParseMessage(out)
		if err != nil {
			t.Fatalf("ParseMessage(%q): %v\ninput %q", out, err, raw)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v\nthrough %q\ninput %q", m, again, out, raw)
		}
	})
}

// FuzzParsePresence: ParsePresence never panics, and what it reads, Marshal writes so that
// it reads back equal.
func FuzzParsePresence(f *testing.F) {
	for _, seed := range []string{
		`<presence xmlns='jabber:client' from='a@b.example/r' id='p'><show>away</show><status>s</status><priority>-1</priority></presence>`,
		`<presence><nick xmlns='http://jabber.org/protocol/nick'>n</nick><x xmlns='vcard-temp:x:update'><photo>ab</photo></x></presence>`,
		`<presence><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0' since='2024-01-01T00:00:00Z'/><password>p</password></x></presence>`,
		`<presence type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'><item nick='n' role='none'><reason>r</reason></item><status code='303'/></x></presence>`,
		`<presence type='error'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := ParsePresence(raw)
		if err != nil {
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed presence: %v\ninput %q", err, raw)
		}
		again, err := ParsePresence(out)
		if err != nil {
			t.Fatalf("ParsePresence(%q): %v\ninput %q", out, err, raw)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip changed the presence:\n%+v\n%+v\nthrough %q\ninput %q", p, again, out, raw)
		}
	})
}

// FuzzStripFallback: StripFallback never panics and never adds text.
func FuzzStripFallback(f *testing.F) {
	f.Add("> Alice wrote:\n> hi\nyes", 0, 20, 3, 1)
	f.Add("🎉🎉", -1, 1, 5, 99)
	f.Add("", 0, 0, 0, 0)
	f.Fuzz(func(t *testing.T, body string, s1, e1, s2, e2 int) {
		m := &Message{Body: body, Fallbacks: []Fallback{
			{For: NSReply, Ranges: []Range{{s1, e1}}},
			{For: NSReply, Ranges: []Range{{s2, e2}}},
			{For: "other"},
		}}
		got := m.StripFallback(NSReply)
		if utf8.RuneCountInString(got) > utf8.RuneCountInString(body) {
			t.Fatalf("StripFallback(%q) = %q, longer than the body", body, got)
		}
		if other := m.StripFallback("other"); other != "" {
			t.Fatalf("whole-body fallback left %q", other)
		}
		if none := m.StripFallback("none"); none != body {
			t.Fatalf("StripFallback without a fallback = %q; want the body %q", none, body)
		}
	})
}
