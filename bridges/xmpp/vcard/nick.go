package vcard

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"unicode"
)

// XEP-0172 user nicknames, as published in a PEP node of the user's account.
const (
	NSNick   = "http://jabber.org/protocol/nick"
	NSPubsub = "http://jabber.org/protocol/pubsub"
)

// maxName bounds a name taken from a profile, in runes.
const maxName = 256

// NickRequest returns the payload of an iq get for the last item of a user's XEP-0172 nick
// node.
func NickRequest() []byte {
	return []byte("<pubsub xmlns='" + NSPubsub + "'><items node='" + NSNick + "' max_items='1'/></pubsub>")
}

// NickItem returns the payload of an iq set that publishes nick (for clients in tests).
func NickItem(nick string) []byte {
	var b bytes.Buffer
	b.WriteString("<pubsub xmlns='" + NSPubsub + "'><publish node='" + NSNick + "'><item id='current'><nick xmlns='" + NSNick + "'>")
	_ = xml.EscapeText(&b, []byte(nick))
	b.WriteString("</nick></item></publish>")
	b.WriteString("<publish-options><x xmlns='jabber:x:data' type='submit'>" +
		"<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
		"<field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub>")
	return b.Bytes()
}

// ParseNick reads the answer to NickRequest (IQ.Inner of the result) and returns the nick
// of its first item, cleaned by CleanName; "" when there is none.
func ParseNick(inner []byte) (string, error) {
	var p struct {
		XMLName xml.Name `xml:"http://jabber.org/protocol/pubsub pubsub"`
		Items   struct {
			Item []struct {
				Nick *string `xml:"http://jabber.org/protocol/nick nick"`
			} `xml:"http://jabber.org/protocol/pubsub item"`
		} `xml:"http://jabber.org/protocol/pubsub items"`
	}
	if err := xml.Unmarshal(inner, &p); err != nil {
		return "", fmt.Errorf("%w: nick: %v", ErrMalformed, err)
	}
	for _, it := range p.Items.Item {
		if it.Nick != nil {
			return CleanName(*it.Nick), nil
		}
	}
	return "", nil
}

// CleanName makes a profile name fit for a display name: control and format characters
// (such as right-to-left overrides) become spaces, runs of white space one space, at most
// 256 runes. It returns "" when nothing is left.
func CleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxName {
		s = strings.TrimSpace(string(r[:maxName]))
	}
	return s
}

// Name is the display name the card gives: its nickname, else its full name, cleaned by
// CleanName; "" for none.
func (c *Card) Name() string {
	if n := CleanName(c.Nick); n != "" {
		return n
	}
	return CleanName(c.FullName)
}
