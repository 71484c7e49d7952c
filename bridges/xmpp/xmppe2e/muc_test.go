package xmppe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// joinMUC has the XMPP client join room under nick and waits for its self-presence.
func (c *xclient) joinMUC(room jid.JID, nick string) jid.JID {
	c.t.Helper()
	occ, err := room.WithResource(nick)
	if err != nil {
		c.t.Fatal(err)
	}
	zero := 0
	c.send(&xmsg.Presence{To: occ, MUC: &xmsg.MUCJoin{MaxStanzas: &zero}})
	c.waitPresence("its own presence in "+room.String(), func(p *xmsg.Presence) bool {
		return p.From.Equal(occ) && p.MUCUser != nil && p.MUCUser.Has(110)
	})
	return occ
}

// TestGroupChat covers a MUC portal: joined through the alias, a Matrix member appears in
// the MUC under their display name, messages go both ways exactly once (the room's
// reflection of a bridged message is not bridged back), the subject and the topic follow
// each other, and an occupant's arrival and departure are mirrored.
func TestGroupChat(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	room := jid.MustParse(unique("lobby") + "@" + xs.MUCDomain)
	bobOcc := bob.joinMUC(room, "Bob")
	bob.send(&xmsg.Message{Type: "groupchat", To: room, Body: "before matrix came", ID: "g-0"})
	bob.waitMessage("its reflection", func(m *xmsg.Message) bool { return m.ID == "g-0" && m.Type == "groupchat" })

	alice := newMatrixUser(t, "alice")
	alias, err := mapper().RoomAlias(room)
	if err != nil {
		t.Fatal(err)
	}
	join, err := alice.JoinRoom(ctx, alias.String(), nil)
	if err != nil {
		t.Fatalf("join %s: %v", alias, err)
	}
	portal := join.RoomID
	bobGhost := ghostOf(t, bob.bare().String())

	aliceOcc, _ := room.WithResource("alice M")
	bob.waitPresence("alice's puppet joining as 'alice M'", func(p *xmsg.Presence) bool { return p.From.Equal(aliceOcc) && p.Type == "" })
	waitMatrix(t, alice, portal, "the history message", bodyIs(bobGhost, "before matrix came"))
	matrixtest.WaitFor(t, 20*time.Second, "bob's ghost to be in the portal", func() (bool, error) {
		return matrixtest.IsJoined(ctx, alice, portal, bobGhost)
	})
	// The portal tells clients what it is bridged to (MSC2346), under both event types.
	for _, typ := range []event.Type{event.StateBridge, event.StateHalfShotBridge} {
		var info event.BridgeEventContent
		muc := strings.ToLower(room.String())
		key := "net.switchboard://xmpp/" + strings.ToLower(room.Domainpart()) + "/" + muc
		if err := alice.StateEvent(ctx, portal, typ, key, &info); err != nil || info.Protocol.ID != "xmpp" || info.Channel.ID != muc {
			t.Errorf("%s %q = %+v, %v; want protocol xmpp, channel %s", typ.Type, key, info, err, muc)
		}
	}

	t.Run("messages both ways, once", func(t *testing.T) {
		bob.send(&xmsg.Message{Type: "groupchat", To: room, Body: "hello from xmpp", ID: "g-1", OriginID: "g-1"})
		waitMatrix(t, alice, portal, "bob's message", bodyIs(bobGhost, "hello from xmpp"))
		if _, err := alice.SendText(ctx, portal, "hello from matrix"); err != nil {
			t.Fatal(err)
		}
		m := bob.waitMessage("alice's message", func(m *xmsg.Message) bool { return m.Body == "hello from matrix" })
		if !m.From.Equal(aliceOcc) || m.Type != "groupchat" {
			t.Errorf("from %s type %s, want %s groupchat", m.From, m.Type, aliceOcc)
		}
		time.Sleep(time.Second) // time for a wrongly bridged reflection to show up
		evts, err := matrixtest.RoomMessages(ctx, alice, portal)
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, e := range evts {
			counts[e.Content.AsMessage().Body]++
		}
		for _, body := range []string{"hello from matrix", "hello from xmpp", "before matrix came"} {
			if counts[body] != 1 {
				t.Errorf("%q appears %d times in the portal, want 1", body, counts[body])
			}
		}
	})
	t.Run("subject and topic", func(t *testing.T) {
		subject := "xmpp subject"
		bob.send(&xmsg.Message{Type: "groupchat", To: room, Subject: &subject, ID: "g-2"})
		matrixtest.WaitFor(t, 20*time.Second, "the topic", func() (bool, error) {
			var topic event.TopicEventContent
			err := alice.StateEvent(ctx, portal, event.StateTopic, "", &topic)
			return topic.Topic == subject, err
		})
		if _, err := alice.SendStateEvent(ctx, portal, event.StateTopic, "", &event.TopicEventContent{Topic: "matrix topic"}); err != nil {
			t.Fatal(err)
		}
		bob.waitMessage("the new subject", func(m *xmsg.Message) bool { return m.Subject != nil && *m.Subject == "matrix topic" })
	})
	t.Run("occupants join and leave", func(t *testing.T) {
		carl := newXClient(t, "carl")
		carl.joinMUC(room, "Carl")
		carlGhost := ghostOf(t, carl.bare().String())
		matrixtest.WaitFor(t, 20*time.Second, "carl's ghost to join", func() (bool, error) {
			return matrixtest.IsJoined(ctx, alice, portal, carlGhost)
		})
		// The join carries the ghost's global name; the nick follows as its name in the room.
		matrixtest.WaitFor(t, 20*time.Second, "carl's ghost named Carl in the room", func() (bool, error) {
			var member event.MemberEventContent
			err := alice.StateEvent(ctx, portal, event.StateMember, carlGhost.String(), &member)
			return err == nil && member.Displayname == "Carl", nil
		})
		carlOcc, _ := room.WithResource("Carl")
		carl.send(&xmsg.Presence{To: carlOcc, Type: "unavailable"})
		matrixtest.WaitFor(t, 20*time.Second, "carl's ghost to leave", func() (bool, error) {
			joined, err := matrixtest.IsJoined(ctx, alice, portal, carlGhost)
			return !joined, err
		})
	})
	t.Run("matrix member leaves the muc", func(t *testing.T) {
		if _, err := alice.LeaveRoom(ctx, portal); err != nil {
			t.Fatal(err)
		}
		bob.waitPresence("alice's puppet leaving", func(p *xmsg.Presence) bool { return p.From.Equal(aliceOcc) && p.Type == "unavailable" })
	})
	_ = bobOcc
	_ = id.RoomID("")
}
