package xmppe2e

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/vcard"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// waitDisplayName waits until cli sees user's global display name as want.
func waitDisplayName(t *testing.T, cli *mautrix.Client, user id.UserID, want string) {
	t.Helper()
	got := ""
	matrixtest.WaitFor(t, 30*time.Second, "the display name "+want+" of "+user.String(), func() (bool, error) {
		resp, err := cli.GetDisplayName(context.Background(), user)
		if err != nil {
			return false, err
		}
		got = resp.DisplayName
		return got == want, nil
	})
}

// TestGhostNamesFromProfiles (issue 10, item 11): a ghost's display name is the XMPP
// user's vCard NICKNAME, else its FN, else the XEP-0172 nick; it is fetched when the ghost
// is set up and when the user's presence is first seen.
func TestGhostNamesFromProfiles(t *testing.T) {
	startBridge(t, nil)
	alice := newMatrixUser(t, "alice")
	puppet := puppetOf(t, alice.UserID)

	for _, tc := range []struct {
		name    string
		publish func(c *xclient)
		want    string
	}{
		{"vCard NICKNAME", func(c *xclient) {
			c.mustAsk("set", jid.JID{}, vcard.Card{FullName: "Robert Tables", Nick: "Bobby"}.Marshal())
		}, "Bobby"},
		{"vCard FN", func(c *xclient) { c.mustAsk("set", jid.JID{}, vcard.Card{FullName: "Carol Smith"}.Marshal()) }, "Carol Smith"},
		{"XEP-0172 nick", func(c *xclient) { c.mustAsk("set", jid.JID{}, vcard.NickItem("Davy")) }, "Davy"},
	} {
		t.Run(tc.name+" when a DM is opened", func(t *testing.T) {
			c := newXClient(t, "p")
			tc.publish(c)
			c.send(&xmsg.Message{ID: unique("n-"), Type: "chat", To: puppet, Body: "hello"})
			acceptInvite(t, alice)
			waitDisplayName(t, alice, ghostOf(t, c.bare().String()), tc.want)
		})
	}

	t.Run("vCard NICKNAME on the first presence", func(t *testing.T) {
		erin := newXClient(t, "erin")
		erin.mustAsk("set", jid.JID{}, vcard.Card{Nick: "Erin E"}.Marshal())
		erin.send(&xmsg.Presence{To: puppet, Status: "here"})
		waitDisplayName(t, alice, ghostOf(t, erin.bare().String()), "Erin E")
	})
}

// TestMUCNickIsRoomNameOnly (issue 10, item 11): an occupant's MUC nick is the ghost's name
// in the portal (its member event), not its global display name, which stays the one from
// the user's vCard.
func TestMUCNickIsRoomNameOnly(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	bob.mustAsk("set", jid.JID{}, vcard.Card{Nick: "Bobby"}.Marshal())
	room := jid.MustParse(unique("nicks") + "@" + xs.MUCDomain)
	bob.joinMUC(room, "Captain")
	alice := newMatrixUser(t, "alice")
	alias, _ := mapper().RoomAlias(room)
	join, err := alice.JoinRoom(ctx, alias.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	bobGhost := ghostOf(t, bob.bare().String())
	matrixtest.WaitFor(t, 30*time.Second, "bob's ghost in the portal as Captain", func() (bool, error) {
		var member event.MemberEventContent
		err := alice.StateEvent(ctx, join.RoomID, event.StateMember, bobGhost.String(), &member)
		return err == nil && member.Membership == event.MembershipJoin && member.Displayname == "Captain", nil
	})
	waitDisplayName(t, alice, bobGhost, "Bobby")
	// The global name, set after the join, must not have replaced the nick in the room.
	matrixtest.WaitFor(t, 30*time.Second, "bob's ghost still named Captain in the portal", func() (bool, error) {
		var member event.MemberEventContent
		err := alice.StateEvent(ctx, join.RoomID, event.StateMember, bobGhost.String(), &member)
		return err == nil && member.Displayname == "Captain", err
	})
}

// TestMatrixRenameIsMUCNickChange (issue 10, item 11): a Matrix member's new display name
// renames their puppet in the MUC (the room announces status 303 and the new nick), it does
// not leave and join again.
func TestMatrixRenameIsMUCNickChange(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	room := jid.MustParse(unique("rename") + "@" + xs.MUCDomain)
	bob.joinMUC(room, "Bob")
	alice := newMatrixUser(t, "alice")
	alias, _ := mapper().RoomAlias(room)
	join, err := alice.JoinRoom(ctx, alias.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	oldOcc, _ := room.WithResource("alice M")
	newOcc, _ := room.WithResource("Alice Renamed")
	bob.waitPresence("alice's puppet joining", func(p *xmsg.Presence) bool { return p.From.Equal(oldOcc) && p.Type == "" })

	if err := alice.SetDisplayName(ctx, "Alice Renamed"); err != nil {
		t.Fatal(err)
	}
	gone := bob.waitPresence("the old nick unavailable", func(p *xmsg.Presence) bool {
		return p.From.Equal(oldOcc) && p.Type == "unavailable"
	})
	if !gone.MUCUser.Has(xmsg.StatusNickChanged) || gone.MUCUser.Nick != "Alice Renamed" {
		t.Errorf("the old nick left with %+v, want status 303 and the new nick", gone.MUCUser)
	}
	bob.waitPresence("the new nick available", func(p *xmsg.Presence) bool { return p.From.Equal(newOcc) && p.Type == "" })

	if _, err := alice.SendText(ctx, join.RoomID, "after the rename"); err != nil {
		t.Fatal(err)
	}
	m := bob.waitMessage("alice's message", func(m *xmsg.Message) bool { return m.Body == "after the rename" })
	if !m.From.Equal(newOcc) {
		t.Errorf("the message came from %s, want %s", m.From, newOcc)
	}
}
