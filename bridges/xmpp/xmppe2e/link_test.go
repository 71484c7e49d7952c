package xmppe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestLinkCommand links an existing Matrix room to a MUC with the management bot's
// "xmpp link" command: the room's members join the MUC and messages flow both ways; then
// unlinks it with "xmpp unlink" and links it again.
func TestLinkCommand(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	room := jid.MustParse(unique("team") + "@" + xs.MUCDomain)
	bob.joinMUC(room, "Bob")

	alice := newMatrixUser(t, "alice")
	bot := id.NewUserID("switchboard", domain)
	resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Team", Invite: []id.UserID{bot}})
	if err != nil {
		t.Fatal(err)
	}
	portal := resp.RoomID
	matrixtest.WaitFor(t, 20*time.Second, "the bot to join", func() (bool, error) {
		return matrixtest.IsJoined(ctx, alice, portal, bot)
	})
	if _, err := alice.SendText(ctx, portal, "xmpp link "+room.String()); err != nil {
		t.Fatal(err)
	}
	waitMatrix(t, alice, portal, "the bot's answer", func(e *event.Event) bool {
		return e.Sender == bot && strings.HasPrefix(e.Content.AsMessage().Body, "Linked this room to "+room.String())
	})
	aliceOcc, _ := room.WithResource("alice M")
	bob.waitPresence("alice's puppet joining", func(p *xmsg.Presence) bool { return p.From.Equal(aliceOcc) && p.Type == "" })

	if _, err := alice.SendText(ctx, portal, "hi team"); err != nil {
		t.Fatal(err)
	}
	bob.waitMessage("alice's message", func(m *xmsg.Message) bool { return m.Body == "hi team" && m.From.Equal(aliceOcc) })
	bob.send(&xmsg.Message{Type: "groupchat", To: room, Body: "hi alice", ID: "l-1"})
	waitMatrix(t, alice, portal, "bob's message", bodyIs(ghostOf(t, bob.bare().String()), "hi alice"))

	// The management bot lists the link.
	dm := matrixtest.BotDM(t, alice, bot)
	if got := matrixtest.BotCommand(t, alice, dm, bot, "xmpp list"); !strings.Contains(got, room.String()+" ↔ "+portal.String()) {
		t.Errorf("xmpp list: want %s ↔ %s:\n%s", room, portal, got)
	}

	// Unlinked, the room keeps its members; the puppets leave the MUC and nothing more is
	// bridged. Linking it again shows what did not cross: bob gets alice's next message,
	// not the one sent while the room was unlinked.
	if got := matrixtest.BotCommand(t, alice, dm, bot, "xmpp unlink "+room.String()); !strings.HasPrefix(got, "Unlinked "+room.String()) {
		t.Fatalf("xmpp unlink: %s", got)
	}
	waitMatrix(t, alice, portal, "the unlink notice", func(e *event.Event) bool {
		return e.Sender == bot && e.Content.AsMessage().Body == "This room is no longer linked to "+room.String()+"."
	})
	bob.waitPresence("alice's puppet leaving", func(p *xmsg.Presence) bool { return p.From.Equal(aliceOcc) && p.Type == "unavailable" })
	if got := matrixtest.BotCommand(t, alice, dm, bot, "xmpp list"); strings.Contains(got, room.String()) {
		t.Errorf("xmpp list after unlink still shows %s:\n%s", room, got)
	}
	if got := matrixtest.BotCommand(t, alice, dm, bot, "xmpp unlink "+room.String()); got != room.String()+" is not linked." {
		t.Errorf("xmpp unlink again: %s", got)
	}
	if _, err := alice.SendText(ctx, portal, "while unlinked"); err != nil {
		t.Fatal(err)
	}
	if got := matrixtest.BotCommand(t, alice, dm, bot, "xmpp link "+room.String()+" "+portal.String()); !strings.HasPrefix(got, "Linked ") {
		t.Fatalf("xmpp link again: %s", got)
	}
	if _, err := alice.SendText(ctx, portal, "linked again"); err != nil {
		t.Fatal(err)
	}
	bob.waitMessage("alice's message after the new link", func(m *xmsg.Message) bool { return m.Body == "linked again" })
	bob.mu.Lock()
	for _, m := range bob.msgs {
		if m.Body == "while unlinked" {
			t.Errorf("a message sent while the room was unlinked reached XMPP")
		}
	}
	bob.mu.Unlock()
}
