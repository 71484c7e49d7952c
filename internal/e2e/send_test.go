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
)

// TestGhostsAndExactlyOnceSend: a module's ghost registers with a profile, opens a DM with a
// real user and sends a remote message; after a forced resend (the crash window between the
// homeserver accepting the send and Switchboard recording it) the user still sees it once.
func TestGhostsAndExactlyOnceSend(t *testing.T) {
	forDialects(t, func(t *testing.T, dialect store.Dialect) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		st := openStore(t, dialect)
		p := startInProcess(t, st, testmodule.Config{})
		host := p.tm.Host()
		bob, err := host.Ghost(testmodule.GhostPrefix + "bob_" + string(dialect))
		if err != nil {
			t.Fatal(err)
		}
		if err := bob.SetDisplayName(ctx, "Bob (remote)"); err != nil {
			t.Fatal(err)
		}
		alice := newUser(t, "alice")
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
		msg := appservice.Message{RoomID: room, Sender: bob.UserID(), RemoteID: "remote-once",
			Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "sent exactly once"}}
		first, err := host.Send(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		p.stop(t)

		// Forget that the send succeeded, as if Switchboard had crashed right after it.
		if _, err := st.DB().ExecContext(ctx, `UPDATE outbox SET state = 'pending', event_id = '' WHERE module = $1 AND remote_id = $2`, testmodule.ID, "remote-once"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().ExecContext(ctx, `DELETE FROM message_map WHERE module = $1 AND remote_id = $2`, testmodule.ID, "remote-once"); err != nil {
			t.Fatal(err)
		}
		p2 := startInProcess(t, st, testmodule.Config{})
		var resent id.EventID
		waitFor(t, 30*time.Second, "the resend", func() (bool, error) {
			_, eid, err := p2.tm.Host().Store().MessageByRemote(ctx, "remote-once")
			resent = eid
			return err == nil, err
		})
		if resent != first {
			t.Errorf("resend got event %s, want the first send's %s", resent, first)
		}
		// The module enqueues the same remote message again (a remote redelivery): no new event.
		if again, err := p2.tm.Host().Send(ctx, msg); err != nil || again != first {
			t.Errorf("repeated Send = %s, %v; want %s", again, err, first)
		}
		msgs, err := roomMessages(ctx, alice, room)
		if err != nil {
			t.Fatal(err)
		}
		if got := bodies(msgs, bob.UserID()); len(got) != 1 || got[0] != "sent exactly once" {
			t.Fatalf("the user sees %q, want the message exactly once", got)
		}
	})
}
