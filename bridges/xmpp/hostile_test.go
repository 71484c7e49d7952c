package xmpp

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
)

// TestHostileStanzas: what the checks refuse never reaches the glue, and the sender gets a
// bad-request error (the component sends it for the error returned here).
func TestHostileStanzas(t *testing.T) {
	b, err := New(Config{Component: ComponentConfig{Address: "127.0.0.1:1", Domain: "matrix.example.org", Secret: "s"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, raw string }{
		{"entity declaration", `<!DOCTYPE m [<!ENTITY x "y">]><message xmlns="jabber:component:accept" from="a@b" to="c@matrix.example.org"><body>&x;</body></message>`},
		{"billion laughs", `<!DOCTYPE l [<!ENTITY a "a"><!ENTITY b "&a;&a;&a;">]><message xmlns="jabber:component:accept"><body>&b;</body></message>`},
		{"processing instruction", `<?evil x?><message xmlns="jabber:component:accept"/>`},
		{"two roots", `<message xmlns="jabber:component:accept"/><message xmlns="jabber:component:accept"/>`},
		{"oversize", `<message xmlns="jabber:component:accept"><body>` + strings.Repeat("a", DefaultMaxStanzaBytes) + `</body></message>`},
		{"invalid from", `<message xmlns="jabber:component:accept" from="a@b@c" to="x@matrix.example.org"><body>hi</body></message>`},
		{"not a stanza", `<stream:features xmlns:stream="http://etherx.jabber.org/streams"/>`},
		{"unclosed", `<message xmlns="jabber:component:accept"><body>hi</message>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := b.handleStanza(context.Background(), []byte(tc.raw))
			var se component.StanzaError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a refusal with a stanza error", err)
			}
			if typ, cond, _ := se.StanzaError(); typ != "modify" || cond != "bad-request" {
				t.Errorf("stanza error %s/%s, want modify/bad-request", typ, cond)
			}
		})
	}
}
