package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

// TestAccessControl: with permission lists that admit alice only (local users left out
// stand for users of another server, which one Dendrite cannot provide), bob's invites of
// the bot and of a ghost are declined with a reason, carol's messages in alice's portal
// never reach the module, and in the bot's room dave gets one notice and no command answer.
// testAccessControl runs on any homeserver; it passed on Synapse too, where the package
// does not run it for time.
func TestAccessControl(t *testing.T) {
	testAccessControl(t, onHS(t, homeserver.Dendrite))
}

func testAccessControl(t *testing.T, h homeserver.HS) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st := openStore(t, store.SQLite)
	// Three users without permission, as the notices to one user are capped across rooms.
	alice, bob, carol, dave := newUser(t, h, "alice"), newUser(t, h, "bob"), newUser(t, h, "carol"), newUser(t, h, "dave")
	only := []string{alice.UserID.String()}
	tm := testmodule.New(testmodule.Config{}, st)
	sbcore.Start(t, sbcore.Options{
		Registration: h.Reg(), HomeserverURL: h.BaseURL(), Domain: domain, ASPort: h.AppservicePort(), Store: st,
		Modules: []appservice.Module{tm}, Version: "e2e", LogLevel: zerolog.InfoLevel,
		Retry:       appservice.Retry{Attempts: 3, Initial: 100 * time.Millisecond, Max: time.Second},
		Permissions: map[string][]string{management.ID: only, testmodule.ID: only},
	})
	bot := id.NewUserID("switchboard", domain)
	ghost := id.NewUserID(testmodule.GhostPrefix+"acl", domain)

	t.Run("invites of a user without permission are declined with a reason", func(t *testing.T) {
		for _, invitee := range []id.UserID{bot, ghost} {
			resp, err := bob.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{invitee}, IsDirect: true, Preset: "trusted_private_chat"})
			if err != nil {
				t.Fatal(err)
			}
			var member event.MemberEventContent
			waitFor(t, 30*time.Second, "the declined invite of "+invitee.String(), func() (bool, error) {
				err := bob.StateEvent(ctx, resp.RoomID, event.StateMember, invitee.String(), &member)
				return err == nil && member.Membership == event.MembershipLeave, nil
			})
			msgs, err := roomMessages(ctx, bob, resp.RoomID)
			if err != nil {
				t.Fatal(err)
			}
			if got := bodies(msgs, invitee); len(got) != 1 || !strings.Contains(got[0], "not permitted") {
				t.Errorf("%s declined with the messages %q, want one saying why (leave reason %q)", invitee, got, member.Reason)
			}
		}
	})

	t.Run("messages of a user without permission are not bridged", func(t *testing.T) {
		resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{ghost}, Preset: "public_chat"})
		if err != nil {
			t.Fatal(err)
		}
		room := resp.RoomID
		waitFor(t, 30*time.Second, "the ghost to join alice's room", func() (bool, error) { return isJoined(ctx, alice, room, ghost) })
		if _, err := carol.JoinRoom(ctx, room.String(), nil); err != nil {
			t.Fatal(err)
		}
		fromCarol, err := carol.SendText(ctx, room, "carol writes")
		if err != nil {
			t.Fatal(err)
		}
		fromAlice, err := alice.SendText(ctx, room, "alice writes")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "alice's message to reach the module", func() (bool, error) {
			eff, err := testmodule.Effects(ctx, st)
			return eff[fromAlice.EventID.String()] == 1, err
		})
		time.Sleep(time.Second) // carol's message, journaled before alice's, had its turn
		eff, err := testmodule.Effects(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if eff[fromCarol.EventID.String()] != 0 {
			t.Errorf("carol's message reached the module")
		}
	})

	t.Run("commands of a user without permission get one notice", func(t *testing.T) {
		resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{bot}, Preset: "public_chat"})
		if err != nil {
			t.Fatal(err)
		}
		room := resp.RoomID
		waitFor(t, 30*time.Second, "the bot to join alice's room", func() (bool, error) { return isJoined(ctx, alice, room, bot) })
		if _, err := dave.JoinRoom(ctx, room.String(), nil); err != nil {
			t.Fatal(err)
		}
		for _, cmd := range []string{"status", "version", "help"} {
			if _, err := dave.SendText(ctx, room, cmd); err != nil {
				t.Fatal(err)
			}
		}
		notices := func() ([]string, error) {
			msgs, err := roomMessages(ctx, alice, room)
			var out []string
			for _, e := range msgs {
				if e.Sender == bot && strings.Contains(e.Content.AsMessage().Body, "not permitted") {
					out = append(out, e.Content.AsMessage().Body)
				}
			}
			return out, err
		}
		waitFor(t, 30*time.Second, "the refusal notice", func() (bool, error) {
			n, err := notices()
			return len(n) > 0, err
		})
		time.Sleep(2 * time.Second)
		n, err := notices()
		if err != nil {
			t.Fatal(err)
		}
		if len(n) != 1 || !strings.Contains(n[0], dave.UserID.String()) {
			t.Errorf("notices %q, want exactly one naming dave (rate-limited)", n)
		}
		msgs, err := roomMessages(ctx, alice, room)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range msgs {
			if body := e.Content.AsMessage().Body; e.Sender == bot && (strings.Contains(body, "Inbox:") || strings.Contains(body, "Switchboard e2e")) {
				t.Errorf("the bot answered dave's command: %q", body)
			}
		}
	})
}
