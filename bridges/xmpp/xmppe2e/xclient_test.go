package xmppe2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/iq"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// xclient is an XMPP user in a test: a real c2s session with Prosody (mellium) that
// records every stanza it receives.
type xclient struct {
	t    testing.TB
	sess *xmpp.Session
	jid  jid.JID // full JID

	// tolerant makes send failures a log line instead of a test error (for sessions that a
	// server restart may break).
	tolerant bool

	mu    sync.Mutex
	msgs  []*xmsg.Message
	pres  []*xmsg.Presence
	iqs   []*iq.IQ
	raw   [][]byte
	notif chan struct{}
}

// newXClient registers a fresh XMPP account and logs it in with initial presence.
func newXClient(t testing.TB, prefix string) *xclient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	user := unique(prefix)
	if err := xs.Register(ctx, user, "pw-"+user); err != nil {
		t.Fatal(err)
	}
	return loginXClient(t, user)
}

func loginXClient(t testing.TB, user string) *xclient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess, err := xs.DialClient(ctx, user, "pw-"+user)
	if err != nil {
		t.Fatal(err)
	}
	c := &xclient{t: t, sess: sess, jid: sess.LocalAddr(), notif: make(chan struct{}, 1)}
	go func() { _ = sess.Serve(xmpp.HandlerFunc(c.handle)) }()
	t.Cleanup(func() { _ = sess.Close() })
	c.send(&xmsg.Presence{})
	return c
}

func (c *xclient) bare() jid.JID { return c.jid.Bare() }

func (c *xclient) handle(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	d := xmlstream.MultiReader(xmlstream.Token(*start), r)
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		switch tt := tok.(type) {
		case xml.StartElement:
			depth++
			attrs := tt.Attr[:0:0]
			for _, a := range tt.Attr {
				if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
					continue
				}
				attrs = append(attrs, a)
			}
			tt.Attr = attrs
			tok = tt
		case xml.EndElement:
			depth--
		}
		if err := enc.EncodeToken(tok); err != nil {
			return nil
		}
		if depth == 0 {
			break
		}
	}
	_ = enc.Flush()
	raw := buf.Bytes()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.raw = append(c.raw, raw)
	switch start.Name.Local {
	case "message":
		if m, err := xmsg.ParseMessage(raw); err == nil {
			c.msgs = append(c.msgs, m)
		}
	case "presence":
		if p, err := xmsg.ParsePresence(raw); err == nil {
			c.pres = append(c.pres, p)
		}
	case "iq":
		if q, err := iq.Parse(raw); err == nil {
			c.iqs = append(c.iqs, q)
			if q.Type == "get" && q.Payload.Local == "ping" {
				go c.sendRaw(iq.Result(q, nil))
			}
		}
	}
	select {
	case c.notif <- struct{}{}:
	default:
	}
	return nil
}

type marshaler interface{ Marshal() ([]byte, error) }

// send marshals and sends a stanza.
func (c *xclient) send(s marshaler) {
	c.t.Helper()
	raw, err := s.Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(raw)
}

func (c *xclient) sendRaw(raw []byte) {
	toks, err := component.StanzaTokens(raw)
	if err != nil {
		c.t.Errorf("stanza: %v", err)
		return
	}
	// Not a context that ends: see sendUncancelled.
	if err := c.sess.Send(context.Background(), toks); err != nil {
		if c.tolerant {
			return // the stream's resend loop sends it again
		}
		c.t.Errorf("send: %v", err)
	}
}

// waitMessage waits for a received message that match accepts.
func (c *xclient) waitMessage(what string, match func(*xmsg.Message) bool) *xmsg.Message {
	c.t.Helper()
	var found *xmsg.Message
	c.wait(what, func() bool {
		for _, m := range c.msgs {
			if match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// waitPresence waits for a received presence that match accepts.
func (c *xclient) waitPresence(what string, match func(*xmsg.Presence) bool) *xmsg.Presence {
	c.t.Helper()
	var found *xmsg.Presence
	c.wait(what, func() bool {
		for _, p := range c.pres {
			if match(p) {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

func (c *xclient) wait(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.notif:
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			c.t.Fatalf("%s did not receive %s", c.jid, what)
		}
	}
}

// messages returns the received messages that match accepts.
func (c *xclient) messages(match func(*xmsg.Message) bool) []*xmsg.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*xmsg.Message
	for _, m := range c.msgs {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

// query sends an iq get and waits for its answer.
func (c *xclient) query(to jid.JID, payload []byte) *iq.IQ {
	c.t.Helper()
	return c.ask("get", to, payload)
}
