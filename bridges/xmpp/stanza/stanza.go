// Package stanza checks and reads inbound XMPP stanzas before the XMPP bridge acts on them:
// it refuses oversize input, DTDs, entity declarations and processing instructions, XML
// that does not survive an encoding/xml round trip unchanged (the class of parser
// differentials behind XML signature and smuggling bugs; checked with
// github.com/mattermost/xml-roundtrip-validator, a second line behind Go 1.26's
// encoding/xml, which already rejects the known cases as syntax errors), and stanzas whose
// addresses are not valid JIDs. It knows nothing of Matrix.
package stanza

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	validator "github.com/mattermost/xml-roundtrip-validator"
	"mellium.im/xmpp/jid"
)

// Errors of Parse; each is wrapped with the detail.
var (
	ErrTooLarge   = errors.New("stanza: too large")
	ErrMalformed  = errors.New("stanza: malformed XML")
	ErrForbidden  = errors.New("stanza: forbidden XML construct")
	ErrRoundTrip  = errors.New("stanza: XML does not round-trip")
	ErrNotStanza  = errors.New("stanza: not a message, presence or iq")
	ErrBadAddress = errors.New("stanza: invalid address")
)

// DefaultMaxBytes is the default size limit: Prosody's default c2s stanza limit is 256 KiB
// and its component limit 10 MiB, but a chat stanza is small.
const DefaultMaxBytes = 256 << 10

// Namespaces a stanza may be in: client-to-server (as relayed) and external component.
const (
	NSClient    = "jabber:client"
	NSComponent = "jabber:component:accept"
)

// Stanza is the envelope of one checked stanza.
type Stanza struct {
	Kind string  // "message", "presence" or "iq"
	From jid.JID // zero when absent
	To   jid.JID // zero when absent
	ID   string
	Type string
	Raw  []byte // the stanza as received
}

// Parse checks raw, one complete stanza, and reads its envelope. maxBytes <= 0 means
// DefaultMaxBytes.
func Parse(raw []byte, maxBytes int) (*Stanza, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if len(raw) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(raw), maxBytes)
	}
	if err := checkTokens(raw); err != nil {
		return nil, err
	}
	if err := validator.Validate(bytes.NewReader(raw)); err != nil {
		// Only the position: the validator's text quotes the tokens, which may be a body.
		var ve validator.XMLValidationError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("%w: at line %d, column %d", ErrRoundTrip, ve.Line, ve.Column)
		}
		return nil, ErrRoundTrip
	}
	var env struct {
		XMLName xml.Name
		From    string `xml:"from,attr"`
		To      string `xml:"to,attr"`
		ID      string `xml:"id,attr"`
		Type    string `xml:"type,attr"`
	}
	if err := xml.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case env.XMLName.Space != NSClient && env.XMLName.Space != NSComponent:
		return nil, fmt.Errorf("%w: element in namespace %q", ErrNotStanza, env.XMLName.Space)
	case env.XMLName.Local != "message" && env.XMLName.Local != "presence" && env.XMLName.Local != "iq":
		return nil, fmt.Errorf("%w: <%s>", ErrNotStanza, env.XMLName.Local)
	}
	s := &Stanza{Kind: env.XMLName.Local, ID: env.ID, Type: env.Type, Raw: raw}
	for _, a := range []struct {
		name, text string
		dst        *jid.JID
	}{{"from", env.From, &s.From}, {"to", env.To, &s.To}} {
		if a.text == "" {
			continue
		}
		j, err := jid.Parse(a.text)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadAddress, a.name, err)
		}
		*a.dst = j
	}
	return s, nil
}

// checkTokens walks the tokens once: exactly one root element, no DTD or other directive,
// no processing instruction, nothing but white space outside the root.
func checkTokens(raw []byte) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return fmt.Errorf("%w: directive (DTD or entity declaration)", ErrForbidden)
		case xml.ProcInst:
			return fmt.Errorf("%w: processing instruction %q", ErrForbidden, t.Target)
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: text outside the stanza", ErrMalformed)
			}
		}
	}
	switch {
	case depth != 0:
		return fmt.Errorf("%w: unclosed element", ErrMalformed)
	case roots != 1:
		return fmt.Errorf("%w: %d root elements, want 1", ErrMalformed, roots)
	}
	return nil
}
