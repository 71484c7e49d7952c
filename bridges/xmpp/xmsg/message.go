package xmsg

import (
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// Message is a <message/> stanza with the extensions the bridge uses. The zero value of a
// field means the element is absent.
type Message struct {
	ID   string  // stanza id attribute
	Type string  // "chat", "groupchat", "normal", "headline", "error"; "" is written as absent
	From jid.JID // zero when absent
	To   jid.JID // zero when absent
	Lang string  // xml:lang

	OriginID  string     // XEP-0359 <origin-id/>
	StanzaIDs []StanzaID // XEP-0359 <stanza-id/>, in document order

	Body string // the first <body/> without xml:lang or in Lang (else the first)
	// XHTML is the XEP-0071 XHTML-IM body's inner XML without namespace prefixes or
	// declarations, such as "<strong>hi</strong> there"; elements outside the XHTML
	// namespace are dropped. It is not sanitized (richtext.ToMatrix does that). Marshal
	// refuses XHTML that is not well-formed.
	XHTML   string
	Subject *string // <subject/>, empty when a MUC subject is cleared; nil when absent
	Thread  string

	ChatState      string // XEP-0085: "active", "composing", "paused", "inactive" or "gone"
	RequestReceipt bool   // XEP-0184 <request/>
	Received       string // XEP-0184 <received id=…/>
	Markable       bool   // XEP-0333 <markable/>
	Displayed      string // XEP-0333 <displayed id=…/>

	Replace   string     // XEP-0308 correction of the message with this id
	Retract   string     // XEP-0424 retraction of the message with this id (also read from the fasten form)
	Reactions *Reactions // XEP-0444; nil when absent, Emojis empty when all are withdrawn
	Reply     *Reply     // XEP-0461; nil when absent
	Fallbacks []Fallback // XEP-0428
	OOB       []OOB      // XEP-0066 out-of-band data, possibly several
	Delay     time.Time  // XEP-0203 stamp in UTC; zero when absent
	NoStore   bool       // XEP-0334 <no-store/>

	Error   *StanzaError // nil when absent
	MUCUser *MUCUser     // <x xmlns='http://jabber.org/protocol/muc#user'/>; nil when absent
}

// StanzaID is an XEP-0359 stanza id and the entity that assigned it.
type StanzaID struct {
	ID string
	By jid.JID
}

// Reactions are the XEP-0444 reactions of the sender to the message with id ID: the whole
// current set, in document order without duplicates.
type Reactions struct {
	ID     string
	Emojis []string
}

// Reply is an XEP-0461 reply to the message ID sent by To (To may be zero).
type Reply struct {
	To jid.JID
	ID string
}

// Fallback is an XEP-0428 fallback indication for the namespace For ("" for the early form
// without a for attribute). Empty Ranges mean the whole body is fallback.
type Fallback struct {
	For    string
	Ranges []Range
}

// Range is an XEP-0426 character range: offsets in Unicode code points, End exclusive.
type Range struct {
	Start, End int
}

// OOB is an XEP-0066 out-of-band URL with its optional description.
type OOB struct {
	URL, Desc string
}

// chatStates are the XEP-0085 states.
var chatStates = map[string]bool{"active": true, "composing": true, "paused": true, "inactive": true, "gone": true}

// ParseMessage reads a <message/> stanza in the client or component namespace (or none).
// The error wraps ErrNotMessage or ErrMalformed.
func ParseMessage(raw []byte) (*Message, error) {
	root, err := parseRoot(raw, "message", ErrNotMessage)
	if err != nil {
		return nil, err
	}
	m := &Message{ID: root.attr("id"), Type: root.attr("type"), Lang: root.attrNS(xmlURL, "lang")}
	if m.From, err = parseAddress("from", root.attr("from")); err != nil {
		return nil, err
	}
	if m.To, err = parseAddress("to", root.attr("to")); err != nil {
		return nil, err
	}
	var bodies, subjects []*node
	for _, c := range root.elements() {
		switch c.name.Space {
		case "", NSClient, NSComponent:
			switch c.name.Local {
			case "body":
				bodies = append(bodies, c)
			case "subject":
				subjects = append(subjects, c)
			case "thread":
				if m.Thread == "" {
					m.Thread = c.text()
				}
			case "error":
				if m.Error == nil {
					m.Error = parseError(c)
				}
			}
		case NSXHTMLIM:
			if c.name.Local == "html" && m.XHTML == "" {
				if b := pickLang(c.childrenNamed(NSXHTML, "body"), m.Lang); b != nil {
					var s strings.Builder
					writeXHTML(&s, b)
					m.XHTML = s.String()
				}
			}
		default:
			m.parseExtension(c)
		}
	}
	if b := pickLang(bodies, m.Lang); b != nil {
		m.Body = b.text()
	}
	if s := pickLang(subjects, m.Lang); s != nil {
		text := s.text()
		m.Subject = &text
	}
	return m, nil
}

// parseExtension reads one child element in an extension namespace; the first occurrence
// of a single-valued extension wins.
func (m *Message) parseExtension(c *node) {
	switch c.name.Space + " " + c.name.Local {
	case NSSID + " origin-id":
		if m.OriginID == "" {
			m.OriginID = c.attr("id")
		}
	case NSSID + " stanza-id":
		if by, ok := parseJID(c.attr("by")); ok && c.attr("id") != "" {
			m.StanzaIDs = append(m.StanzaIDs, StanzaID{ID: c.attr("id"), By: by})
		}
	case NSReceipts + " request":
		m.RequestReceipt = true
	case NSReceipts + " received":
		if m.Received == "" {
			m.Received = c.attr("id")
		}
	case NSMarkers + " markable":
		m.Markable = true
	case NSMarkers + " displayed":
		if m.Displayed == "" {
			m.Displayed = c.attr("id")
		}
	case NSCorrect + " replace":
		if m.Replace == "" {
			m.Replace = c.attr("id")
		}
	case NSRetract + " retract":
		if m.Retract == "" {
			m.Retract = c.attr("id")
		}
	case NSFasten + " apply-to":
		if m.Retract == "" && c.child(NSRetract0, "retract") != nil {
			m.Retract = c.attr("id")
		}
	case NSReactions + " reactions":
		if m.Reactions == nil {
			m.Reactions = parseReactions(c)
		}
	case NSReply + " reply":
		if m.Reply == nil {
			to, _ := parseJID(c.attr("to"))
			m.Reply = &Reply{To: to, ID: c.attr("id")}
		}
	case NSFallback + " fallback":
		if f, ok := parseFallback(c); ok {
			m.Fallbacks = append(m.Fallbacks, f)
		}
	case NSOOB + " x":
		if u := c.child(NSOOB, "url"); u != nil && strings.TrimSpace(u.text()) != "" {
			o := OOB{URL: strings.TrimSpace(u.text())}
			if d := c.child(NSOOB, "desc"); d != nil {
				o.Desc = strings.TrimSpace(d.text())
			}
			m.OOB = append(m.OOB, o)
		}
	case NSDelay + " delay":
		if m.Delay.IsZero() {
			m.Delay = parseStamp(c.attr("stamp"))
		}
	case NSHints + " no-store":
		m.NoStore = true
	case NSMUCUser + " x":
		if m.MUCUser == nil {
			m.MUCUser = parseMUCUser(c)
		}
	default:
		if c.name.Space == NSChatStates && chatStates[c.name.Local] && m.ChatState == "" {
			m.ChatState = c.name.Local
		}
	}
}

func parseReactions(c *node) *Reactions {
	r := &Reactions{ID: c.attr("id")}
	seen := map[string]bool{}
	for _, e := range c.elements() {
		if e.name.Space != NSReactions || e.name.Local != "reaction" {
			continue
		}
		if s := strings.TrimSpace(e.text()); s != "" && !seen[s] {
			seen[s] = true
			r.Emojis = append(r.Emojis, s)
		}
	}
	return r
}

// parseFallback reads a fallback indication. One with an invalid range, or with subject
// ranges only, is dropped (ok false): treating it as "the whole body" would hide text.
func parseFallback(c *node) (Fallback, bool) {
	f := Fallback{For: c.attr("for")}
	whole, bodies, subjects := false, 0, 0
	for _, e := range c.elements() {
		if e.name.Space != NSFallback {
			continue
		}
		switch e.name.Local {
		case "subject":
			subjects++
			continue
		case "body":
			bodies++
		default:
			continue
		}
		if !e.hasAttr("start") && !e.hasAttr("end") {
			whole = true
			continue
		}
		start, err1 := strconv.Atoi(e.attr("start"))
		end, err2 := strconv.Atoi(e.attr("end"))
		if err1 != nil || err2 != nil || start < 0 || end < start {
			return Fallback{}, false
		}
		f.Ranges = append(f.Ranges, Range{Start: start, End: end})
	}
	if bodies == 0 && subjects > 0 {
		return Fallback{}, false
	}
	if whole {
		f.Ranges = nil
	}
	return f, true
}

// childrenNamed are the element children {space}local of n.
func (n *node) childrenNamed(space, local string) []*node {
	var out []*node
	for _, k := range n.kids {
		if k.name.Space == space && k.name.Local == local {
			out = append(out, k)
		}
	}
	return out
}

// pickLang is the first of nodes without xml:lang or in lang, else the first; nil when
// there are none.
func pickLang(nodes []*node, lang string) *node {
	for _, n := range nodes {
		if l := n.attrNS(xmlURL, "lang"); l == "" || l == lang {
			return n
		}
	}
	if len(nodes) > 0 {
		return nodes[0]
	}
	return nil
}
