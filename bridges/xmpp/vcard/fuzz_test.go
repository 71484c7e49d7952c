package vcard

import (
	"bytes"
	"testing"
)

// FuzzParse: Parse never panics, never returns a photo over MaxPhoto, and a card it
// accepts marshals to XML that parses back to the same card.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`<vCard xmlns="vcard-temp"><FN>Alice</FN><NICKNAME>al</NICKNAME><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBO
Rw0K</BINVAL></PHOTO></vCard>`))
	f.Add([]byte(`<v:vCard xmlns:v="vcard-temp"><v:PHOTO><v:BINVAL>YWI</v:BINVAL></v:PHOTO></v:vCard>`))
	f.Add([]byte(`<vCard xmlns="vcard-temp"/>`))
	f.Fuzz(func(t *testing.T, inner []byte) {
		c, err := Parse(inner)
		if c == nil {
			return
		}
		if len(c.Photo) > MaxPhoto {
			t.Fatalf("photo of %d bytes", len(c.Photo))
		}
		if err != nil {
			return
		}
		back, err := Parse(c.Marshal())
		if err != nil {
			t.Fatalf("Marshal output %q does not parse: %v", c.Marshal(), err)
		}
		if back.FullName != c.FullName || back.Nick != c.Nick || !bytes.Equal(back.Photo, c.Photo) ||
			(len(c.Photo) > 0 && back.PhotoType != c.PhotoType) {
			t.Fatalf("round trip changed %+v to %+v", c, back)
		}
	})
}

// FuzzParseNick: ParseNick never panics and returns only clean names.
func FuzzParseNick(f *testing.F) {
	f.Add([]byte(`<pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="http://jabber.org/protocol/nick"><item id="current"><nick xmlns="http://jabber.org/protocol/nick">Ishmael</nick></item></items></pubsub>`))
	f.Add([]byte(`<pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="x"/></pubsub>`))
	f.Fuzz(func(t *testing.T, inner []byte) {
		nick, err := ParseNick(inner)
		if err != nil {
			return
		}
		if nick != CleanName(nick) {
			t.Fatalf("nick %q is not clean", nick)
		}
	})
}
