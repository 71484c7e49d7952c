package jitsie2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestManagementCommand: "jitsi meet <room>" to the management bot adds the meeting to a
// room the sender is a member of, by ID or alias, "jitsi end <room>" removes it, and a
// user who is not a member of the room is refused.
func TestManagementCommand(t *testing.T) {
	r := startModule(t, moduleConfig(), false)
	alice := onHS.NewUser(t, "alice")
	carol := onHS.NewUser(t, "carol")
	bot := r.module.BotUserID()
	room := meetingRoom(t, alice, bot, "Team")
	alias := id.NewRoomAlias(unique("team"), domain)
	if _, err := alice.CreateAlias(context.Background(), alias, room); err != nil {
		t.Fatal(err)
	}

	aliceDM := botDM(t, alice)
	if reply := command(t, alice, aliceDM, "jitsi meet "+alias.String()); !strings.HasPrefix(reply, "Added a Jitsi video meeting") {
		t.Fatalf("jitsi meet: %q", reply)
	}
	if key, _, sender := widgetOf(t, alice, room); key == "" || sender != bot {
		t.Fatalf("no widget from the bot after jitsi meet (%q, %s)", key, sender)
	}
	carolDM := botDM(t, carol)
	if reply := command(t, carol, carolDM, "jitsi end "+room.String()); reply != "You are not a member of that room." {
		t.Errorf("jitsi end from a non-member: %q", reply)
	}
	if reply := command(t, alice, aliceDM, "jitsi end "+room.String()); reply != "Removed the meeting from this room." {
		t.Errorf("jitsi end: %q", reply)
	}
	if key, _, _ := widgetOf(t, alice, room); key != "" {
		t.Errorf("widget %s still there after jitsi end", key)
	}
}

// botDM opens a direct chat with the management bot and waits for its greeting.
func botDM(t *testing.T, cli *mautrix.Client) id.RoomID {
	t.Helper()
	bot := id.NewUserID(onHS.Reg.SenderLocalpart, domain)
	resp, err := cli.CreateRoom(context.Background(), &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{bot}})
	if err != nil {
		t.Fatal(err)
	}
	matrixtest.WaitEvent(t, cli, resp.RoomID, "the bot's greeting", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Sender == bot
	})
	return resp.RoomID
}

// command sends a command to the management bot and returns its reply's text (the bot's
// first message after the command).
func command(t *testing.T, cli *mautrix.Client, room id.RoomID, cmd string) string {
	t.Helper()
	sent := sendText(t, cli, room, cmd)
	bot := id.NewUserID(onHS.Reg.SenderLocalpart, domain)
	var reply string
	matrixtest.WaitFor(t, 30*time.Second, "the bot's reply to "+cmd, func() (bool, error) {
		evts, err := matrixtest.RoomEvents(context.Background(), cli, room, event.EventMessage)
		if err != nil {
			return false, err
		}
		after := false
		for _, e := range evts {
			if e.ID == sent {
				after = true
			} else if after && e.Sender == bot {
				reply = e.Content.AsMessage().Body
				return true, nil
			}
		}
		return false, nil
	})
	return reply
}
