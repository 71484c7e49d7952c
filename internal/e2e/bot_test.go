package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// TestManagementBotStatus: a real Matrix user opens a DM with the management bot and gets
// the status answer, on SQLite and on PostgreSQL. TestManagementBotStatusSynapse is the same
// test on Synapse.
func TestManagementBotStatus(t *testing.T) {
	testManagementBotStatus(t, onHS(t, homeserver.Dendrite))
}

func testManagementBotStatus(t *testing.T, h homeserver.HS) {
	forDialects(t, func(t *testing.T, dialect store.Dialect) {
		st := openStore(t, dialect)
		startInProcess(t, h, st, testmodule.Config{})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		alice := newUser(t, h, "alice")
		bot := id.NewUserID("switchboard", domain)
		resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{bot}, IsDirect: true, Preset: "trusted_private_chat"})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the bot to join the DM", func() (bool, error) { return isJoined(ctx, alice, resp.RoomID, bot) })
		if _, err := alice.SendText(ctx, resp.RoomID, "status"); err != nil {
			t.Fatal(err)
		}
		var answer string
		waitFor(t, 30*time.Second, "the status answer", func() (bool, error) {
			msgs, err := roomMessages(ctx, alice, resp.RoomID)
			for _, e := range msgs {
				if e.Sender == bot && strings.Contains(e.Content.AsMessage().Body, "Inbox:") {
					answer = e.Content.AsMessage().Body
					return e.Content.AsMessage().MsgType == event.MsgNotice, nil
				}
			}
			return false, err
		})
		for _, want := range []string{"Switchboard e2e", "management", "testmod", "Outbox:"} {
			if !strings.Contains(answer, want) {
				t.Errorf("status answer lacks %q:\n%s", want, answer)
			}
		}
		if _, err := alice.SendText(ctx, resp.RoomID, "version"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the version answer", func() (bool, error) {
			msgs, err := roomMessages(ctx, alice, resp.RoomID)
			for _, e := range msgs {
				if e.Sender == bot && strings.TrimSpace(e.Content.AsMessage().Body) == "Switchboard e2e" {
					return true, nil
				}
			}
			return false, err
		})
	})
}
