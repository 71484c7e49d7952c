package xmppe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xid"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

func mapper() xid.Mapper {
	return xid.Mapper{Homeserver: domain, Component: xs.ComponentDomain, Prefix: xid.DefaultPrefix}
}

// puppetOf is the JID of a Matrix user in XMPP.
func puppetOf(t testing.TB, user id.UserID) jid.JID {
	t.Helper()
	j, err := mapper().PuppetJID(user)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// openDM has the Matrix user open a DM with the XMPP user's ghost and waits for the ghost
// to join.
func openDM(t testing.TB, cli *mautrix.Client, peer jid.JID) id.RoomID {
	t.Helper()
	ctx := context.Background()
	ghost := ghostOf(t, peer.Bare().String())
	resp, err := cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{ghost}})
	if err != nil {
		t.Fatal(err)
	}
	matrixtest.WaitFor(t, 20*time.Second, "the ghost to join the DM", func() (bool, error) {
		return matrixtest.IsJoined(ctx, cli, resp.RoomID, ghost)
	})
	return resp.RoomID
}

// waitMatrix waits for a message in the room that match accepts and returns it.
var waitMatrix = matrixtest.WaitEvent

func bodyIs(sender id.UserID, body string) func(*event.Event) bool {
	return func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Sender == sender && e.Content.AsMessage().Body == body
	}
}

// acceptInvite waits for an invite to a DM from the ghost and joins it.
var acceptInvite = matrixtest.AcceptInvite

func TestDirectChats(t *testing.T) {
	startBridge(t, nil)
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	ctx := context.Background()
	aliceJID := puppetOf(t, alice.UserID)
	bobGhost := ghostOf(t, bob.bare().String())

	t.Run("matrix to xmpp", func(t *testing.T) {
		room := openDM(t, alice, bob.bare())
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: "hello **bob**",
			Format: event.FormatHTML, FormattedBody: "hello <strong>bob</strong>"}
		resp, err := alice.SendMessageEvent(ctx, room, event.EventMessage, content)
		if err != nil {
			t.Fatal(err)
		}
		m := bob.waitMessage("alice's hello", func(m *xmsg.Message) bool { return strings.HasPrefix(m.Body, "hello") })
		if !m.From.Bare().Equal(aliceJID) || m.Type != "chat" {
			t.Errorf("from %s type %q, want %s chat", m.From, m.Type, aliceJID)
		}
		if m.OriginID == "" || m.OriginID != m.ID || !m.RequestReceipt || !m.Markable {
			t.Errorf("origin-id %q id %q receipt %v markable %v: want a stable id, a receipt request and markable", m.OriginID, m.ID, m.RequestReceipt, m.Markable)
		}
		if m.Body != "hello *bob*" || !strings.Contains(m.XHTML, "<strong>bob</strong>") {
			t.Errorf("body %q xhtml %q", m.Body, m.XHTML)
		}
		_ = resp

		bob.send(&xmsg.Message{ID: "bob-1", OriginID: "bob-1", Type: "chat", To: aliceJID, Body: "hi _alice_", RequestReceipt: true})
		e := waitMatrix(t, alice, room, "bob's answer", bodyIs(bobGhost, "hi _alice_"))
		if got := e.Content.AsMessage().FormattedBody; got != "hi <em>alice</em>" {
			t.Errorf("formatted_body %q, want XEP-0393 emphasis as <em>", got)
		}
		bob.waitMessage("a receipt for bob-1", func(m *xmsg.Message) bool { return m.Received == "bob-1" })
	})

	t.Run("xmpp to matrix opens a DM", func(t *testing.T) {
		carol := newMatrixUser(t, "carol")
		bob.send(&xmsg.Message{ID: "bob-2", Type: "chat", To: puppetOf(t, carol.UserID), Body: "are you there, carol?", RequestReceipt: true})
		room := acceptInvite(t, carol)
		waitMatrix(t, carol, room, "bob's first message", bodyIs(bobGhost, "are you there, carol?"))
		bob.waitMessage("a receipt for bob-2", func(m *xmsg.Message) bool { return m.Received == "bob-2" })
		if _, err := carol.SendText(ctx, room, "yes"); err != nil {
			t.Fatal(err)
		}
		bob.waitMessage("carol's yes", func(m *xmsg.Message) bool { return m.Body == "yes" && m.From.Bare().Equal(puppetOf(t, carol.UserID)) })
	})

	t.Run("unknown matrix user gets a stanza error", func(t *testing.T) {
		bob.send(&xmsg.Message{ID: "bob-3", Type: "chat", To: puppetOf(t, id.NewUserID("nobody-here", domain)), Body: "hello?"})
		m := bob.waitMessage("an error for bob-3", func(m *xmsg.Message) bool { return m.ID == "bob-3" && m.Type == "error" })
		if m.Error == nil || m.Error.Condition != "item-not-found" {
			t.Errorf("error %+v, want item-not-found", m.Error)
		}
	})
}
