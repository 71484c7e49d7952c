package jitsie2e

import (
	"context"
	"strings"
	"testing"

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

	mgmt := id.NewUserID(onHS.Reg.SenderLocalpart, domain) // the management bot
	aliceDM := matrixtest.BotDM(t, alice, mgmt)
	if reply := matrixtest.BotCommand(t, alice, aliceDM, mgmt, "jitsi meet "+alias.String()); !strings.HasPrefix(reply, "Added a Jitsi video meeting") {
		t.Fatalf("jitsi meet: %q", reply)
	}
	if key, _, sender := widgetOf(t, alice, room); key == "" || sender != bot {
		t.Fatalf("no widget from the bot after jitsi meet (%q, %s)", key, sender)
	}
	carolDM := matrixtest.BotDM(t, carol, mgmt)
	if reply := matrixtest.BotCommand(t, carol, carolDM, mgmt, "jitsi end "+room.String()); reply != "You are not a member of that room." {
		t.Errorf("jitsi end from a non-member: %q", reply)
	}
	if reply := matrixtest.BotCommand(t, alice, aliceDM, mgmt, "jitsi end "+room.String()); reply != "Removed the meeting from this room." {
		t.Errorf("jitsi end: %q", reply)
	}
	if key, _, _ := widgetOf(t, alice, room); key != "" {
		t.Errorf("widget %s still there after jitsi end", key)
	}
}
