package sipmsg

import (
	"errors"
	"strings"
	"testing"
)

// rfc3863Basic is the first example document of RFC 3863.
const rfc3863Basic = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    entity="pres:someone@example.com">
  <tuple id="sg89ae">
    <status>
      <basic>open</basic>
    </status>
    <contact priority="0.8">tel:+09012345678</contact>
  </tuple>
</presence>
`

// rfc3863Extended is the second example document of RFC 3863, with a prefix for the PIDF
// namespace, extension elements and notes in two languages.
const rfc3863Extended = `<?xml version="1.0" encoding="UTF-8"?>
<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
    xmlns:myex="http://id.example.com/presence/"
    entity="pres:someone@example.com">
  <impp:tuple id="ck38g9">
    <impp:status>
      <impp:basic>open</impp:basic>
      <myex:location>home</myex:location>
    </impp:status>
    <myex:mobility>
      <myex:mobile/>
    </myex:mobility>
    <impp:contact priority="0.65">tel:+09012345678</impp:contact>
  </impp:tuple>
  <impp:tuple id="md6tyf">
    <impp:status>
      <impp:basic>closed</impp:basic>
      <myex:location>car</myex:location>
    </impp:status>
    <impp:contact priority="1.0">im:someone@mobilecarrier.net</impp:contact>
  </impp:tuple>
  <impp:note xml:lang="en">Don't Disturb Please!</impp:note>
  <impp:note xml:lang="fr">Ne derangez pas, s'il vous plait</impp:note>
  <impp:timestamp>2001-10-27T16:49:29Z</impp:timestamp>
</impp:presence>
`

// rpidBusy is a document as SIP phones send it: RPID activities and a person note
// (RFC 4479, RFC 4480).
const rpidBusy = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    entity="sip:alice@example.org">
  <tuple id="t1">
    <status><basic>closed</basic></status>
  </tuple>
  <dm:person id="p1">
    <rpid:activities><rpid:on-the-phone/></rpid:activities>
    <dm:note>In a call</dm:note>
  </dm:person>
</presence>
`

func TestParsePIDF(t *testing.T) {
	tests := []struct {
		name, body string
		want       Presence
	}{
		{"RFC 3863 basic example", rfc3863Basic, Presence{Entity: "pres:someone@example.com", Open: true}},
		{"RFC 3863 extended example", rfc3863Extended,
			Presence{Entity: "pres:someone@example.com", Open: true, Note: "Don't Disturb Please!"}},
		{"RPID activity and person note", rpidBusy,
			Presence{Entity: "sip:alice@example.org", Note: "In a call", Activity: "on-the-phone"}},
		{"RPID other activity, tuple note", `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" entity="pres:a@b">` +
			`<tuple id="x"><status><basic>open</basic><r:activities><r:other>Gardening</r:other></r:activities></status><note>back soon</note></tuple></presence>`,
			Presence{Entity: "pres:a@b", Open: true, Note: "back soon", Activity: "Gardening"}},
		{"no tuples", `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"/>`, Presence{Entity: "pres:a@b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePIDF([]byte(tt.body), 0)
			if err != nil {
				t.Fatalf("ParsePIDF: %v", err)
			}
			if got != tt.want {
				t.Errorf("ParsePIDF = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParsePIDFErrors(t *testing.T) {
	tests := []struct {
		name, body string
		max        int
		want       error
		msg        string
	}{
		{"too large", rfc3863Basic, 100, ErrTooLarge, "limit is 100"},
		{"DTD", `<!DOCTYPE presence [<!ENTITY e "x">]><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"/>`, 0, ErrMalformed, "DTD"},
		{"wrong root", `<presence xmlns="urn:example" entity="pres:a@b"/>`, 0, ErrMalformed, "want {urn:ietf:params:xml:ns:pidf}presence"},
		{"no entity", `<presence xmlns="urn:ietf:params:xml:ns:pidf"/>`, 0, ErrMalformed, "no entity"},
		{"bad basic", `<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"><tuple id="x"><status><basic>maybe</basic></status></tuple></presence>`,
			0, ErrMalformed, `<basic> "maybe"`},
		{"not XML", `presence`, 0, ErrMalformed, "pidf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePIDF([]byte(tt.body), tt.max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParsePIDF = %+v, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestPIDF(t *testing.T) {
	ct, body := PIDF("alice@example.org", true, "")
	want := `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:alice@example.org">
  <tuple id="t` // the id follows, derived from the entity
	if ct != TypePIDF || !strings.HasPrefix(string(body), want) ||
		!strings.Contains(string(body), "<status>\n      <basic>open</basic>\n    </status>") {
		t.Errorf("PIDF = %q,\n%s", ct, body)
	}
	tests := []struct {
		name, entity string
		open         bool
		note         string
		want         Presence
	}{
		{"open", "pres:alice@example.org", true, "", Presence{Entity: "pres:alice@example.org", Open: true}},
		{"closed with note", "sip:bob@example.org", false, `Out <"&'> lunch`, Presence{Entity: "sip:bob@example.org", Note: `Out <"&'> lunch`}},
		{"bare entity, quote in it", `a"b@example.org`, true, "", Presence{Entity: `pres:a"b@example.org`, Open: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, body := PIDF(tt.entity, tt.open, tt.note)
			got, err := ParsePIDF(body, 0)
			if err != nil {
				t.Fatalf("ParsePIDF: %v\n%s", err, body)
			}
			if got != tt.want {
				t.Errorf("round trip = %+v, want %+v", got, tt.want)
			}
			if _, again := PIDF(tt.entity, tt.open, tt.note); string(again) != string(body) {
				t.Errorf("PIDF is not deterministic")
			}
		})
	}
}
