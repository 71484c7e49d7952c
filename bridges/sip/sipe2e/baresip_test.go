package sipe2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/baresip"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestBaresipConversation is baresip 1.0.0, an independent SIP user agent registered at
// Kamailio, talking to a Matrix user: its MESSAGE opens the DM, the Matrix user's reply
// reaches it; its presence (PUBLISH to Kamailio's presence server, NOTIFYed to the
// bridge's subscription) becomes the ghost's Matrix presence; and a second baresip that
// SUBSCRIBEs to the Matrix user's SIP URI sees the Matrix user go online and offline.
func TestBaresipConversation(t *testing.T) {
	startBridge(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := newMatrixUser(t, "bare")
	aliceURI := sipURIOf(t, alice.UserID)
	ghost := ghostOf(t, "bare1")

	bare1 := baresip.StartTest(t, baresip.Options{
		AOR: "sip:bare1@" + sipDomain, Password: users["bare1"], Proxy: kam.ProxyURI("tcp"),
		RegisterInterval: time.Hour, PublishInterval: 10 * time.Minute, Peers: []string{aliceURI},
	})
	if err := bare1.WaitRegistered(ctx); err != nil {
		t.Fatal(err)
	}

	first := unique("hello from baresip ")
	if err := bare1.SendMessage(ctx, aliceURI, first); err != nil {
		t.Fatal(err)
	}
	room := matrixtest.AcceptInvite(t, alice)
	matrixtest.WaitEvent(t, alice, room, "baresip's message", bodyIs(ghost, first))

	reply := unique("hello from Matrix ")
	if _, err := alice.SendText(ctx, room, reply); err != nil {
		t.Fatal(err)
	}
	got, err := bare1.WaitMessage(ctx, func(m baresip.Message) bool { return m.Body == reply })
	if err != nil {
		t.Fatal(err)
	}
	if got.From != aliceURI {
		t.Errorf("baresip got the reply from %s, want %s", got.From, aliceURI)
	}

	t.Run("presence SIP to Matrix", func(t *testing.T) {
		// The bridge watches bare1 since its message; each PUBLISH is NOTIFYed to it.
		// baresip publishes itself online at start; each change below is awaited before
		// the next, so the NOTIFYs cannot overtake one another.
		waitPresence(t, alice, ghost, event.PresenceOnline)
		for _, st := range []struct {
			sip    string
			matrix event.Presence
		}{
			{baresip.PresenceOffline, event.PresenceOffline},
			{baresip.PresenceOnline, event.PresenceOnline},
			{baresip.PresenceOffline, event.PresenceOffline},
		} {
			if err := bare1.SetPresence(ctx, st.sip); err != nil {
				t.Fatal(err)
			}
			waitPresence(t, alice, ghost, st.matrix)
		}
	})

	t.Run("presence Matrix to SIP", func(t *testing.T) {
		// bare2 subscribes to alice's SIP URI at start; Kamailio forwards the SUBSCRIBE
		// to the bridge, whose NOTIFYs come back through Kamailio.
		bare2 := baresip.StartTest(t, baresip.Options{
			AOR: "sip:bare2@" + sipDomain, Password: users["bare2"], Proxy: kam.ProxyURI("tcp"),
			RegisterInterval: time.Hour, Contacts: []string{aliceURI},
		})
		if err := bare2.WaitRegistered(ctx); err != nil {
			t.Fatal(err)
		}
		for _, st := range []struct {
			matrix event.Presence
			sip    string
		}{
			{event.PresenceOffline, baresip.PresenceOffline}, // the first NOTIFY, answering the SUBSCRIBE
			{event.PresenceOnline, baresip.PresenceOnline},
			{event.PresenceOffline, baresip.PresenceOffline},
		} {
			setMatrixPresence(ctx, t, alice, st.matrix)
			if err := bare2.WaitPresence(ctx, aliceURI, st.sip); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestBaresipConversationSynapse is TestBaresipConversation on Synapse.
func TestBaresipConversationSynapse(t *testing.T) { onSynapse(t, TestBaresipConversation) }

// waitPresence waits until cli sees user's Matrix presence as want.
func waitPresence(t *testing.T, cli *mautrix.Client, user id.UserID, want event.Presence) {
	t.Helper()
	matrixtest.WaitFor(t, time.Minute, "the presence of "+string(user)+" to be "+string(want), func() (bool, error) {
		res, err := cli.GetPresence(context.Background(), user)
		if err != nil {
			return false, err
		}
		if res.Presence != want {
			return false, fmt.Errorf("is %q", res.Presence)
		}
		return true, nil
	})
}

// setMatrixPresence sets cli's presence; on Dendrite, which pushes no presence to
// appservices, the m.presence EDU is pushed to the bridge as Synapse would.
func setMatrixPresence(ctx context.Context, t *testing.T, cli *mautrix.Client, p event.Presence) {
	t.Helper()
	if err := cli.SetPresence(ctx, mautrix.ReqPresence{Presence: p}); err != nil {
		t.Fatal(err)
	}
	if onHS.Kind == homeserver.Dendrite {
		matrixtest.PushEphemeral(t, onHS.ASPort, onHS.Reg.ServerToken, map[string]any{
			"type": "m.presence", "sender": cli.UserID, "content": map[string]any{"presence": p},
		})
	}
}
