package xmppe2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
)

// TestDMLifecycle covers what happens to a 1:1 chat when the Matrix side goes away: a user
// who left the DM gets a new one for the next message, and a message that cannot be put
// in the room at all (the ghost was banned) comes back to its XMPP sender as an error.
func TestDMLifecycle(t *testing.T) {
	r := startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	bobGhost := ghostOf(t, bob.bare().String())

	t.Run("a left DM is opened again", func(t *testing.T) {
		carol := newMatrixUser(t, "carol")
		to := puppetOf(t, carol.UserID)
		bob.send(&xmsg.Message{ID: "d-1", Type: "chat", To: to, Body: "first"})
		first := acceptInvite(t, carol)
		waitMatrix(t, carol, first, "the first message", bodyIs(bobGhost, "first"))
		if _, err := carol.LeaveRoom(ctx, first); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.ForgetRoom(ctx, first); err != nil {
			t.Fatal(err)
		}
		chat := "dm:" + carol.UserID.String() + "|" + bob.bare().String()
		matrixtest.WaitFor(t, 20*time.Second, "the bridge to see carol leave", func() (bool, error) {
			left, _ := r.st.GetKV(ctx, "module/xmpp/dm-gone:"+chat)
			return left == first.String(), nil
		})
		bob.send(&xmsg.Message{ID: "d-2", Type: "chat", To: to, Body: "second"})
		second := acceptInvite(t, carol)
		if second == first {
			t.Fatalf("invited to the old room %s again", first)
		}
		waitMatrix(t, carol, second, "the second message in the new DM", bodyIs(bobGhost, "second"))
	})
	t.Run("a message Matrix refuses comes back as an error", func(t *testing.T) {
		dave := newMatrixUser(t, "dave")
		// private_chat, not trusted_private_chat, which would give the ghost dave's power.
		resp, err := dave.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", IsDirect: true, Invite: []id.UserID{bobGhost}})
		if err != nil {
			t.Fatal(err)
		}
		room := resp.RoomID
		matrixtest.WaitFor(t, 20*time.Second, "the ghost to join", func() (bool, error) {
			return matrixtest.IsJoined(ctx, dave, room, bobGhost)
		})
		if _, err := dave.BanUser(ctx, room, &mautrix.ReqBanUser{UserID: bobGhost, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		bob.send(&xmsg.Message{ID: "d-3", Type: "chat", To: puppetOf(t, dave.UserID), Body: "let me in", RequestReceipt: true})
		m := bob.waitMessage("an error for d-3", func(m *xmsg.Message) bool { return m.ID == "d-3" && m.Type == "error" })
		if m.Error == nil || m.Error.Condition != "remote-server-timeout" {
			t.Errorf("error %+v, want remote-server-timeout", m.Error)
		}
	})
}

// TestServerUnreachable runs the bridge against a component port where nothing listens:
// a Matrix message is tried with backoff and then reported to its sender as not delivered,
// with a notice and a failure status on the message.
func TestServerUnreachable(t *testing.T) {
	cfg := bridgeConfig()
	port, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Component.Address = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.Component.SendTimeout = config.Duration(500 * time.Millisecond)
	startBridgeWith(t, nil, cfg, false)
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	peer := jid.MustParse(unique("nobody") + "@" + xs.Domain)
	room := openDM(t, alice, peer)
	sent, err := alice.SendText(ctx, room, "is anyone there?")
	if err != nil {
		t.Fatal(err)
	}
	// The bot is not in the DM: the XMPP user's ghost reports.
	notice := waitMatrix(t, alice, room, "the failure notice", func(e *event.Event) bool {
		return e.Sender == ghostOf(t, peer.String()) && e.Content.AsMessage().MsgType == event.MsgNotice
	})
	c := notice.Content.AsMessage()
	if c.RelatesTo == nil || c.RelatesTo.InReplyTo == nil || c.RelatesTo.InReplyTo.EventID != sent.EventID ||
		!strings.Contains(c.Body, "the XMPP server cannot be reached") {
		t.Errorf("notice %q in reply to %+v, want a reply to %s saying the server cannot be reached", c.Body, c.RelatesTo, sent.EventID)
	}
	waitMatrix(t, alice, room, "the failure status", func(e *event.Event) bool {
		return e.Type == event.BeeperMessageStatus && e.Content.Raw["status"] == "FAIL_PERMANENT"
	})
}
