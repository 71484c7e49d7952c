// Package iq reads and writes XMPP iq stanzas (RFC 6120 section 8.2.3) and correlates the
// iq requests the bridge sends with their answers. Stanzas cross the package boundary as
// raw bytes, one complete element each; what this package writes has no xmlns on the root
// element (the component stream's default namespace applies) and carries its payload
// unchanged. It knows nothing of Matrix.
package iq

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// Namespaces this package reads and writes.
const (
	NSClient    = "jabber:client"
	NSComponent = "jabber:component:accept"
	NSStanzas   = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// iq types.
const (
	TypeGet    = "get"
	TypeSet    = "set"
	TypeResult = "result"
	TypeError  = "error"
)

// MaxBytes is the largest stanza Parse reads. It leaves room for a vCard with an 8 MiB
// photo in base64; Prosody's component stanza limit is 10 MiB.
const MaxBytes = 16 << 20

// Errors of Parse; each is wrapped with the detail.
var (
	ErrTooLarge  = errors.New("iq: too large")
	ErrMalformed = errors.New("iq: malformed")
	ErrNotIQ     = errors.New("iq: not an iq stanza")
)

// IQ is one parsed iq stanza.
type IQ struct {
	ID   string
	Type string  // "get", "set", "result" or "error"; Parse refuses anything else
	From jid.JID // zero when absent
	To   jid.JID // zero when absent
	// Payload is the name of the first child element; in an error iq, the first child
	// other than the stanza error element (the request echoed back, if any). Zero when
	// there is none.
	Payload xml.Name
	// Inner is the XML of the element named by Payload, re-encoded so that it stands
	// alone: its namespace and every namespace it uses are declared in it. Nil when
	// there is none.
	Inner []byte
	// Error is the stanza error of an error iq (never nil for Type "error"; Condition
	// "undefined-condition" when the iq carried none). Nil for other types.
	Error *Error
}

// Error is a stanza error (RFC 6120 section 8.3). As an error, it unwraps to ErrRemote.
type Error struct {
	Type      string // "auth", "cancel", "continue", "modify" or "wait"
	Condition string // e.g. "item-not-found"
	Text      string // optional human-readable text
}

// Error describes the stanza error.
func (e *Error) Error() string {
	s := "iq: remote error " + e.Condition
	if e.Type != "" {
		s += " (" + e.Type + ")"
	}
	if e.Text != "" {
		s += fmt.Sprintf(": %q", truncate(e.Text, 200))
	}
	return s
}

// Unwrap returns ErrRemote so that errors.Is(err, ErrRemote) holds for a stanza error.
func (e *Error) Unwrap() error { return ErrRemote }

// Parse reads raw, one complete iq element in jabber:client, jabber:component:accept or
// no namespace. It refuses DTDs, processing instructions, more than one root element,
// invalid JIDs, unknown types and iq stanzas that break RFC 6120's rules on children.
func Parse(raw []byte) (*IQ, error) {
	if len(raw) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(raw), MaxBytes)
	}
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	q := &IQ{}
	var (
		space                  string // of the root: stanza-level children are in it
		depth, roots, children int
		child                  []xml.Token // tokens of the child being read, at depth >= 1
		payload                []xml.Token // tokens of the payload child
		errToks                []xml.Token // tokens of the stanza error child
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, fmt.Errorf("%w: directive (DTD or entity declaration)", ErrMalformed)
		case xml.ProcInst:
			return nil, fmt.Errorf("%w: processing instruction", ErrMalformed)
		case xml.Comment:
			continue
		case xml.StartElement:
			depth++
			if depth == 1 {
				roots++
				if roots > 1 {
					return nil, fmt.Errorf("%w: more than one root element", ErrMalformed)
				}
				if err := q.readRoot(t); err != nil {
					return nil, err
				}
				space = t.Name.Space
				continue
			}
			if depth == 2 {
				children++
				child = child[:0:0]
			}
			child = append(child, t.Copy())
		case xml.EndElement:
			depth--
			if depth < 1 {
				continue
			}
			child = append(child, t)
			if depth > 1 {
				continue
			}
			start := child[0].(xml.StartElement)
			switch {
			case q.Type == TypeError && start.Name.Local == "error" && isStanzaSpace(start.Name.Space, space):
				if errToks == nil {
					errToks = child
				}
			case payload == nil:
				payload = child
			}
		case xml.CharData:
			switch {
			case depth == 0 || depth == 1:
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, fmt.Errorf("%w: text outside a child element", ErrMalformed)
				}
			default:
				child = append(child, t.Copy())
			}
		}
	}
	if roots == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if depth != 0 {
		return nil, fmt.Errorf("%w: unclosed element", ErrMalformed)
	}
	switch q.Type {
	case TypeGet, TypeSet:
		if children != 1 {
			return nil, fmt.Errorf("%w: %s iq %q has %d child elements, want 1", ErrMalformed, q.Type, q.ID, children)
		}
	case TypeResult:
		if children > 1 {
			return nil, fmt.Errorf("%w: result iq %q has %d child elements, want at most 1", ErrMalformed, q.ID, children)
		}
	case TypeError:
		q.Error = parseError(errToks)
	}
	if payload != nil {
		start := payload[0].(xml.StartElement)
		q.Payload = start.Name
		inner, err := encode(payload)
		if err != nil {
			return nil, fmt.Errorf("%w: re-encoding the payload of iq %q: %v", ErrMalformed, q.ID, err)
		}
		q.Inner = inner
	}
	return q, nil
}

// readRoot checks the root element and reads its attributes.
func (q *IQ) readRoot(t xml.StartElement) error {
	if t.Name.Local != "iq" {
		return fmt.Errorf("%w: <%s>", ErrNotIQ, t.Name.Local)
	}
	switch t.Name.Space {
	case "", NSClient, NSComponent:
	default:
		return fmt.Errorf("%w: namespace %q", ErrNotIQ, t.Name.Space)
	}
	var from, to string
	for _, a := range t.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "id":
			q.ID = a.Value
		case "type":
			q.Type = a.Value
		case "from":
			from = a.Value
		case "to":
			to = a.Value
		}
	}
	switch q.Type {
	case TypeGet, TypeSet, TypeResult, TypeError:
	default:
		return fmt.Errorf("%w: iq %q has type %q", ErrMalformed, q.ID, q.Type)
	}
	if q.ID == "" {
		return fmt.Errorf("%w: iq without id", ErrMalformed)
	}
	for _, a := range []struct {
		name, text string
		dst        *jid.JID
	}{{"from", from, &q.From}, {"to", to, &q.To}} {
		if a.text == "" {
			continue
		}
		j, err := jid.Parse(a.text)
		if err != nil {
			return fmt.Errorf("%w: iq %q: %s address: %v", ErrMalformed, q.ID, a.name, err)
		}
		*a.dst = j
	}
	return nil
}

// parseError reads the tokens of a stanza error element; toks may be nil.
func parseError(toks []xml.Token) *Error {
	e := &Error{}
	depth := 0
	inText := false
	var text strings.Builder
	for _, tok := range toks {
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				for _, a := range t.Attr {
					if a.Name.Space == "" && a.Name.Local == "type" {
						e.Type = a.Value
					}
				}
			case depth == 2 && t.Name.Space == NSStanzas && t.Name.Local == "text":
				inText = text.Len() == 0
			case depth == 2 && t.Name.Space == NSStanzas && e.Condition == "":
				e.Condition = t.Name.Local
			}
		case xml.EndElement:
			if depth == 2 {
				inText = false
			}
			depth--
		case xml.CharData:
			if inText && depth == 2 {
				text.Write(t)
			}
		}
	}
	if e.Condition == "" {
		e.Condition = "undefined-condition"
	}
	e.Text = text.String()
	return e
}

// encode writes the tokens of one element so that it stands alone: every element whose
// namespace differs from its parent's declares it, and namespace declarations of the
// input are dropped (the encoder declares what attributes need).
func encode(toks []xml.Token) ([]byte, error) {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	var orig, written []xml.Name
	for _, tok := range toks {
		switch t := tok.(type) {
		case xml.StartElement:
			if !validName(t.Name.Local) {
				return nil, fmt.Errorf("invalid element name %q", t.Name.Local)
			}
			name := t.Name
			attrs := make([]xml.Attr, 0, len(t.Attr)+1)
			if len(orig) > 0 && name.Space == orig[len(orig)-1].Space {
				name.Space = ""
			} else if name.Space == "" && len(orig) > 0 {
				// An element that undeclares the default namespace.
				attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "xmlns"}})
			}
			for _, a := range t.Attr {
				if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
					continue
				}
				if !validName(a.Name.Local) {
					return nil, fmt.Errorf("invalid attribute name %q", a.Name.Local)
				}
				attrs = append(attrs, a)
			}
			orig = append(orig, t.Name)
			written = append(written, name)
			if err := enc.EncodeToken(xml.StartElement{Name: name, Attr: attrs}); err != nil {
				return nil, err
			}
		case xml.EndElement:
			if err := enc.EncodeToken(xml.EndElement{Name: written[len(written)-1]}); err != nil {
				return nil, err
			}
			orig, written = orig[:len(orig)-1], written[:len(written)-1]
		case xml.CharData:
			if err := enc.EncodeToken(t); err != nil {
				return nil, err
			}
		}
	}
	if err := enc.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// isStanzaSpace reports whether a child element in ns is in the stanza's namespace: the
// root's, or either stanza namespace (a server may relay a jabber:client error).
func isStanzaSpace(ns, root string) bool {
	return ns == root || ns == "" || ns == NSClient || ns == NSComponent
}

// validName reports whether s is an XML name without a colon (encoding/xml's Decoder
// splits "a:0" into prefix "a" and local "0" without checking the local part).
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			// Rare in XMPP: let encoding/xml decide.
			_, err := xml.NewDecoder(strings.NewReader("<" + s + "/>")).Token()
			return err == nil && !strings.Contains(s, ":")
		case c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z'):
		case i > 0 && (c == '-' || c == '.' || (c >= '0' && c <= '9')):
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
