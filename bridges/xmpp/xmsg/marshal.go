package xmsg

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Marshal writes m as a <message/> without xmlns on the root. Text is escaped, and
// characters that XML 1.0 does not allow are replaced by U+FFFD. The error wraps
// ErrInvalid when a field cannot be written so that it reads back the same: XHTML that is
// not well-formed, an unknown chat state, an invalid fallback range, an OOB without URL or
// a delay outside the years 1 to 9999.
func (m *Message) Marshal() ([]byte, error) {
	root := elem("message", "", "xml:lang", m.Lang, "id", m.ID, "type", m.Type,
		"from", jidString(m.From), "to", jidString(m.To))
	if m.Body != "" {
		root.add(elem("body", "").setText(m.Body))
	}
	if m.Subject != nil {
		root.add(elem("subject", "").setText(*m.Subject))
	}
	if m.Thread != "" {
		root.add(elem("thread", "").setText(m.Thread))
	}
	if m.XHTML != "" {
		inner, err := parseXHTML(m.XHTML)
		if err != nil {
			return nil, fmt.Errorf("%w: XHTML body: %v", ErrInvalid, err)
		}
		if inner != "" {
			body := elem("body", NSXHTML)
			body.kids = []*node{{chars: inner, raw: true}}
			root.add(elem("html", NSXHTMLIM).add(body))
		}
	}
	if m.ChatState != "" {
		if !chatStates[m.ChatState] {
			return nil, fmt.Errorf("%w: chat state %q", ErrInvalid, m.ChatState)
		}
		root.add(elem(m.ChatState, NSChatStates))
	}
	if m.OriginID != "" {
		root.add(elem("origin-id", NSSID, "id", m.OriginID))
	}
	for _, s := range m.StanzaIDs {
		root.add(elem("stanza-id", NSSID, "id", s.ID, "by", jidString(s.By)))
	}
	if m.RequestReceipt {
		root.add(elem("request", NSReceipts))
	}
	if m.Received != "" {
		root.add(elem("received", NSReceipts, "id", m.Received))
	}
	if m.Markable {
		root.add(elem("markable", NSMarkers))
	}
	if m.Displayed != "" {
		root.add(elem("displayed", NSMarkers, "id", m.Displayed))
	}
	if m.Replace != "" {
		root.add(elem("replace", NSCorrect, "id", m.Replace))
	}
	if m.Retract != "" {
		root.add(elem("retract", NSRetract, "id", m.Retract))
	}
	if r := m.Reactions; r != nil {
		n := elem("reactions", NSReactions, "id", r.ID)
		for _, e := range r.Emojis {
			n.add(elem("reaction", "").setText(e))
		}
		root.add(n)
	}
	if r := m.Reply; r != nil {
		root.add(elem("reply", NSReply, "to", jidString(r.To), "id", r.ID))
	}
	for _, f := range m.Fallbacks {
		n := elem("fallback", NSFallback, "for", f.For)
		for _, r := range f.Ranges {
			if r.Start < 0 || r.End < r.Start {
				return nil, fmt.Errorf("%w: fallback range [%d, %d)", ErrInvalid, r.Start, r.End)
			}
			n.add(elem("body", "", "start", strconv.Itoa(r.Start), "end", strconv.Itoa(r.End)))
		}
		root.add(n)
	}
	for _, o := range m.OOB {
		if strings.TrimSpace(o.URL) == "" {
			return nil, fmt.Errorf("%w: out-of-band data without URL", ErrInvalid)
		}
		n := elem("x", NSOOB).add(elem("url", "").setText(o.URL))
		if o.Desc != "" {
			n.add(elem("desc", "").setText(o.Desc))
		}
		root.add(n)
	}
	if !m.Delay.IsZero() {
		stamp, err := stampAttr(m.Delay)
		if err != nil {
			return nil, err
		}
		root.add(elem("delay", NSDelay, "stamp", stamp))
	}
	if m.NoStore {
		root.add(elem("no-store", NSHints))
	}
	if m.MUCUser != nil {
		root.add(mucUserNode(m.MUCUser))
	}
	if m.Error != nil {
		n, err := errorNode(m.Error)
		if err != nil {
			return nil, err
		}
		root.add(n)
	}
	return finish(root)
}

// stampAttr formats t for a stamp or since attribute.
func stampAttr(t time.Time) (string, error) {
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return "", fmt.Errorf("%w: time %v outside the years 1 to 9999", ErrInvalid, t)
	}
	return formatStamp(t), nil
}

// finish serializes root and checks that the result parses: a name taken from a field
// (a stanza error condition) could otherwise make it malformed.
func finish(root *node) ([]byte, error) {
	var b strings.Builder
	root.write(&b)
	out := []byte(b.String())
	if _, err := parseTree(out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return out, nil
}
