package stanza

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		max     int
		want    error
		kind    string
		fromJID string
	}{
		{"message", `<message xmlns="jabber:component:accept" from="alice@x.example/phone" to="bob@matrix.x.example" id="1" type="chat"><body>hi</body></message>`, 0, nil, "message", "alice@x.example/phone"},
		{"presence client ns", `<presence xmlns="jabber:client" from="alice@x.example"/>`, 0, nil, "presence", "alice@x.example"},
		{"iq", `<iq xmlns="jabber:component:accept" type="get" id="p"><ping xmlns="urn:xmpp:ping"/></iq>`, 0, nil, "iq", ""},
		{"too large", `<message xmlns="jabber:client"><body>` + strings.Repeat("x", 100) + `</body></message>`, 64, ErrTooLarge, "", ""},
		{"doctype", `<!DOCTYPE message [<!ENTITY x "y">]><message xmlns="jabber:client"><body>&x;</body></message>`, 0, ErrForbidden, "", ""},
		{"billion laughs", `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><message xmlns="jabber:client">&lol2;</message>`, 0, ErrForbidden, "", ""},
		{"processing instruction", `<?xml-stylesheet href="x"?><message xmlns="jabber:client"/>`, 0, ErrForbidden, "", ""},
		{"undeclared entity", `<message xmlns="jabber:client"><body>&evil;</body></message>`, 0, ErrMalformed, "", ""},
		{"truncated", `<message xmlns="jabber:client"><body>hi</body>`, 0, ErrMalformed, "", ""},
		{"two roots", `<message xmlns="jabber:client"/><message xmlns="jabber:client"/>`, 0, ErrMalformed, "", ""},
		{"text outside", `junk<message xmlns="jabber:client"/>`, 0, ErrMalformed, "", ""},
		{"element name that broke round trips", `<message xmlns="jabber:client"><x::body>hi</::body></message>`, 0, ErrMalformed, "", ""},
		{"attribute name that broke round trips", `<message xmlns="jabber:client"><body ::from="a@b">hi</body></message>`, 0, ErrMalformed, "", ""},
		{"wrong namespace", `<message xmlns="urn:example"/>`, 0, ErrNotStanza, "", ""},
		{"not a stanza", `<stream:error xmlns:stream="http://etherx.jabber.org/streams"/>`, 0, ErrNotStanza, "", ""},
		{"invalid from", `<message xmlns="jabber:client" from="@@"/>`, 0, ErrBadAddress, "", ""},
		{"invalid to", `<message xmlns="jabber:client" to="a@b/` + strings.Repeat("r", 1100) + `"/>`, 0, ErrBadAddress, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.raw), tt.max)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Kind != tt.kind || s.From.String() != tt.fromJID {
				t.Fatalf("got %s from %q", s.Kind, s.From)
			}
		})
	}
}

// FuzzParse: Parse never panics, honours the size limit, and an accepted stanza has a
// known kind.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`<message xmlns="jabber:component:accept" from="a@b/c" to="d@e" id="1"><body>hi</body></message>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><iq xmlns="jabber:client"/>`))
	f.Add([]byte(`<presence xmlns="jabber:client" from="a@b"><x:y xmlns:x="q"/></presence>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		s, err := Parse(raw, 4096)
		if err != nil {
			return
		}
		if len(raw) > 4096 {
			t.Fatal("accepted oversize input")
		}
		if s.Kind != "message" && s.Kind != "presence" && s.Kind != "iq" {
			t.Fatalf("accepted kind %q", s.Kind)
		}
	})
}
