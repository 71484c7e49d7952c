package xmsg

import (
	"fmt"
	"strconv"
	"strings"

	"mellium.im/xmpp/jid"
)

// Presence is a <presence/> stanza with the extensions the bridge uses.
type Presence struct {
	ID   string
	Type string // "" (available), "unavailable", "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe" or "error"
	From jid.JID
	To   jid.JID

	Show     string // "away", "chat", "dnd" or "xa"; "" when available without <show/>
	Status   string // the first <status/> without xml:lang (else the first)
	Priority int    // -128 to 127; an unreadable value reads as 0, one out of range is clamped

	Nick      string   // XEP-0172 <nick/>
	PhotoHash *string  // XEP-0153 avatar SHA-1 in hex; "" for <photo/> (no avatar); nil when absent
	MUC       *MUCJoin // a MUC join request; nil when absent
	MUCUser   *MUCUser // nil when absent
	Error     *StanzaError
}

// ParsePresence reads a <presence/> stanza in the client or component namespace (or none).
// The error wraps ErrNotPresence or ErrMalformed.
func ParsePresence(raw []byte) (*Presence, error) {
	root, err := parseRoot(raw, "presence", ErrNotPresence)
	if err != nil {
		return nil, err
	}
	p := &Presence{ID: root.attr("id"), Type: root.attr("type")}
	if p.From, err = parseAddress("from", root.attr("from")); err != nil {
		return nil, err
	}
	if p.To, err = parseAddress("to", root.attr("to")); err != nil {
		return nil, err
	}
	var statuses []*node
	seenShow, seenPriority := false, false
	for _, c := range root.elements() {
		switch c.name.Space + " " + c.name.Local {
		case " show", NSClient + " show", NSComponent + " show":
			if !seenShow {
				seenShow = true
				p.Show = strings.TrimSpace(c.text())
			}
		case " status", NSClient + " status", NSComponent + " status":
			statuses = append(statuses, c)
		case " priority", NSClient + " priority", NSComponent + " priority":
			if !seenPriority {
				seenPriority = true
				p.Priority = parsePriority(c.text())
			}
		case " error", NSClient + " error", NSComponent + " error":
			if p.Error == nil {
				p.Error = parseError(c)
			}
		case NSNick + " nick":
			if p.Nick == "" {
				p.Nick = c.text()
			}
		case NSVCardUpdate + " x":
			if ph := c.child(NSVCardUpdate, "photo"); ph != nil && p.PhotoHash == nil {
				hash := strings.TrimSpace(ph.text())
				p.PhotoHash = &hash
			}
		case NSMUC + " x":
			if p.MUC == nil {
				p.MUC = parseMUCJoin(c)
			}
		case NSMUCUser + " x":
			if p.MUCUser == nil {
				p.MUCUser = parseMUCUser(c)
			}
		}
	}
	if s := pickLang(statuses, ""); s != nil {
		p.Status = s.text()
	}
	return p, nil
}

func parsePriority(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return max(-128, min(127, n))
}

// Marshal writes p as a <presence/> without xmlns on the root. The error wraps ErrInvalid
// when a field cannot be written so that it reads back the same (a priority out of range,
// a stanza error condition that is not an element name, a history time outside the years
// 1 to 9999).
func (p *Presence) Marshal() ([]byte, error) {
	root := elem("presence", "", "id", p.ID, "type", p.Type, "from", jidString(p.From), "to", jidString(p.To))
	if p.Show != "" {
		root.add(elem("show", "").setText(p.Show))
	}
	if p.Status != "" {
		root.add(elem("status", "").setText(p.Status))
	}
	if p.Priority != 0 {
		if p.Priority < -128 || p.Priority > 127 {
			return nil, fmt.Errorf("%w: priority %d", ErrInvalid, p.Priority)
		}
		root.add(elem("priority", "").setText(strconv.Itoa(p.Priority)))
	}
	if p.Nick != "" {
		root.add(elem("nick", NSNick).setText(p.Nick))
	}
	if p.PhotoHash != nil {
		root.add(elem("x", NSVCardUpdate).add(elem("photo", "").setText(*p.PhotoHash)))
	}
	if p.MUC != nil {
		n, err := mucJoinNode(p.MUC)
		if err != nil {
			return nil, err
		}
		root.add(n)
	}
	if p.MUCUser != nil {
		root.add(mucUserNode(p.MUCUser))
	}
	if p.Error != nil {
		n, err := errorNode(p.Error)
		if err != nil {
			return nil, err
		}
		root.add(n)
	}
	return finish(root)
}
