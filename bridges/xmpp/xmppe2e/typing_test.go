package xmppe2e

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// TestTypingAndReadMarkers covers chat states (XEP-0085) and displayed markers (XEP-0333)
// in a 1:1 chat both ways. Matrix typing and receipts are delivered the way a homeserver
// that pushes ephemeral events to appservices delivers them (see push_test.go).
func TestTypingAndReadMarkers(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	aliceJID := puppetOf(t, alice.UserID)
	bobGhost := ghostOf(t, bob.bare().String())
	room := openDM(t, alice, bob.bare())

	t.Run("xmpp typing to matrix", func(t *testing.T) {
		bob.send(&xmsg.Message{ID: unique("cs-"), Type: "chat", To: aliceJID, ChatState: "composing"})
		waitTyping(t, alice, room, bobGhost, true)
		bob.send(&xmsg.Message{ID: unique("cs-"), Type: "chat", To: aliceJID, ChatState: "paused"})
		waitTyping(t, alice, room, bobGhost, false)
	})
	t.Run("xmpp message ends typing", func(t *testing.T) {
		bob.send(&xmsg.Message{ID: unique("cs-"), Type: "chat", To: aliceJID, ChatState: "composing"})
		waitTyping(t, alice, room, bobGhost, true)
		bob.send(&xmsg.Message{ID: unique("cs-"), Type: "chat", To: aliceJID, ChatState: "active", Body: "done typing"})
		waitMatrix(t, alice, room, "the message", bodyIs(bobGhost, "done typing"))
		waitTyping(t, alice, room, bobGhost, false)
	})
	t.Run("matrix typing to xmpp", func(t *testing.T) {
		for _, tc := range []struct {
			state  string
			typing []id.UserID
		}{
			{"composing", []id.UserID{alice.UserID}},
			{"paused", []id.UserID{}},
		} {
			pushEphemeral(t, map[string]any{"type": "m.typing", "room_id": room, "content": map[string]any{"user_ids": tc.typing}})
			bob.waitMessage("alice's chat state "+tc.state, func(m *xmsg.Message) bool {
				return m.From.Bare().Equal(aliceJID) && m.ChatState == tc.state && m.Body == ""
			})
		}
	})
	t.Run("matrix read receipt to xmpp", func(t *testing.T) {
		bob.send(&xmsg.Message{ID: "rm-1", OriginID: "rm-1", Type: "chat", To: aliceJID, Body: "read me", Markable: true})
		e := waitMatrix(t, alice, room, "bob's message", bodyIs(bobGhost, "read me"))
		pushEphemeral(t, map[string]any{"type": "m.receipt", "room_id": room, "content": map[string]any{
			e.ID.String(): map[string]any{"m.read": map[string]any{alice.UserID.String(): map[string]any{"ts": time.Now().UnixMilli()}}},
		}})
		m := bob.waitMessage("a displayed marker", func(m *xmsg.Message) bool { return m.Displayed != "" })
		if m.Displayed != "rm-1" || !m.From.Bare().Equal(aliceJID) {
			t.Errorf("displayed %q from %s, want rm-1 from %s", m.Displayed, m.From, aliceJID)
		}
	})
	t.Run("no marker for own messages or the ghost's receipts", func(t *testing.T) {
		sent, err := alice.SendText(ctx, room, "for bob")
		if err != nil {
			t.Fatal(err)
		}
		bob.waitMessage("alice's message", func(m *xmsg.Message) bool { return m.Body == "for bob" })
		isMarker := func(m *xmsg.Message) bool { return m.Displayed != "" }
		isComposing := func(m *xmsg.Message) bool { return m.ChatState == "composing" }
		markers, composing := len(bob.messages(isMarker)), len(bob.messages(isComposing))
		pushEphemeral(t, map[string]any{"type": "m.receipt", "room_id": room, "content": map[string]any{
			sent.EventID.String(): map[string]any{"m.read": map[string]any{
				bobGhost.String():     map[string]any{"ts": time.Now().UnixMilli()}, // the bridge's own
				alice.UserID.String(): map[string]any{"ts": time.Now().UnixMilli()}, // alice read her own message
			}},
		}})
		// A chat state pushed after them shows that the receipts were handled.
		pushEphemeral(t, map[string]any{"type": "m.typing", "room_id": room, "content": map[string]any{"user_ids": []id.UserID{alice.UserID}}})
		bob.wait("alice typing again", func() bool {
			n := 0
			for _, m := range bob.msgs {
				if isComposing(m) {
					n++
				}
			}
			return n > composing
		})
		if n := len(bob.messages(isMarker)) - markers; n != 0 {
			t.Errorf("%d displayed markers for receipts of alice's own message or of the ghost, want none", n)
		}
	})
}
