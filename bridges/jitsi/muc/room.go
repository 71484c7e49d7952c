package muc

import (
	"context"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// conn is one logged-in session and the rooms' state on it.
type conn struct {
	w    *Watcher
	sess *xmpp.Session
	lc   *limitConn
	ctx  context.Context // ends with the session
	hctx context.Context // Run's context, given to the Handler

	mu      sync.Mutex
	closed  bool                  // guarded by mu
	rooms   map[string]*roomState // by room key; guarded by mu
	out     []outPresence         // to send, in order; guarded by mu
	pending map[string][]Occupant // snapshots to report, by room key; guarded by mu
	order   []string              // room keys of pending, oldest first; guarded by mu
	outKick chan struct{}         // cap 1: out has grown
	repKick chan struct{}         // cap 1: pending has grown
}

// roomState is one watched room on one connection.
type roomState struct {
	key, name string
	nick      string              // the nick of the current join attempt, or in the room
	attempt   int                 // 1 for Config.Nick, n for Nick-n
	joined    bool                // our own presence came back
	occupants map[string]Occupant // by nick, without self and ignored nicks
	last      []Occupant          // last snapshot queued; nil before the first
	retry     *time.Timer         // a pending rejoin; may be nil
}

// outPresence is a presence the watcher sends to a room.
type outPresence struct {
	To   jid.JID
	Join bool // available, with the MUC join element; else unavailable
}

// TokenReader encodes p; a join asks for no history.
func (p outPresence) TokenReader() xml.TokenReader {
	if !p.Join {
		return stanza.Presence{To: p.To, Type: stanza.UnavailablePresence}.Wrap(nil)
	}
	history := xmlstream.Wrap(nil, xml.StartElement{
		Name: xml.Name{Local: "history"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "maxstanzas"}, Value: "0"}},
	})
	return stanza.Presence{To: p.To}.Wrap(xmlstream.Wrap(history, xml.StartElement{Name: xml.Name{Space: nsMUC, Local: "x"}}))
}

// send queues p; c.mu must be held.
func (c *conn) send(p outPresence) {
	c.out = append(c.out, p)
	select {
	case c.outKick <- struct{}{}:
	default:
	}
}

// nickFor is the nick of join attempt n.
func (c *conn) nickFor(n int) string {
	if n <= 1 {
		return c.w.cfg.Nick
	}
	return fmt.Sprintf("%s-%d", c.w.cfg.Nick, n)
}

// join starts joining the room keyed k unless it is already joined or joining.
func (c *conn) join(k, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.rooms[k] != nil {
		return
	}
	r := &roomState{key: k, name: name, attempt: 1, nick: c.nickFor(1), occupants: make(map[string]Occupant)}
	to, err := c.occupantJID(k, r.nick)
	if err != nil {
		zerolog.Ctx(c.ctx).Warn().Err(err).Str("room", name).Msg("the room name is not valid in a JID; not joining it")
		return
	}
	c.rooms[k] = r
	zerolog.Ctx(c.ctx).Debug().Str("room", name).Str("nick", r.nick).Msg("joining MUC room")
	c.send(outPresence{To: to, Join: true})
}

// leave leaves the room keyed k and forgets it.
func (c *conn) leave(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[k]
	if r == nil {
		return
	}
	delete(c.rooms, k)
	if r.retry != nil {
		r.retry.Stop()
	}
	delete(c.pending, k)
	c.order = slices.DeleteFunc(c.order, func(s string) bool { return s == k })
	if c.closed {
		return
	}
	if to, err := c.occupantJID(k, r.nick); err == nil {
		zerolog.Ctx(c.ctx).Debug().Str("room", r.name).Msg("leaving MUC room")
		c.send(outPresence{To: to})
	}
}

// scheduleRejoin joins r again after the rejoin delay; c.mu must be held.
func (c *conn) scheduleRejoin(r *roomState) {
	if r.retry != nil {
		r.retry.Stop()
	}
	r.retry = time.AfterFunc(c.w.rejoinDelay, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || c.rooms[r.key] != r || r.joined {
			return
		}
		r.attempt, r.nick = 1, c.nickFor(1)
		if to, err := c.occupantJID(r.key, r.nick); err == nil {
			c.send(outPresence{To: to, Join: true})
		}
	})
}

// close stops the rooms' timers and any further reporting.
func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, r := range c.rooms {
		if r.retry != nil {
			r.retry.Stop()
		}
	}
	c.pending, c.order = nil, nil
}

// handle reads one inbound stanza; only presence is of interest.
func (c *conn) handle(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local != "presence" {
		return nil
	}
	p, err := parsePresence(r, *start)
	if err != nil {
		// The rest of the stanza is skipped by the session, within the connection's budget.
		zerolog.Ctx(c.ctx).Debug().Err(err).Msg("dropping an unreadable presence")
		return nil
	}
	c.onPresence(p)
	return nil
}

// onPresence applies p to its room.
func (c *conn) onPresence(p *presence) {
	if !strings.EqualFold(p.From.Domainpart(), c.w.mucDomain.Domainpart()) || p.From.Localpart() == "" {
		return
	}
	log := zerolog.Ctx(c.ctx)
	k, nick := roomKey(p.From.Localpart()), p.From.Resourcepart()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[k]
	if c.closed || r == nil {
		return
	}
	if p.Type == "error" {
		if r.joined || (nick != "" && nick != r.nick) {
			return // not about our join, or about an earlier attempt
		}
		if p.ErrCond == "conflict" && r.attempt < maxNickAttempts {
			r.attempt++
			r.nick = c.nickFor(r.attempt)
			if to, err := c.occupantJID(k, r.nick); err == nil {
				log.Debug().Str("room", r.name).Str("nick", r.nick).Msg("MUC nick taken; trying another")
				c.send(outPresence{To: to, Join: true})
				return
			}
		}
		log.Warn().Str("room", r.name).Str("condition", p.ErrCond).Dur("retry_in", c.w.rejoinDelay).Msg("could not join MUC room")
		c.scheduleRejoin(r)
		return
	}
	if nick == "" {
		return // from the room itself
	}
	if p.has(statusSelf) || nick == r.nick {
		c.onSelf(r, p, nick)
		return
	}
	if c.w.ignored(nick) {
		return
	}
	switch p.Type {
	case "unavailable":
		o, ok := r.occupants[nick]
		delete(r.occupants, nick)
		if p.has(statusNickChange) && p.NewNick != "" && ok && !c.w.ignored(p.NewNick) && p.NewNick != r.nick {
			if o.DisplayName == o.Nick {
				o.DisplayName = p.NewNick
			}
			o.Nick = p.NewNick
			r.occupants[p.NewNick] = o
		}
	case "":
		if _, ok := r.occupants[nick]; !ok && len(r.occupants) >= maxOccupants {
			log.Warn().Str("room", r.name).Int("limit", maxOccupants).Msg("too many MUC occupants; the newest one is not reported")
			return
		}
		r.occupants[nick] = occupantFrom(p, nick)
	default:
		return
	}
	if r.joined {
		c.report(r)
	}
}

// onSelf applies our own presence in r.
func (c *conn) onSelf(r *roomState, p *presence, nick string) {
	log := zerolog.Ctx(c.ctx)
	switch p.Type {
	case "unavailable":
		if p.has(statusNickChange) && p.NewNick != "" {
			r.nick = p.NewNick
			return
		}
		if !r.joined {
			// The end of an earlier stay (Unwatch then Watch): what came before it
			// is stale; the room sends its full list after our new join.
			clear(r.occupants)
			return
		}
		r.joined = false
		clear(r.occupants)
		log.Warn().Str("room", r.name).Bool("destroyed", p.Destroy).Dur("rejoin_in", c.w.rejoinDelay).Msg("removed from MUC room")
		c.scheduleRejoin(r)
	case "":
		r.nick = nick // the room may have changed it (status 210)
		if !r.joined {
			r.joined = true
			log.Info().Str("room", r.name).Str("nick", nick).Int("occupants", len(r.occupants)).Msg("joined MUC room")
			r.last = nil
			c.report(r)
		}
	}
}

// occupantFrom makes the Occupant of an available presence.
func occupantFrom(p *presence, nick string) Occupant {
	o := Occupant{Nick: nick, DisplayName: p.XNick, UserID: p.ID, AvatarURL: p.Avatar, RealJID: p.RealJID}
	if o.DisplayName == "" {
		o.DisplayName = p.Name
	}
	if o.DisplayName == "" {
		o.DisplayName = nick
	}
	return o
}

// report queues r's snapshot if it differs from the last one; c.mu must be held.
func (c *conn) report(r *roomState) {
	snap := make([]Occupant, 0, len(r.occupants))
	for _, o := range r.occupants {
		snap = append(snap, o)
	}
	slices.SortFunc(snap, func(a, b Occupant) int { return strings.Compare(a.Nick, b.Nick) })
	if r.last != nil && slices.Equal(r.last, snap) {
		return
	}
	r.last = snap
	if _, ok := c.pending[r.key]; !ok {
		c.order = append(c.order, r.key)
	}
	c.pending[r.key] = slices.Clone(snap)
	select {
	case c.repKick <- struct{}{}:
	default:
	}
}
