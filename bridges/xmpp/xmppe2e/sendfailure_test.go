package xmppe2e

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
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
