package muc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// Namespaces read from occupant presence.
const (
	nsMUC       = "http://jabber.org/protocol/muc"
	nsMUCUser   = "http://jabber.org/protocol/muc#user"
	nsNick      = "http://jabber.org/protocol/nick"
	nsStanzaErr = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// Limits of one inbound presence.
const (
	// maxStanzaBytes bounds the text, names and attributes of one inbound stanza; Jitsi
	// presence (with its many extensions) is a few KiB.
	maxStanzaBytes = 64 << 10
	// maxDepth bounds element nesting inside a stanza.
	maxDepth = 32
	// maxNameRunes bounds a display name, user id or avatar URL as reported.
	maxNameRunes = 256
	// maxTextBytes bounds the text kept of one element before trimming.
	maxTextBytes = 4 << 10
)

// Errors of the presence parser.
var (
	errTooLarge = errors.New("muc: inbound stanza too large")
	errTooDeep  = errors.New("muc: inbound stanza nested too deeply")
	errNotPres  = errors.New("muc: not a presence")
)

// Status codes of XEP-0045 read here.
const (
	statusSelf       = 110
	statusNickChange = 303
)

// presence is what the watcher reads of one presence stanza.
type presence struct {
	From     jid.JID // the occupant JID room@muc/nick; zero when absent or invalid
	Type     string  // "" (available), "unavailable", "error", …
	Statuses []int   // XEP-0045 status codes
	MUCUser  bool    // a muc#user <x/> was present
	RealJID  string  // <item jid=…/>, validated; "" when hidden
	NewNick  string  // <item nick=…/> (with status 303)
	Destroy  bool    // <destroy/> in muc#user
	XNick    string  // XEP-0172 nick, sanitised
	ID       string  // Jitsi identity <user><id/>, sanitised
	Name     string  // Jitsi identity <user><name/>, sanitised
	Avatar   string  // Jitsi identity <user><avatar/>, sanitised
	ErrCond  string  // the stanza error condition for type="error"
}

// has reports whether p carries status code c.
func (p *presence) has(c int) bool {
	for _, s := range p.Statuses {
		if s == c {
			return true
		}
	}
	return false
}

// parsePresenceBytes parses raw, one presence element; used by tests and the fuzzer.
func parsePresenceBytes(raw []byte) (*presence, error) {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	for {
		t, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("muc: malformed presence: %w", err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			return parsePresence(d, t)
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("muc: malformed presence: text before the element")
			}
		case xml.Directive:
			return nil, fmt.Errorf("muc: malformed presence: directive")
		}
	}
}

// parsePresence reads the presence that start opens from r, which yields the tokens
// after start (up to and possibly including its end element; anything after that is not
// read). Every byte of names, attributes and text counts against maxStanzaBytes.
func parsePresence(r xml.TokenReader, start xml.StartElement) (*presence, error) {
	if start.Name.Local != "presence" {
		return nil, errNotPres
	}
	p := &presence{}
	budget := maxStanzaBytes - tokenSize(start)
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "from":
			if j, err := jid.Parse(a.Value); err == nil {
				p.From = j
			}
		case "type":
			p.Type = a.Value
		}
	}
	// path holds the local names (with a marker for the namespace of interest) of the
	// open elements below the presence.
	var path []string
	var text strings.Builder
	for {
		if budget < 0 {
			return nil, errTooLarge
		}
		t, err := r.Token()
		if t == nil && err != nil {
			if errors.Is(err, io.EOF) {
				if len(path) == 0 {
					return p, nil // the reader ended at the presence's end
				}
				return nil, fmt.Errorf("muc: malformed presence: %w", io.ErrUnexpectedEOF)
			}
			return nil, fmt.Errorf("muc: malformed presence: %w", err)
		}
		budget -= tokenSize(t)
		switch t := t.(type) {
		case xml.StartElement:
			if len(path) >= maxDepth {
				return nil, errTooDeep
			}
			key := elementKey(path, t.Name)
			path = append(path, key)
			text.Reset()
			p.start(key, t)
		case xml.EndElement:
			if len(path) == 0 {
				return p, nil // </presence>
			}
			p.end(path[len(path)-1], text.String())
			path = path[:len(path)-1]
			text.Reset()
		case xml.CharData:
			if text.Len()+len(t) <= maxTextBytes {
				text.Write(t)
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("muc: malformed presence: %w", err)
		}
	}
}

// elementKey names an element by its path of interest: "x", "x/item", "x/status",
// "x/destroy", "nick", "identity/user/name", "error/<condition>"; "" for the rest.
func elementKey(path []string, n xml.Name) string {
	parent := ""
	if len(path) > 0 {
		parent = path[len(path)-1]
		if parent == "" {
			return ""
		}
	}
	switch parent {
	case "":
		switch {
		case n.Local == "x" && n.Space == nsMUCUser:
			return "x"
		case n.Local == "nick" && n.Space == nsNick:
			return "nick"
		case n.Local == "identity": // Jitsi's, in no namespace of its own
			return "identity"
		case n.Local == "error":
			return "error"
		}
	case "x":
		switch n.Local {
		case "item", "status", "destroy":
			return "x/" + n.Local
		}
	case "identity":
		if n.Local == "user" {
			return "identity/user"
		}
	case "identity/user":
		switch n.Local {
		case "id", "name", "avatar":
			return "identity/user/" + n.Local
		}
	case "error":
		if n.Space == nsStanzaErr && n.Local != "text" {
			return "error/" + n.Local
		}
	}
	return ""
}

// start handles the opening of an element of interest.
func (p *presence) start(key string, t xml.StartElement) {
	switch key {
	case "x":
		p.MUCUser = true
	case "x/item":
		for _, a := range t.Attr {
			switch a.Name.Local {
			case "jid":
				if j, err := jid.Parse(a.Value); err == nil && p.RealJID == "" {
					p.RealJID = j.String()
				}
			case "nick":
				if j, err := jid.New("x", "x", a.Value); err == nil && p.NewNick == "" {
					p.NewNick = j.Resourcepart()
				}
			}
		}
	case "x/status":
		for _, a := range t.Attr {
			if a.Name.Local != "code" {
				continue
			}
			if c, err := strconv.Atoi(a.Value); err == nil && c >= 100 && c <= 999 && len(p.Statuses) < 16 {
				p.Statuses = append(p.Statuses, c)
			}
		}
	case "x/destroy":
		p.Destroy = true
	default:
		if cond, ok := strings.CutPrefix(key, "error/"); ok && p.ErrCond == "" {
			p.ErrCond = cond
		}
	}
}

// end handles the closing of an element of interest, with its text.
func (p *presence) end(key, text string) {
	set := func(dst *string) {
		if *dst == "" {
			*dst = sanitize(text)
		}
	}
	switch key {
	case "nick":
		set(&p.XNick)
	case "identity/user/id":
		set(&p.ID)
	case "identity/user/name":
		set(&p.Name)
	case "identity/user/avatar":
		set(&p.Avatar)
	}
}

// sanitize makes s safe to show: valid UTF-8, control and format characters (bidi
// overrides among them) dropped, white space runs collapsed, at most maxNameRunes runes.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	n, space := 0, false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == utf8.RuneError:
			continue
		}
		if n >= maxNameRunes {
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// tokenSize estimates the bytes a token took on the wire.
func tokenSize(t xml.Token) int {
	switch t := t.(type) {
	case xml.StartElement:
		n := 2 + len(t.Name.Space) + len(t.Name.Local)
		for _, a := range t.Attr {
			n += 4 + len(a.Name.Space) + len(a.Name.Local) + len(a.Value)
		}
		return n
	case xml.EndElement:
		return 3 + len(t.Name.Local)
	case xml.CharData:
		return len(t)
	case xml.Comment:
		return 7 + len(t)
	case xml.ProcInst:
		return 4 + len(t.Target) + len(t.Inst)
	case xml.Directive:
		return 3 + len(t)
	}
	return 1
}
