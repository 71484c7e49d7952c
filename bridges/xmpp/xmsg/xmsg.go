// Package xmsg reads and writes XMPP message and presence stanzas for the XMPP bridge: the
// envelope and the extensions a chat bridge needs (XEP-0359 stanza ids, XEP-0071 XHTML-IM,
// XEP-0085 chat states, XEP-0184 receipts, XEP-0333 markers, XEP-0308 corrections,
// XEP-0424 retractions, XEP-0444 reactions, XEP-0461 replies, XEP-0428 fallbacks,
// XEP-0066 out-of-band data, XEP-0203 delays, XEP-0334 hints, stanza errors, MUC join and
// user payloads, XEP-0172 nicks and XEP-0153 avatar hashes).
//
// Parsers expect input that bridges/xmpp/stanza.Parse already checked, but never panic on
// any input. Unknown elements are ignored. Marshal writes the root without an xmlns (the
// component stream supplies the default namespace) and every extension with its own.
// Whatever a parser returned, Marshal writes so that it parses back to an equal value (the
// fuzz tests check this). A value built by hand reads back normalized: characters XML
// does not allow become U+FFFD, reactions lose duplicates, and URLs, reactions, <show/>,
// avatar hashes and XHTML are trimmed or re-serialized the way the parsers return them.
// The package knows nothing of Matrix.
package xmsg

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// Errors of the parsers and of Marshal; each is wrapped with the detail.
var (
	ErrNotMessage  = errors.New("xmsg: not a message stanza")
	ErrNotPresence = errors.New("xmsg: not a presence stanza")
	ErrMalformed   = errors.New("xmsg: malformed stanza")
	ErrInvalid     = errors.New("xmsg: value cannot be marshaled")
)

// Namespaces of the stanzas and extensions this package reads and writes.
const (
	NSClient      = "jabber:client"
	NSComponent   = "jabber:component:accept"
	NSReply       = "urn:xmpp:reply:0"
	NSReactions   = "urn:xmpp:reactions:0"
	NSRetract     = "urn:xmpp:message-retract:1"
	NSRetract0    = "urn:xmpp:message-retract:0" // read only, inside NSFasten
	NSFasten      = "urn:xmpp:fasten:0"          // read only
	NSCorrect     = "urn:xmpp:message-correct:0"
	NSReceipts    = "urn:xmpp:receipts"
	NSMarkers     = "urn:xmpp:chat-markers:0"
	NSChatStates  = "http://jabber.org/protocol/chatstates"
	NSOOB         = "jabber:x:oob"
	NSSID         = "urn:xmpp:sid:0"
	NSFallback    = "urn:xmpp:fallback:0"
	NSMUC         = "http://jabber.org/protocol/muc"
	NSMUCUser     = "http://jabber.org/protocol/muc#user"
	NSXHTMLIM     = "http://jabber.org/protocol/xhtml-im"
	NSXHTML       = "http://www.w3.org/1999/xhtml"
	NSDelay       = "urn:xmpp:delay"
	NSHints       = "urn:xmpp:hints"
	NSStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSNick        = "http://jabber.org/protocol/nick"
	NSVCardUpdate = "vcard-temp:x:update"
)

// StanzaError is the <error/> child of an error stanza.
type StanzaError struct {
	Type      string // "cancel", "wait", "modify", "auth" or "continue"
	Condition string // the defined condition, such as "service-unavailable"
	Text      string // the optional human-readable <text/>
}

// Error makes a *StanzaError usable as an error value.
func (e *StanzaError) Error() string {
	s := "xmsg: stanza error " + e.Type + "/" + e.Condition
	if e.Text != "" {
		s += ": " + e.Text
	}
	return s
}

// isStanzaSpace reports whether space is a namespace a stanza (or its direct children) may
// be in.
func isStanzaSpace(space string) bool {
	return space == "" || space == NSClient || space == NSComponent
}

// parseRoot reads raw and checks that its root is a stanza named local; notKind is the
// error to wrap when it is not.
func parseRoot(raw []byte, local string, notKind error) (*node, error) {
	root, err := parseTree(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if root.name.Local != local || !isStanzaSpace(root.name.Space) {
		return nil, fmt.Errorf("%w: <%s> in namespace %q", notKind, root.name.Local, root.name.Space)
	}
	return root, nil
}

// parseAddress reads a from or to attribute: absent is the zero JID, and a JID whose text
// does not parse back to itself is refused so that Marshal can write what Parse read.
func parseAddress(name, s string) (jid.JID, error) {
	if s == "" {
		return jid.JID{}, nil
	}
	j, ok := parseJID(s)
	if !ok {
		return jid.JID{}, fmt.Errorf("%w: invalid %s address", ErrMalformed, name)
	}
	return j, nil
}

// parseJID parses s and checks that its text parses back to the same JID.
func parseJID(s string) (jid.JID, bool) {
	if s == "" {
		return jid.JID{}, false
	}
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, false
	}
	again, err := jid.Parse(j.String())
	if err != nil || !again.Equal(j) {
		return jid.JID{}, false
	}
	return j, true
}

// jidString is the text of j, "" for the zero JID.
func jidString(j jid.JID) string {
	if j.Equal(jid.JID{}) {
		return ""
	}
	return j.String()
}

// parseStamp reads an XEP-0082 date-time. Times that cannot be written back in the same
// form (years outside 1..9999 once in UTC) read as the zero time.
func parseStamp(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}
	}
	return t
}

// formatStamp writes t as an XEP-0082 date-time in UTC.
func formatStamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// parseError reads an <error/> element.
func parseError(n *node) *StanzaError {
	e := &StanzaError{Type: n.attr("type")}
	for _, c := range n.elements() {
		if c.name.Space != NSStanzas {
			continue
		}
		if c.name.Local == "text" {
			if e.Text == "" {
				e.Text = c.text()
			}
		} else if e.Condition == "" {
			e.Condition = c.name.Local
		}
	}
	return e
}

// errorNode writes e. The condition must be an element name, and not "text".
func errorNode(e *StanzaError) (*node, error) {
	n := elem("error", "", "type", e.Type)
	if e.Condition != "" {
		if t, err := parseTree([]byte("<" + e.Condition + "/>")); err != nil || e.Condition == "text" ||
			t.name.Local != e.Condition || t.name.Space != "" || len(t.attrs) != 0 {
			return nil, fmt.Errorf("%w: stanza error condition %q", ErrInvalid, e.Condition)
		}
		n.add(elem(e.Condition, NSStanzas))
	}
	if e.Text != "" {
		n.add(elem("text", NSStanzas).setText(e.Text))
	}
	return n, nil
}
