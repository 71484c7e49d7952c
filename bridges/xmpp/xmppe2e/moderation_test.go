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

// adminItem is a muc#admin query with one item.
func adminItem(item string) []byte {
	return []byte(`<query xmlns="http://jabber.org/protocol/muc#admin">` + item + `</query>`)
}

// TestMUCModeration covers kicks and bans in a MUC portal both ways: an occupant the MUC
// kicks or bans loses its ghost's membership in the portal the same way, a Matrix
// moderator's kick of a ghost kicks the occupant from the MUC, and a Matrix user whose
// puppet the MUC kicks is told in the portal (and rejoins with the next message).
func TestMUCModeration(t *testing.T) {
	startBridge(t, nil)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	room := jid.MustParse(unique("modroom") + "@" + xs.MUCDomain)
	bob.joinMUC(room, "Bob") // the owner
	alice := newMatrixUser(t, "alice")
	alias, err := mapper().RoomAlias(room)
	if err != nil {
		t.Fatal(err)
	}
	join, err := alice.JoinRoom(ctx, alias.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	portal := join.RoomID
	aliceOcc, _ := room.WithResource("alice M")
	bob.waitPresence("alice's puppet joining", func(p *xmsg.Presence) bool { return p.From.Equal(aliceOcc) && p.Type == "" })

	// occupant has an XMPP user join the MUC and waits for its ghost in the portal.
	occupant := func(t *testing.T, nick string) (*xclient, jid.JID, id.UserID) {
		t.Helper()
		c := newXClient(t, strings.ToLower(nick))
		occ := c.joinMUC(room, nick)
		ghost := ghostOf(t, c.bare().String())
		matrixtest.WaitFor(t, 20*time.Second, nick+"'s ghost to join the portal", func() (bool, error) {
			return matrixtest.IsJoined(ctx, alice, portal, ghost)
		})
		return c, occ, ghost
	}

	for _, tc := range []struct {
		name       string
		item       func(nick string, real jid.JID) string
		status     int
		membership event.Membership
	}{
		{"kick", func(nick string, _ jid.JID) string {
			return `<item nick="` + nick + `" role="none"><reason>too loud</reason></item>`
		}, xmsg.StatusKicked, event.MembershipLeave},
		{"ban", func(_ string, real jid.JID) string {
			return `<item jid="` + real.String() + `" affiliation="outcast"><reason>too loud</reason></item>`
		}, xmsg.StatusBanned, event.MembershipBan},
	} {
		t.Run("an xmpp "+tc.name+" removes the ghost", func(t *testing.T) {
			nick := "Carl" + tc.name
			carl, occ, ghost := occupant(t, nick)
			bob.mustAsk("set", room, adminItem(tc.item(nick, carl.bare())))
			carl.waitPresence("its removal", func(p *xmsg.Presence) bool {
				return p.From.Equal(occ) && p.Type == "unavailable" && p.MUCUser.Has(tc.status)
			})
			var got *event.Event
			matrixtest.WaitFor(t, 20*time.Second, "the ghost's "+string(tc.membership), func() (bool, error) {
				e, err := membership(ctx, alice, portal, ghost)
				got = e
				return e != nil && e.Content.AsMember().Membership == tc.membership, err
			})
			if got.Sender != botID() || got.Content.AsMember().Reason != "too loud" {
				t.Errorf("%s by %s for %q, want by the bot for %q", tc.membership, got.Sender, got.Content.AsMember().Reason, "too loud")
			}
		})
	}

	t.Run("a matrix moderator kicks a ghost", func(t *testing.T) {
		dave, occ, ghost := occupant(t, "Dave")
		// Bob makes alice's puppet a MUC moderator; the server admin (here the bot) gives
		// alice the power to kick in the portal.
		bob.mustAsk("set", room, adminItem(`<item nick="alice M" role="moderator"/>`))
		bob.waitPresence("alice's puppet as moderator", func(p *xmsg.Presence) bool {
			return p.From.Equal(aliceOcc) && p.MUCUser != nil && p.MUCUser.Role == "moderator"
		})
		bot := botClient(t)
		var pl event.PowerLevelsEventContent
		if err := bot.StateEvent(ctx, portal, event.StatePowerLevels, "", &pl); err != nil {
			t.Fatal(err)
		}
		pl.SetUserLevel(alice.UserID, 50)
		if _, err := bot.SendStateEvent(ctx, portal, event.StatePowerLevels, "", &pl); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.KickUser(ctx, portal, &mautrix.ReqKickUser{UserID: ghost, Reason: "off topic"}); err != nil {
			t.Fatal(err)
		}
		p := dave.waitPresence("its kick", func(p *xmsg.Presence) bool {
			return p.From.Equal(occ) && p.Type == "unavailable" && p.MUCUser.Has(xmsg.StatusKicked)
		})
		if p.MUCUser.Reason != "off topic" {
			t.Errorf("kicked for %q, want %q", p.MUCUser.Reason, "off topic")
		}
	})

	t.Run("the muc kicks a matrix user's puppet", func(t *testing.T) {
		bob.mustAsk("set", room, adminItem(`<item nick="alice M" role="none"><reason>cool down</reason></item>`))
		notice := waitMatrix(t, alice, portal, "a notice about the kick", func(e *event.Event) bool {
			return e.Sender == botID() && e.Content.AsMessage().MsgType == event.MsgNotice &&
				strings.Contains(e.Content.AsMessage().Body, "kicked")
		})
		c := notice.Content.AsMessage()
		if !strings.Contains(c.Body, alice.UserID.String()) || !strings.Contains(c.Body, room.String()) || !strings.Contains(c.Body, "cool down") ||
			c.Mentions == nil || len(c.Mentions.UserIDs) != 1 || c.Mentions.UserIDs[0] != alice.UserID {
			t.Errorf("notice %q mentioning %+v, want alice mentioned, the room and the reason", c.Body, c.Mentions)
		}
		before := len(bob.pres)
		if _, err := alice.SendText(ctx, portal, "I am back"); err != nil {
			t.Fatal(err)
		}
		bob.waitMessage("alice's message after the kick", func(m *xmsg.Message) bool { return m.Body == "I am back" && m.From.Equal(aliceOcc) })
		bob.wait("alice's puppet rejoining", func() bool {
			for _, p := range bob.pres[before:] {
				if p.From.Equal(aliceOcc) && p.Type == "" {
					return true
				}
			}
			return false
		})
	})
}
