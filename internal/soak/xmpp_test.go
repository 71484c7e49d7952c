package soak

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xid"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// xclient is the XMPP user of the soak: a real c2s session with Prosody that records
// every message it receives and, like a careful client, asks for an XEP-0184 receipt for
// each message it sends and resends (same id) what got none within resendAfter.
type xclient struct {
	t    testing.TB
	sess *xmpp.Session
	jid  jid.JID

	mu      sync.Mutex
	msgs    []*xmsg.Message      // guarded by mu
	sentAt  map[string]time.Time // guarded by mu; by marker (= stanza id)
	acked   map[string]bool      // guarded by mu; markers the bridge acknowledged
	resends int                  // guarded by mu
}

const resendAfter = 4 * time.Second

// newXClient registers a fresh XMPP account and logs it in with initial presence.
func newXClient(t testing.TB) *xclient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	user := dendrite.Unique("bob")
	if err := xs.Register(ctx, user, "pw-"+user); err != nil {
		t.Fatal(err)
	}
	sess, err := xs.DialClient(ctx, user, "pw-"+user)
	if err != nil {
		t.Fatal(err)
	}
	c := &xclient{t: t, sess: sess, jid: sess.LocalAddr(), sentAt: map[string]time.Time{}, acked: map[string]bool{}}
	go func() { _ = sess.Serve(xmpp.HandlerFunc(c.handle)) }()
	t.Cleanup(func() { _ = sess.Close() })
	c.send(&xmsg.Presence{})
	return c
}

// handle records a received message stanza (other stanzas are ignored).
func (c *xclient) handle(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if start.Name.Local != "message" {
		return nil
	}
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
				if a.Name.Local != "xmlns" && a.Name.Space != "xmlns" {
					attrs = append(attrs, a)
				}
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
	m, err := xmsg.ParseMessage(buf.Bytes())
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	if m.Received != "" {
		c.acked[m.Received] = true
	}
	return nil
}

type marshaler interface{ Marshal() ([]byte, error) }

// send marshals and sends a stanza; a failed send is left to the resend loop.
func (c *xclient) send(s marshaler) {
	raw, err := s.Marshal()
	if err != nil {
		c.t.Errorf("marshal: %v", err)
		return
	}
	toks, err := component.StanzaTokens(raw)
	if err != nil {
		c.t.Errorf("stanza: %v", err)
		return
	}
	// Not a context that ends: an interrupted write would break the session.
	_ = c.sess.Send(context.Background(), toks)
}

// sendMarker sends the chat message marker (also its id and origin-id) to to.
func (c *xclient) sendMarker(to jid.JID, marker string) {
	c.mu.Lock()
	c.sentAt[marker] = time.Now()
	c.mu.Unlock()
	c.send(&xmsg.Message{ID: marker, OriginID: marker, Type: "chat", To: to, Body: marker, RequestReceipt: true})
}

// resendLoop resends messages without a receipt until ctx ends.
func (c *xclient) resendLoop(ctx context.Context, to jid.JID) {
	for ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		var due []string
		c.mu.Lock()
		for marker, at := range c.sentAt {
			if !c.acked[marker] && time.Since(at) > resendAfter {
				due = append(due, marker)
			}
		}
		c.resends += len(due)
		c.mu.Unlock()
		for _, marker := range due {
			c.sendMarker(to, marker)
		}
	}
}

// received counts the chat messages whose body starts with prefix, by body: the stanzas
// received and, per body, the stanzas per stanza id.
func (c *xclient) received(prefix string) (stanzas map[string]int, byID map[string]map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stanzas, byID = map[string]int{}, map[string]map[string]int{}
	for _, m := range c.msgs {
		if m.Type == "error" || !strings.HasPrefix(m.Body, prefix) {
			continue
		}
		stanzas[m.Body]++
		sid := m.ID
		if sid == "" {
			sid = "origin:" + m.OriginID
		}
		if byID[m.Body] == nil {
			byID[m.Body] = map[string]int{}
		}
		byID[m.Body][sid]++
	}
	return stanzas, byID
}

func xmppMapper() xid.Mapper {
	return xid.Mapper{Homeserver: domain, Component: xs.ComponentDomain, Prefix: xid.DefaultPrefix}
}

// openDM has the Matrix user open a DM with the XMPP user's ghost and waits for the ghost
// to join; it returns the room and the Matrix user's puppet JID.
func openDM(t testing.TB, cli *mautrix.Client, peer jid.JID) (id.RoomID, jid.JID) {
	t.Helper()
	ctx := context.Background()
	ghost, err := xmppMapper().GhostUserID(peer.Bare())
	if err != nil {
		t.Fatal(err)
	}
	puppet, err := xmppMapper().PuppetJID(cli.UserID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{ghost}})
	if err != nil {
		t.Fatal(err)
	}
	matrixtest.WaitFor(t, 30*time.Second, "the ghost to join the DM", func() (bool, error) {
		return matrixtest.IsJoined(ctx, cli, resp.RoomID, ghost)
	})
	return resp.RoomID, puppet
}

// Markers of the four directions: a prefix and a number, e.g. "soak-x-00042".
const (
	markXMPPIn  = "soak-x-"     // XMPP → Matrix
	markXMPPOut = "soak-m-"     // Matrix → XMPP
	markMailIn  = "soak-mail-"  // mail → Matrix
	markMailOut = "soak-reply-" // Matrix → mail
)

func marker(prefix string, i int) string { return fmt.Sprintf("%s%05d", prefix, i) }

// sendXMPPLoad has bob send a message to the puppet every gap until ctx ends and returns
// how many it sent.
func sendXMPPLoad(ctx context.Context, bob *xclient, to jid.JID, gap time.Duration) int {
	n := 0
	for ; ctx.Err() == nil; n++ {
		bob.sendMarker(to, marker(markXMPPIn, n))
		time.Sleep(gap)
	}
	return n
}

// sendMatrixLoad has cli send a message into room every gap until ctx ends (content makes
// message i) and returns the events sent. A send is retried with its transaction ID until
// it succeeds, also after ctx ended, so that each started message is sent.
func sendMatrixLoad(ctx context.Context, t testing.TB, cli *mautrix.Client, room id.RoomID, gap time.Duration,
	content func(i int) *event.MessageEventContent) []id.EventID {
	txn := dendrite.Unique("soak")
	var out []id.EventID
	for i := 0; ctx.Err() == nil; i++ {
		c := content(i)
		if c == nil {
			return out // ctx ended while waiting for a thread root
		}
		for try := 0; ; try++ {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			resp, err := cli.SendMessageEvent(sctx, room, event.EventMessage, c, mautrix.ReqSendEvent{TransactionID: fmt.Sprintf("%s-%d", txn, i)})
			cancel()
			if err == nil {
				out = append(out, resp.EventID)
				break
			}
			if try == 20 {
				t.Errorf("send %q: %v", c.Body, err)
				return out
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(gap)
	}
	return out
}
