package sipe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// TestMatrixUserStartsChat is a Matrix user opening the chat with a SIP user behind
// Kamailio: by inviting the SIP user's ghost to a new direct room, or with the management
// bot's "sip chat <sip:user@domain>" command. Messages then go both ways in that room. A
// SIP domain outside the bridge's allow list is refused both ways.
func TestMatrixUserStartsChat(t *testing.T) {
	startBridge(t, nil)

	t.Run("invite the ghost", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		alice := newMatrixUser(t, "alice")
		phone := newPhone(t, "start1")
		ghost := ghostOf(t, "start1")
		resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{ghost}})
		if err != nil {
			t.Fatal(err)
		}
		room := resp.RoomID
		matrixtest.WaitFor(t, 20*time.Second, "the ghost to join", func() (bool, error) {
			return matrixtest.IsJoined(ctx, alice, room, ghost)
		})
		startChatBothWays(ctx, t, alice, room, phone, ghost)
	})

	t.Run("sip chat command", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		alice := newMatrixUser(t, "alice")
		phone := newPhone(t, "start2")
		ghost := ghostOf(t, "start2")
		bot := id.NewUserID(onHS.Reg.SenderLocalpart, domain)
		botRoom := matrixtest.BotDM(t, alice, bot)
		reply := matrixtest.BotCommand(t, alice, botRoom, bot, "sip chat sip:start2@"+sipDomain)
		if !strings.Contains(reply, "sip:start2@"+sipDomain) {
			t.Errorf("reply %q: want it to name sip:start2@%s", reply, sipDomain)
		}
		room := matrixtest.AcceptInvite(t, alice)
		if !strings.Contains(reply, room.String()) {
			t.Errorf("reply %q: want it to name the room %s", reply, room)
		}
		if ok, err := matrixtest.IsJoined(ctx, alice, room, ghost); err != nil || !ok {
			t.Errorf("the ghost %s is not in the DM %s (%v)", ghost, room, err)
		}
		startChatBothWays(ctx, t, alice, room, phone, ghost)
	})

	t.Run("domain not allowed", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		alice := newMatrixUser(t, "alice")
		const other = "elsewhere.test"
		bot := id.NewUserID(onHS.Reg.SenderLocalpart, domain)
		botRoom := matrixtest.BotDM(t, alice, bot)
		for _, cmd := range []string{"sip chat sip:start1@" + other, "!sb sip chat sip:start1@" + other} {
			reply := matrixtest.BotCommand(t, alice, botRoom, bot, cmd)
			if !strings.Contains(reply, "may not reach the SIP domain "+other) {
				t.Errorf("%q: reply %q, want a refusal naming %s", cmd, reply, other)
			}
		}
		lp, err := mapper.GhostLocalpart(sipuri.AOR{User: "start1", Host: other})
		if err != nil {
			t.Fatal(err)
		}
		ghost := id.NewUserID(lp, domain)
		resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{ghost}})
		if err != nil {
			// The homeserver asked the bridge whether the ghost exists; it does not.
			t.Logf("the invite was refused: %v", err)
			return
		}
		matrixtest.WaitFor(t, 20*time.Second, "the ghost to decline the invite", func() (bool, error) {
			var mem event.MemberEventContent
			if err := alice.StateEvent(ctx, resp.RoomID, event.StateMember, ghost.String(), &mem); err != nil {
				return false, err
			}
			if mem.Membership == event.MembershipJoin {
				t.Fatalf("the ghost %s of a refused domain joined %s", ghost, resp.RoomID)
			}
			return mem.Membership == event.MembershipLeave, nil
		})
	})
}

// TestMatrixUserStartsChatSynapse is TestMatrixUserStartsChat on Synapse.
func TestMatrixUserStartsChatSynapse(t *testing.T) { onSynapse(t, TestMatrixUserStartsChat) }

// startChatBothWays sends a Matrix message to the phone through the DM room and the
// phone's answer back, which must arrive in that same room.
func startChatBothWays(ctx context.Context, t *testing.T, cli *mautrix.Client, room id.RoomID, phone *sipphone.Phone, ghost id.UserID) {
	t.Helper()
	text := unique("hello from Matrix ")
	if _, err := cli.SendText(ctx, room, text); err != nil {
		t.Fatal(err)
	}
	got, err := phone.Wait(ctx, "the Matrix user's message", func(r *sip.Request) bool {
		return r.Method == sip.MESSAGE && strings.Contains(string(r.Body()), text)
	})
	if err != nil {
		t.Fatal(err)
	}
	me := sipURIOf(t, cli.UserID)
	if from := got.From().Address; from.User != strings.TrimPrefix(strings.Split(me, "@")[0], "sip:") || from.Host != bridgeDomain {
		t.Errorf("the message's From is %s, want %s", from.String(), me)
	}
	answer := unique("hello from SIP ")
	if code, reason, err := phone.Send(ctx, sipphone.Request{To: me, ContentType: "text/plain;charset=utf-8", Body: []byte(answer)}); err != nil || code != 202 {
		t.Fatalf("the answer: %d %s %v, want 202", code, reason, err)
	}
	matrixtest.WaitEvent(t, cli, room, "the phone's answer in the same room", bodyIs(ghost, answer))
}
