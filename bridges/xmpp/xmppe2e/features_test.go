package xmppe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestMessageFeatures covers edits, retractions, reactions, replies, typing and read
// markers in a 1:1 chat, both ways.
func TestMessageFeatures(t *testing.T) {
	startBridge(t, nil)
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	ctx := context.Background()
	aliceJID := puppetOf(t, alice.UserID)
	bobGhost := ghostOf(t, bob.bare().String())
	room := openDM(t, alice, bob.bare())

	// A message each way to refer to.
	mx, err := alice.SendText(ctx, room, "from matrix")
	if err != nil {
		t.Fatal(err)
	}
	toBob := bob.waitMessage("from matrix", func(m *xmsg.Message) bool { return m.Body == "from matrix" })
	bob.send(&xmsg.Message{ID: "x-1", OriginID: "x-1", Type: "chat", To: aliceJID, Body: "from xmpp", Markable: true})
	fromBob := waitMatrix(t, alice, room, "from xmpp", bodyIs(bobGhost, "from xmpp"))

	t.Run("edit matrix to xmpp", func(t *testing.T) {
		edit := &event.MessageEventContent{MsgType: event.MsgText, Body: "* from matrix, edited",
			NewContent: &event.MessageEventContent{MsgType: event.MsgText, Body: "from matrix, edited"},
			RelatesTo:  &event.RelatesTo{Type: event.RelReplace, EventID: mx.EventID}}
		if _, err := alice.SendMessageEvent(ctx, room, event.EventMessage, edit); err != nil {
			t.Fatal(err)
		}
		m := bob.waitMessage("the correction", func(m *xmsg.Message) bool { return m.Replace != "" })
		if m.Replace != toBob.ID || m.Body != "from matrix, edited" {
			t.Errorf("replace %q body %q, want replace %q body %q", m.Replace, m.Body, toBob.ID, "from matrix, edited")
		}
	})
	t.Run("edit xmpp to matrix", func(t *testing.T) {
		bob.send(&xmsg.Message{ID: "x-2", Type: "chat", To: aliceJID, Body: "from xmpp, edited", Replace: "x-1"})
		e := waitMatrix(t, alice, room, "the m.replace", func(e *event.Event) bool {
			c := e.Content.AsMessage()
			return e.Sender == bobGhost && c.RelatesTo != nil && c.RelatesTo.Type == event.RelReplace
		})
		c := e.Content.AsMessage()
		if c.RelatesTo.EventID != fromBob.ID || c.NewContent == nil || c.NewContent.Body != "from xmpp, edited" {
			t.Errorf("edit of %s with %+v, want of %s", c.RelatesTo.EventID, c.NewContent, fromBob.ID)
		}
	})
	t.Run("reply both ways with fallbacks stripped", func(t *testing.T) {
		reply := &event.MessageEventContent{MsgType: event.MsgText, Body: "> <" + bobGhost.String() + "> from xmpp\n\nmatrix reply",
			RelatesTo: &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: fromBob.ID}}}
		if _, err := alice.SendMessageEvent(ctx, room, event.EventMessage, reply); err != nil {
			t.Fatal(err)
		}
		m := bob.waitMessage("the reply", func(m *xmsg.Message) bool { return m.Reply != nil })
		if m.Reply.ID != "x-1" || !strings.HasSuffix(m.Body, "matrix reply") || strings.Contains(m.StripFallback(xmsg.NSReply), "> ") {
			t.Errorf("reply to %q body %q", m.Reply.ID, m.Body)
		}
		fb, r := xmsg.ReplyFallback("alice", "from matrix")
		body := fb + "xmpp reply"
		bob.send(&xmsg.Message{ID: "x-3", Type: "chat", To: aliceJID, Body: body,
			Reply:     &xmsg.Reply{To: aliceJID, ID: toBob.ID},
			Fallbacks: []xmsg.Fallback{{For: xmsg.NSReply, Ranges: []xmsg.Range{r}}}})
		e := waitMatrix(t, alice, room, "the Matrix reply", bodyIs(bobGhost, "xmpp reply"))
		if c := e.Content.AsMessage(); c.RelatesTo == nil || c.RelatesTo.InReplyTo == nil || c.RelatesTo.InReplyTo.EventID != mx.EventID {
			t.Errorf("relates_to %+v, want a reply to %s", c.RelatesTo, mx.EventID)
		}
	})
	t.Run("reactions both ways", func(t *testing.T) {
		// XMPP sends full sets: {👍, 🎉} then {🎉}: Matrix ends with one 🎉 by the ghost.
		bob.send(&xmsg.Message{ID: "x-4", Type: "chat", To: aliceJID, Reactions: &xmsg.Reactions{ID: toBob.ID, Emojis: []string{"👍", "🎉"}}})
		waitReactions(t, alice, room, bobGhost, mx.EventID, "👍🎉")
		bob.send(&xmsg.Message{ID: "x-5", Type: "chat", To: aliceJID, Reactions: &xmsg.Reactions{ID: toBob.ID, Emojis: []string{"🎉"}}})
		waitReactions(t, alice, room, bobGhost, mx.EventID, "🎉")

		// Matrix sends single reactions; XMPP gets the sender's whole set each time.
		r1, err := alice.SendReaction(ctx, room, fromBob.ID, "❤️")
		if err != nil {
			t.Fatal(err)
		}
		bob.waitMessage("a set with ❤️", func(m *xmsg.Message) bool {
			return m.Reactions != nil && m.Reactions.ID == "x-1" && strings.Join(m.Reactions.Emojis, "") == "❤️"
		})
		if _, err := alice.SendReaction(ctx, room, fromBob.ID, "👀"); err != nil {
			t.Fatal(err)
		}
		bob.waitMessage("a set with ❤️ and 👀", func(m *xmsg.Message) bool {
			return m.Reactions != nil && len(m.Reactions.Emojis) == 2
		})
		red, err := alice.RedactEvent(ctx, room, r1.EventID)
		if err != nil {
			t.Fatal(err)
		}
		pushRedaction(t, alice, room, red.EventID)
		bob.waitMessage("a set with 👀 only", func(m *xmsg.Message) bool {
			return m.Reactions != nil && strings.Join(m.Reactions.Emojis, "") == "👀"
		})
	})
	t.Run("retractions both ways", func(t *testing.T) {
		red, err := alice.RedactEvent(ctx, room, mx.EventID)
		if err != nil {
			t.Fatal(err)
		}
		pushRedaction(t, alice, room, red.EventID)
		bob.waitMessage("the retraction", func(m *xmsg.Message) bool { return m.Retract == toBob.ID })
		bob.send(&xmsg.Message{ID: "x-6", Type: "chat", To: aliceJID, Retract: "x-1"})
		matrixtest.WaitFor(t, 30*time.Second, "bob's message to be redacted", func() (bool, error) {
			evt, err := alice.GetEvent(ctx, room, fromBob.ID)
			if err != nil {
				return false, err
			}
			return evt.Unsigned.RedactedBecause != nil || len(evt.Content.Raw) == 0, nil
		})
	})
	t.Run("read markers and typing from xmpp", func(t *testing.T) {
		bob.send(&xmsg.Message{ID: "x-7", Type: "chat", To: aliceJID, Displayed: toBob.ID})
		bob.send(&xmsg.Message{ID: "x-8", Type: "chat", To: aliceJID, ChatState: "composing"})
		matrixtest.WaitFor(t, 30*time.Second, "the ghost's read receipt on alice's message", func() (bool, error) {
			resp, err := matrixtest.InitialSync(ctx, alice)
			if err != nil {
				return false, err
			}
			joined, ok := resp.Rooms.Join[room]
			if !ok {
				return false, nil
			}
			for _, e := range joined.Ephemeral.Events {
				if e.Type == event.EphemeralEventReceipt {
					_ = e.Content.ParseRaw(e.Type)
					if r, ok := (*e.Content.AsReceipt())[mx.EventID]; ok {
						if _, ok := r[event.ReceiptTypeRead][bobGhost]; ok {
							return true, nil
						}
					}
				}
			}
			return false, nil
		})
	})
}

// waitReactions waits until the ghost's live reactions to target are exactly want.
func waitReactions(t *testing.T, cli *mautrix.Client, room id.RoomID, ghost id.UserID, target id.EventID, want string) {
	t.Helper()
	var got string
	matrixtest.WaitFor(t, 30*time.Second, "reactions "+want, func() (bool, error) {
		evts, err := matrixtest.RoomEvents(context.Background(), cli, room, event.EventReaction)
		if err != nil {
			return false, err
		}
		var keys []string
		for _, e := range evts {
			r := e.Content.AsReaction()
			if e.Sender == ghost && r.RelatesTo.EventID == target && r.RelatesTo.Key != "" && e.Unsigned.RedactedBecause == nil {
				keys = append(keys, r.RelatesTo.Key)
			}
		}
		got = strings.Join(keys, "")
		return got == want, nil
	})
}
