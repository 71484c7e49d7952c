package iq

import (
	"bytes"
	"encoding/xml"
	"testing"
)

// FuzzParse: Parse never panics; what it accepts has a type it knows, and its Inner is
// one well-formed element named Payload that parses to the same name on its own.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`<iq xmlns="jabber:component:accept" type="get" id="v1" from="alice@example.com/phone" to="bob@matrix.example.com"><vCard xmlns="vcard-temp"/></iq>`))
	f.Add([]byte(`<iq xmlns:d="http://jabber.org/protocol/disco#info" type="result" id="d"><d:query node="n"><d:identity xml:lang="en"/></d:query></iq>`))
	f.Add([]byte(`<iq type="error" id="e"><q xmlns="q"/><error type="cancel"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"/><text xmlns="urn:ietf:params:xml:ns:xmpp-stanzas">x</text></error></iq>`))
	f.Add([]byte(`<iq type="result" id="n"><a xmlns="urn:a" xmlns:p="urn:p" p:x="1"><b xmlns=""/><p:c/></a></iq>`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := Parse(raw)
		if err != nil {
			return
		}
		switch q.Type {
		case TypeGet, TypeSet, TypeResult:
			if q.Error != nil {
				t.Fatalf("type %q with Error", q.Type)
			}
		case TypeError:
			if q.Error == nil {
				t.Fatal("error iq without Error")
			}
		default:
			t.Fatalf("accepted type %q", q.Type)
		}
		if q.Inner == nil {
			if q.Payload != (xml.Name{}) {
				t.Fatalf("Payload %v without Inner", q.Payload)
			}
			return
		}
		var el struct{ XMLName xml.Name }
		if err := xml.Unmarshal(q.Inner, &el); err != nil {
			t.Fatalf("Inner %q does not parse: %v (input %q)", q.Inner, err, raw)
		}
		if el.XMLName != q.Payload {
			t.Fatalf("Inner %q parses as %v, Payload is %v (input %q)", q.Inner, el.XMLName, q.Payload, raw)
		}
		// Inner wrapped in a new iq parses to the same payload.
		q2, err := Parse(Build(TypeResult, "x", q.From, q.To, q.Inner))
		if err != nil || q2.Payload != q.Payload || !bytes.Equal(q2.Inner, q.Inner) {
			t.Fatalf("rewrapped Inner %q: %v, %v %q", q.Inner, err, q2.Payload, q2.Inner)
		}
	})
}
