package xmppe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// TestFailureFeedback covers what a sender is told when the other side refuses a message:
// a Matrix user whose message XMPP bounces (no such account, or a group chat that does
// not let them speak) gets a failure notice and status on it, and an XMPP user whose
// message is too large for Matrix gets a stanza error.
func TestFailureFeedback(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")

	t.Run("a message to an xmpp account that does not exist", func(t *testing.T) {
		nobody := jid.MustParse(unique("nobody-") + "@" + xs.Domain)
		room := openDM(t, alice, nobody)
		sent, err := alice.SendText(ctx, room, "hello, anyone?")
		if err != nil {
			t.Fatal(err)
		}
		notice := waitFailureNotice(t, alice, room, sent.EventID, nobody.String()+" refused it (service-unavailable")
		// The bot is not in the DM: the XMPP user's ghost reports (appservice.FailureSender).
		if notice.Sender != ghostOf(t, nobody.String()) {
			t.Errorf("notice from %s, want the ghost of %s", notice.Sender, nobody)
		}
	})

	t.Run("a message the muc does not let through", func(t *testing.T) {
		bob := newXClient(t, "bob")
		muc := jid.MustParse(unique("quiet") + "@" + xs.MUCDomain)
		bob.joinMUC(muc, "Bob")
		alias, err := mapper().RoomAlias(muc)
		if err != nil {
			t.Fatal(err)
		}
		join, err := alice.JoinRoom(ctx, alias.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		occ, _ := muc.WithResource("alice M")
		bob.waitPresence("alice's puppet joining", func(p *xmsg.Presence) bool { return p.From.Equal(occ) && p.Type == "" })
		// Bob, the room's owner, takes alice's voice.
		bob.mustAsk("set", muc, []byte(`<query xmlns="http://jabber.org/protocol/muc#admin"><item nick="alice M" role="visitor"/></query>`))
		bob.waitPresence("alice's puppet as a visitor", func(p *xmsg.Presence) bool {
			return p.From.Equal(occ) && p.MUCUser != nil && p.MUCUser.Role == "visitor"
		})
		sent, err := alice.SendText(ctx, join.RoomID, "may I speak?")
		if err != nil {
			t.Fatal(err)
		}
		notice := waitFailureNotice(t, alice, join.RoomID, sent.EventID, muc.String()+" refused it (forbidden")
		if notice.Sender != botID() {
			t.Errorf("notice from %s, want the bot", notice.Sender)
		}
		if got := bob.messages(func(m *xmsg.Message) bool { return m.Body == "may I speak?" }); len(got) != 0 {
			t.Errorf("the room passed the visitor's message on: %+v", got[0])
		}
	})

	t.Run("a message too large for matrix", func(t *testing.T) {
		bob := newXClient(t, "bob")
		to := puppetOf(t, alice.UserID)
		// Under Prosody's c2s limit and the bridge's 256 KiB, over Matrix's 64 KiB per event.
		body := strings.Repeat("all work and no play makes jack a dull boy\n", (128<<10)/43)
		bob.send(&xmsg.Message{ID: "huge-1", Type: "chat", To: to, Body: body, RequestReceipt: true})
		m := bob.waitMessage("an error for huge-1", func(m *xmsg.Message) bool { return m.ID == "huge-1" && m.Type == "error" })
		if m.Error == nil {
			t.Fatalf("error message without a stanza error: %+v", m)
		}
		t.Logf("the sender got %s/%s %q", m.Error.Type, m.Error.Condition, m.Error.Text)
	})

	t.Run("a stanza over prosody's limit ends the sender's stream", func(t *testing.T) {
		// Prosody (c2s_stanza_size_limit, 256 KiB) closes the stream before the stanza
		// reaches the bridge: the sender sees a policy-violation stream error.
		user := unique("huge")
		if err := xs.Register(ctx, user, "pw-"+user); err != nil {
			t.Fatal(err)
		}
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		sess, err := xs.DialClient(dctx, user, "pw-"+user)
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		served := make(chan error, 1)
		go func() { served <- sess.Serve(xmpp.HandlerFunc(nil)) }()
		raw, err := (&xmsg.Message{ID: "huge-2", Type: "chat", To: puppetOf(t, alice.UserID), Body: strings.Repeat("x", 300<<10)}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		toks, err := component.StanzaTokens(raw)
		if err != nil {
			t.Fatal(err)
		}
		sendErr := sess.Send(dctx, toks) // may fail: Prosody can close the stream while it is written
		select {
		case err := <-served:
			if err == nil {
				t.Errorf("the stream ended without an error")
			}
			t.Logf("send: %v; the stream ended with: %v", sendErr, err)
		case <-time.After(20 * time.Second):
			t.Fatal("the stream stayed open")
		}
	})
}
