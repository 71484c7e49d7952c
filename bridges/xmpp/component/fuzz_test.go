package component

import (
	"bytes"
	"encoding/xml"
	"testing"
)

// FuzzParseStanza: parseStanza never panics, and what it accepts encodes to XML that
// parses again to the same kind and id (what Send writes is what it checked).
func FuzzParseStanza(f *testing.F) {
	f.Add([]byte(`<message from="bob@matrix.localhost" to="alice@localhost" id="m1" type="chat"><body>hi</body></message>`))
	f.Add([]byte(`<iq type="get" id="p" xmlns="jabber:client"><ping xmlns="urn:xmpp:ping"/></iq>`))
	f.Add([]byte(`<presence><x:y xmlns:x="urn:x"><x:z/></x:y></presence>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		toks, kind, id, err := parseStanza(raw)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		enc := xml.NewEncoder(&buf)
		for _, tok := range toks {
			if err := enc.EncodeToken(tok); err != nil {
				t.Fatalf("accepted stanza does not encode: %v (input %q)", err, raw)
			}
		}
		if err := enc.Flush(); err != nil {
			t.Fatal(err)
		}
		_, kind2, id2, err := parseStanza(buf.Bytes())
		if err != nil || kind2 != kind || id2 != id {
			t.Fatalf("re-encoded %q parses as %q %q, %v; want %q %q", buf.Bytes(), kind2, id2, err, kind, id)
		}
	})
}
