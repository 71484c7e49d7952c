package xmsg

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// MUCJoin is the <x xmlns='http://jabber.org/protocol/muc'/> of a join request.
type MUCJoin struct {
	MaxStanzas *int      // <history maxstanzas=…/>; nil when absent
	Since      time.Time // <history since=…/> in UTC; zero when absent
	Password   string    // <password/>
}

// MUCUser is the <x xmlns='http://jabber.org/protocol/muc#user'/> of a MUC presence or
// message.
type MUCUser struct {
	Affiliation string  // of the first <item/>: "owner", "admin", "member", "outcast" or "none"
	Role        string  // of the first <item/>: "moderator", "participant", "visitor" or "none"
	Nick        string  // the item's nick (the new nick with status 303)
	JID         jid.JID // the item's jid, the occupant's real JID when visible; may be zero
	Actor       string  // the nick of the item's <actor/>
	Reason      string  // the item's <reason/>
	Statuses    []int   // the <status code=…/> values, such as 110 (self) or 307 (kicked)
	Invite      *MUCInvite
}

// MUCInvite is a mediated invitation.
type MUCInvite struct {
	From, To jid.JID // either may be zero
	Reason   string
}

// MUC status codes the bridge acts on.
const (
	StatusNonAnonymous  = 100
	StatusConfigChanged = 104
	StatusSelf          = 110
	StatusCreated       = 201
	StatusBanned        = 301
	StatusNickChanged   = 303
	StatusKicked        = 307
	StatusRemovedAffil  = 321
	StatusShutdown      = 332
)

// Has reports whether code is among u's status codes; a nil u has none.
func (u *MUCUser) Has(code int) bool {
	return u != nil && slices.Contains(u.Statuses, code)
}

func parseMUCUser(x *node) *MUCUser {
	u := &MUCUser{}
	seenItem := false
	for _, c := range x.elements() {
		if c.name.Space != NSMUCUser {
			continue
		}
		switch c.name.Local {
		case "item":
			if seenItem {
				continue
			}
			seenItem = true
			u.Affiliation, u.Role, u.Nick = c.attr("affiliation"), c.attr("role"), c.attr("nick")
			u.JID, _ = parseJID(c.attr("jid"))
			if a := c.child(NSMUCUser, "actor"); a != nil {
				u.Actor = a.attr("nick")
			}
			if r := c.child(NSMUCUser, "reason"); r != nil {
				u.Reason = r.text()
			}
		case "status":
			if code, err := strconv.Atoi(strings.TrimSpace(c.attr("code"))); err == nil {
				u.Statuses = append(u.Statuses, code)
			}
		case "invite":
			if u.Invite != nil {
				continue
			}
			u.Invite = &MUCInvite{}
			u.Invite.From, _ = parseJID(c.attr("from"))
			u.Invite.To, _ = parseJID(c.attr("to"))
			if r := c.child(NSMUCUser, "reason"); r != nil {
				u.Invite.Reason = r.text()
			}
		}
	}
	return u
}

func mucUserNode(u *MUCUser) *node {
	x := elem("x", NSMUCUser)
	if inv := u.Invite; inv != nil {
		n := elem("invite", "", "from", jidString(inv.From), "to", jidString(inv.To))
		if inv.Reason != "" {
			n.add(elem("reason", "").setText(inv.Reason))
		}
		x.add(n)
	}
	if u.Affiliation != "" || u.Role != "" || u.Nick != "" || jidString(u.JID) != "" || u.Actor != "" || u.Reason != "" {
		item := elem("item", "", "affiliation", u.Affiliation, "role", u.Role, "nick", u.Nick, "jid", jidString(u.JID))
		if u.Actor != "" {
			item.add(elem("actor", "", "nick", u.Actor))
		}
		if u.Reason != "" {
			item.add(elem("reason", "").setText(u.Reason))
		}
		x.add(item)
	}
	for _, code := range u.Statuses {
		x.add(elem("status", "", "code", strconv.Itoa(code)))
	}
	return x
}

func parseMUCJoin(x *node) *MUCJoin {
	j := &MUCJoin{}
	if h := x.child(NSMUC, "history"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.attr("maxstanzas"))); err == nil {
			j.MaxStanzas = &n
		}
		j.Since = parseStamp(h.attr("since"))
	}
	if p := x.child(NSMUC, "password"); p != nil {
		j.Password = p.text()
	}
	return j
}

func mucJoinNode(j *MUCJoin) (*node, error) {
	x := elem("x", NSMUC)
	if j.MaxStanzas != nil || !j.Since.IsZero() {
		var max, since string
		if j.MaxStanzas != nil {
			max = strconv.Itoa(*j.MaxStanzas)
		}
		if !j.Since.IsZero() {
			var err error
			if since, err = stampAttr(j.Since); err != nil {
				return nil, err
			}
		}
		x.add(elem("history", "", "maxstanzas", max, "since", since))
	}
	if j.Password != "" {
		x.add(elem("password", "").setText(j.Password))
	}
	return x, nil
}
