package prosody

import (
	"context"
	"encoding/xml"
	"fmt"
	"sync"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// MUC namespaces used by JoinMUC.
const (
	nsMUC     = "http://jabber.org/protocol/muc"
	nsMUCUser = "http://jabber.org/protocol/muc#user"
	nsNick    = "http://jabber.org/protocol/nick"
)

// JoinOptions are the optional parts of a JoinMUC presence, as a Jitsi client (and
// Jitsi's mod_presence_identity) would send them.
type JoinOptions struct {
	// DisplayName is sent as a XEP-0172 <nick xmlns="http://jabber.org/protocol/nick">.
	DisplayName string
	// IdentityID and IdentityName, when either is set, are sent as Jitsi's
	// <identity><user><id/><name/></user></identity> (no namespace of its own).
	IdentityID, IdentityName string
}

// Occupant is a test client that is in a MUC room, made by JoinMUC.
type Occupant struct {
	// Sess is the client's session; do not call Serve on it (JoinMUC does).
	Sess *xmpp.Session
	// Room is the occupant JID room@MUCDomain/nick. Immutable.
	Room jid.JID

	mu      sync.Mutex
	left    chan struct{}   // closed when our own unavailable presence came back
	gone    bool            // guarded by mu
	present map[string]bool // nicks in the room as last seen; guarded by mu
	changed chan struct{}   // closed and replaced when present changes; guarded by mu
	done    chan struct{}   // closed when Serve returned
	close   sync.Once
}

// JoinMUC logs user@Domain in (DialClient), joins room@MUCDomain with nick and returns
// once the room has confirmed the join (our own presence, status 110). The join asks for
// no history. A refused join (an error presence, e.g. conflict when the nick is taken)
// is returned as an error wrapping the stanza.Error.
//
//	occ, err := srv.JoinMUC(ctx, "alice", "pw", "conf1", "a1b2", prosody.JoinOptions{
//		DisplayName: "Alice", IdentityID: "@alice:example.org", IdentityName: "Alice A."})
//	defer occ.Close()
//	err = occ.Leave(ctx) // unavailable presence; returns once the room confirmed it
func (s *Server) JoinMUC(ctx context.Context, user, password, room, nick string, opts JoinOptions) (*Occupant, error) {
	to, err := jid.New(room, s.MUCDomain, nick)
	if err != nil {
		return nil, fmt.Errorf("prosody: invalid room %q or nick %q: %w", room, nick, err)
	}
	sess, err := s.DialClient(ctx, user, password)
	if err != nil {
		return nil, err
	}
	o := &Occupant{Sess: sess, Room: to, left: make(chan struct{}), done: make(chan struct{}),
		present: make(map[string]bool), changed: make(chan struct{})}
	joined := make(chan error, 1)
	go func() {
		defer close(o.done)
		_ = sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "presence" {
				return nil
			}
			var p struct {
				From  string `xml:"from,attr"`
				Type  string `xml:"type,attr"`
				Codes []struct {
					Code string `xml:"code,attr"`
				} `xml:"http://jabber.org/protocol/muc#user x>status"`
				Error stanza.Error `xml:"error"`
			}
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r)).Decode(&p); err != nil {
				return nil
			}
			from, err := jid.Parse(p.From)
			if err != nil || !from.Bare().Equal(o.Room.Bare()) {
				return nil
			}
			if nick := from.Resourcepart(); nick != "" && (p.Type == "" || p.Type == "unavailable") {
				o.mu.Lock()
				if o.present[nick] != (p.Type == "") {
					if p.Type == "" {
						o.present[nick] = true
					} else {
						delete(o.present, nick)
					}
					close(o.changed)
					o.changed = make(chan struct{})
				}
				o.mu.Unlock()
			}
			if !from.Equal(o.Room) {
				return nil
			}
			self := false
			for _, c := range p.Codes {
				self = self || c.Code == "110"
			}
			switch {
			case p.Type == "error":
				select {
				case joined <- fmt.Errorf("prosody: joining %s refused: %w", o.Room, p.Error):
				default:
				}
			case p.Type == "unavailable" && self:
				o.mu.Lock()
				if !o.gone {
					o.gone = true
					close(o.left)
				}
				o.mu.Unlock()
			case p.Type == "" && self:
				select {
				case joined <- nil:
				default:
				}
			}
			return nil
		}))
	}()
	if err := sess.Send(ctx, joinPresence(to, opts)); err != nil {
		o.Close()
		return nil, fmt.Errorf("prosody: failed to send the join of %s: %w", to, err)
	}
	select {
	case err := <-joined:
		if err != nil {
			o.Close()
			return nil, err
		}
		return o, nil
	case <-o.done:
		o.Close()
		return nil, fmt.Errorf("prosody: the session of %s ended before the join of %s was confirmed", user, to)
	case <-ctx.Done():
		o.Close()
		return nil, fmt.Errorf("prosody: join of %s not confirmed: %w", to, ctx.Err())
	}
}

// joinPresence is the available presence to to with the MUC join element and opts.
func joinPresence(to jid.JID, opts JoinOptions) xml.TokenReader {
	text := func(name xml.Name, v string) xml.TokenReader {
		return xmlstream.Wrap(xmlstream.Token(xml.CharData(v)), xml.StartElement{Name: name})
	}
	history := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Local: "history"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "maxstanzas"}, Value: "0"}},
	})
	payload := []xml.TokenReader{xmlstream.Wrap(history, xml.StartElement{Name: xml.Name{Space: nsMUC, Local: "x"}})}
	if opts.DisplayName != "" {
		payload = append(payload, text(xml.Name{Space: nsNick, Local: "nick"}, opts.DisplayName))
	}
	if opts.IdentityID != "" || opts.IdentityName != "" {
		user := xmlstream.MultiReader(
			text(xml.Name{Local: "id"}, opts.IdentityID),
			text(xml.Name{Local: "name"}, opts.IdentityName),
		)
		payload = append(payload, xmlstream.Wrap(xmlstream.Wrap(user, xml.StartElement{Name: xml.Name{Local: "user"}}),
			xml.StartElement{Name: xml.Name{Local: "identity"}}))
	}
	return stanza.Presence{To: to}.Wrap(xmlstream.MultiReader(payload...))
}

// Leave sends an unavailable presence to the room and waits until the room has
// confirmed it (our own unavailable presence, status 110). The session stays open.
func (o *Occupant) Leave(ctx context.Context) error {
	if err := o.Sess.Send(ctx, stanza.Presence{To: o.Room, Type: stanza.UnavailablePresence}.Wrap(nil)); err != nil {
		return fmt.Errorf("prosody: failed to send the leave of %s: %w", o.Room, err)
	}
	select {
	case <-o.left:
		return nil
	case <-o.done:
		return fmt.Errorf("prosody: the session ended before the leave of %s was confirmed", o.Room)
	case <-ctx.Done():
		return fmt.Errorf("prosody: leave of %s not confirmed: %w", o.Room, ctx.Err())
	}
}

// WaitPresent waits until the occupant has seen nick in the room (an available
// presence from room/nick, its own included).
func (o *Occupant) WaitPresent(ctx context.Context, nick string) error {
	return o.wait(ctx, nick, true)
}

// WaitAbsent waits until nick is not in the room as the occupant last saw it (never
// seen, or its unavailable presence came).
func (o *Occupant) WaitAbsent(ctx context.Context, nick string) error {
	return o.wait(ctx, nick, false)
}

func (o *Occupant) wait(ctx context.Context, nick string, present bool) error {
	for {
		o.mu.Lock()
		ok, changed := o.present[nick] == present, o.changed
		o.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-o.done:
			return fmt.Errorf("prosody: the session of %s ended while waiting for %q", o.Room, nick)
		case <-ctx.Done():
			return fmt.Errorf("prosody: waiting for %q in %s (present=%v): %w", nick, o.Room.Bare(), present, ctx.Err())
		}
	}
}

// Close ends the session (the room sees the occupant leave) and waits for its reader.
// It is idempotent.
func (o *Occupant) Close() error {
	var err error
	o.close.Do(func() {
		err = o.Sess.Close()
		_ = o.Sess.Conn().Close()
		<-o.done
	})
	return err
}
