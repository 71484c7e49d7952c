package e2e

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// TestGhostsAndExactlyOnceSend: a module's ghost registers with a profile, opens a DM with a
// real user and sends a remote message; after a forced resend (the crash window between the
// homeserver accepting the send and Switchboard recording it) the user still sees it once.
// On Dendrite; TestGhostsAndExactlyOnceSendSynapse runs it on Synapse.
func TestGhostsAndExactlyOnceSend(t *testing.T) {
	testGhostsAndExactlyOnceSend(t, onHS(t, homeserver.Dendrite))
}

func testGhostsAndExactlyOnceSend(t *testing.T, h homeserver.HS) {
	forDialects(t, func(t *testing.T, dialect store.Dialect) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		st := openStore(t, dialect)
		p := startInProcess(t, h, st, testmodule.Config{})
		host := p.tm.Host()
		bob, err := host.Ghost(testmodule.GhostPrefix + "bob_" + string(dialect))
		if err != nil {
			t.Fatal(err)
		}
		if err := bob.SetDisplayName(ctx, "Bob (remote)"); err != nil {
			t.Fatal(err)
		}
		alice := newUser(t, h, "alice")
		if name, err := alice.GetDisplayName(ctx, bob.UserID()); err != nil || name.DisplayName != "Bob (remote)" {
			t.Fatalf("ghost profile = %+v, %v", name, err)
		}
		room, err := bob.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{alice.UserID}, IsDirect: true, Preset: "trusted_private_chat"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
		// Two messages, each sent and then forgotten as if Switchboard had crashed right
		// after the homeserver accepted it: "dedup" as if the crash came before the attempt
		// was recorded (the homeserver's transaction-ID deduplication must catch the
		// resend), "lookup" as if it came after (the outbox finds the event in the room).
		first := map[string]id.EventID{}
		for _, rid := range []string{"dedup", "lookup"} {
			msg := appservice.Message{RoomID: room, Sender: bob.UserID(), RemoteID: rid,
				Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "sent exactly once: " + rid}}
			if first[rid], err = host.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
		p.stop(t)
		for _, q := range []string{
			`UPDATE outbox SET state = 'pending', event_id = '', attempts = 0 WHERE module = $1 AND remote_id = 'dedup'`,
			`UPDATE outbox SET state = 'pending', event_id = '' WHERE module = $1 AND remote_id = 'lookup'`,
			`DELETE FROM message_map WHERE module = $1`,
		} {
			if _, err := st.DB().ExecContext(ctx, q, testmodule.ID); err != nil {
				t.Fatal(err)
			}
		}
		p2 := startInProcess(t, h, st, testmodule.Config{})
		for _, rid := range []string{"dedup", "lookup"} {
			var resent id.EventID
			waitFor(t, 30*time.Second, "the resend of "+rid, func() (bool, error) {
				_, eid, err := p2.tm.Host().Store().MessageByRemote(ctx, rid)
				resent = eid
				return err == nil, err
			})
			if resent != first[rid] {
				t.Errorf("%s: resend recorded event %s, want the first send's %s", rid, resent, first[rid])
			}
			// The module sends the same remote message again (a remote redelivery): no new event.
			again, err := p2.tm.Host().Send(ctx, appservice.Message{RoomID: room, Sender: bob.UserID(), RemoteID: rid,
				Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "sent exactly once: " + rid}})
			if err != nil || again != first[rid] {
				t.Errorf("%s: repeated Send = %s, %v; want %s", rid, again, err, first[rid])
			}
		}
		msgs, err := roomMessages(ctx, alice, room)
		if err != nil {
			t.Fatal(err)
		}
		if got := bodies(msgs, bob.UserID()); len(got) != 2 || got[0] != "sent exactly once: dedup" || got[1] != "sent exactly once: lookup" {
			t.Fatalf("the user sees %q, want each message exactly once", got)
		}
	})
}
