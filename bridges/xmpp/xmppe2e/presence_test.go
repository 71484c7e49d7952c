package xmppe2e

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestPresence covers a contact's presence: an XMPP user who adds a Matrix user to the
// roster is accepted at once, sees the Matrix user available and is asked back; once the
// XMPP user approves, the presence they broadcast (available, away, busy, logged out)
// becomes the presence of their ghost in Matrix. Directed presence works without a
// subscription.
func TestPresence(t *testing.T) {
	startBridge(t, nil)
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	puppet := puppetOf(t, alice.UserID)
	bobGhost := ghostOf(t, bob.bare().String())

	t.Run("a subscription is accepted and asked back", func(t *testing.T) {
		// Prosody gives subscription stanzas to the resources that fetched the roster.
		bob.mustAsk("get", jid.JID{}, []byte(`<query xmlns="jabber:iq:roster"/>`))
		bob.send(&xmsg.Presence{To: puppet, Type: "subscribe"})
		bob.waitPresence("subscribed", func(p *xmsg.Presence) bool { return p.From.Bare().Equal(puppet) && p.Type == "subscribed" })
		bob.waitPresence("the puppet available", func(p *xmsg.Presence) bool { return p.From.Bare().Equal(puppet) && p.Type == "" })
		bob.waitPresence("the puppet's subscription request", func(p *xmsg.Presence) bool {
			return p.From.Bare().Equal(puppet) && p.Type == "subscribe"
		})
		bob.send(&xmsg.Presence{To: puppet, Type: "subscribed"})
	})

	for _, tc := range []struct {
		name   string
		pres   xmsg.Presence // broadcast (no to)
		want   event.Presence
		status string
	}{
		{name: "away with a status", pres: xmsg.Presence{Show: "away", Status: "out for lunch"}, want: event.PresenceUnavailable, status: "out for lunch"},
		{name: "available", pres: xmsg.Presence{Status: "back"}, want: event.PresenceOnline, status: "back"},
		{name: "do not disturb", pres: xmsg.Presence{Show: "dnd", Status: "in a meeting"}, want: event.PresenceUnavailable, status: "in a meeting"},
		{name: "free to chat", pres: xmsg.Presence{Show: "chat", Status: "bored"}, want: event.PresenceOnline, status: "bored"},
	} {
		t.Run("broadcast "+tc.name, func(t *testing.T) {
			p := tc.pres
			bob.send(&p)
			waitPresenceOf(t, alice, bobGhost, tc.want, tc.status)
		})
	}

	t.Run("logging out", func(t *testing.T) {
		_ = bob.sess.Close()
		waitPresenceOf(t, alice, bobGhost, event.PresenceOffline, "")
	})

	t.Run("directed presence", func(t *testing.T) {
		carl := newXClient(t, "carl")
		carlGhost := ghostOf(t, carl.bare().String())
		carl.send(&xmsg.Presence{To: puppet, Show: "xa", Status: "on holiday"})
		waitPresenceOf(t, alice, carlGhost, event.PresenceUnavailable, "on holiday")
		carl.send(&xmsg.Presence{To: puppet, Type: "unavailable"})
		waitPresenceOf(t, alice, carlGhost, event.PresenceOffline, "")
	})
}

// waitPresenceOf waits until cli sees user's presence as want, with status unless that is
// empty.
func waitPresenceOf(t *testing.T, cli *mautrix.Client, user id.UserID, want event.Presence, status string) {
	t.Helper()
	matrixtest.WaitFor(t, 30*time.Second, "the presence "+string(want)+" of "+user.String(), func() (bool, error) {
		resp, err := cli.GetPresence(context.Background(), user)
		if err != nil {
			return false, err
		}
		return resp.Presence == want && (status == "" || resp.StatusMsg == status), nil
	})
}
