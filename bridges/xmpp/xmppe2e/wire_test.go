package xmppe2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"image"
	"image/color"
	"image/png"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/disco"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/iq"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// Helpers for the tests of media, disco, presence, typing, moderation and avatars.

// ask sends an iq of type typ ("get" or "set") and waits for its answer (query is the
// same for gets).
func (c *xclient) ask(typ string, to jid.JID, payload []byte) *iq.IQ {
	c.t.Helper()
	qid := unique("q")
	c.sendRaw(iq.Build(typ, qid, jid.JID{}, to, payload))
	var res *iq.IQ
	c.wait("the answer to iq "+qid, func() bool {
		for _, q := range c.iqs {
			if q.ID == qid {
				res = q
				return true
			}
		}
		return false
	})
	return res
}

// mustAsk is ask that fails the test unless the answer is a result.
func (c *xclient) mustAsk(typ string, to jid.JID, payload []byte) *iq.IQ {
	c.t.Helper()
	res := c.ask(typ, to, payload)
	if res.Type != "result" {
		c.t.Fatalf("iq %s to %s: %s %+v", typ, to, res.Type, res.Error)
	}
	return res
}

// caps is an XEP-0115 <c/> element.
type caps struct {
	Hash, Node, Ver string
}

// waitCaps waits for a presence whose from attribute match accepts and that carries an
// XEP-0115 caps element, and returns the element.
func (c *xclient) waitCaps(what string, match func(from jid.JID, typ string) bool) caps {
	c.t.Helper()
	var found caps
	c.wait(what, func() bool {
		for _, raw := range c.raw {
			if cp, ok := presenceCaps(raw, match); ok {
				found = cp
				return true
			}
		}
		return false
	})
	return found
}

// presenceCaps reads the caps element of a presence that match accepts.
func presenceCaps(raw []byte, match func(from jid.JID, typ string) bool) (caps, bool) {
	var p struct {
		XMLName xml.Name
		From    string `xml:"from,attr"`
		Type    string `xml:"type,attr"`
		C       []struct {
			XMLName xml.Name
			Hash    string `xml:"hash,attr"`
			Node    string `xml:"node,attr"`
			Ver     string `xml:"ver,attr"`
		} `xml:"c"`
	}
	if xml.Unmarshal(raw, &p) != nil || p.XMLName.Local != "presence" {
		return caps{}, false
	}
	from, err := jid.Parse(p.From)
	if err != nil || !match(from, p.Type) {
		return caps{}, false
	}
	for _, c := range p.C {
		if c.XMLName.Space == disco.NSCaps {
			return caps{Hash: c.Hash, Node: c.Node, Ver: c.Ver}, true
		}
	}
	return caps{}, false
}

// discoInfo asks to for its disco#info at node.
func (c *xclient) discoInfo(to jid.JID, node string) *disco.Info {
	c.t.Helper()
	res := c.query(to, disco.InfoQuery(node))
	if res.Type != "result" {
		c.t.Fatalf("disco#info of %s: %s %+v", to, res.Type, res.Error)
	}
	info, err := disco.ParseInfo(res.Inner)
	if err != nil {
		c.t.Fatalf("disco#info of %s: %v", to, err)
	}
	return info
}

// botClient is the appservice's bot as a Matrix client, for what a server admin does by
// hand (such as giving a user power in a portal the bot made).
func botClient(t *testing.T) *mautrix.Client {
	t.Helper()
	cli, err := mautrix.NewClient(onHS.URL, id.NewUserID(onHS.Reg.SenderLocalpart, domain), onHS.Reg.AppToken)
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// botID is the appservice's bot.
func botID() id.UserID { return id.NewUserID(onHS.Reg.SenderLocalpart, domain) }

// pngOf is a small PNG in one colour.
func pngOf(t *testing.T, c color.RGBA) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for x := range 4 {
		for y := range 4 {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// joinedEphemeral syncs as cli and returns the ephemeral events of room.
func joinedEphemeral(ctx context.Context, cli *mautrix.Client, room id.RoomID) ([]*event.Event, error) {
	resp, err := matrixtest.InitialSync(ctx, cli)
	if err != nil {
		return nil, err
	}
	joined, ok := resp.Rooms.Join[room]
	if !ok {
		return nil, nil
	}
	for _, e := range joined.Ephemeral.Events {
		_ = e.Content.ParseRaw(e.Type)
	}
	return joined.Ephemeral.Events, nil
}

// waitTyping waits until user's typing in room, as cli sees it, is typing.
func waitTyping(t *testing.T, cli *mautrix.Client, room id.RoomID, user id.UserID, typing bool) {
	t.Helper()
	what := user.String() + " to stop typing"
	if typing {
		what = user.String() + " to type"
	}
	matrixtest.WaitFor(t, 30*time.Second, what, func() (bool, error) {
		evts, err := joinedEphemeral(context.Background(), cli, room)
		if err != nil {
			return false, err
		}
		now := false
		for _, e := range evts {
			if e.Type == event.EphemeralEventTyping {
				for _, u := range e.Content.AsTyping().UserIDs {
					now = now || u == user
				}
			}
		}
		return now == typing, nil
	})
}

// membership is user's latest membership event in room as cli sees it (nil when none).
func membership(ctx context.Context, cli *mautrix.Client, room id.RoomID, user id.UserID) (*event.Event, error) {
	evts, err := matrixtest.RoomEvents(ctx, cli, room, event.StateMember)
	if err != nil {
		return nil, err
	}
	var last *event.Event
	for _, e := range evts {
		if e.StateKey != nil && *e.StateKey == user.String() {
			last = e
		}
	}
	return last, nil
}
