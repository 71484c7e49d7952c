package matrixtest

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// botReplyTimeout bounds the wait for a management bot's reply to a command.
const botReplyTimeout = 30 * time.Second

// BotDM creates a direct chat of cli's user with a management bot, inviting bot, and
// returns the room once the bot's greeting (its first message there) arrived.
//
//	dm := matrixtest.BotDM(t, alice, bot)
//	reply := matrixtest.BotCommand(t, alice, dm, bot, "sip chat sip:bob@example.org")
func BotDM(t testing.TB, cli *mautrix.Client, bot id.UserID) id.RoomID {
	t.Helper()
	resp, err := cli.CreateRoom(context.Background(), &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{bot}})
	if err != nil {
		t.Fatal(err)
	}
	WaitEvent(t, cli, resp.RoomID, "the bot's greeting", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Sender == bot
	})
	return resp.RoomID
}

// BotCommand sends cmd as text to the room (a BotDM) and returns the body of the bot's
// reply: a management bot's replies carry no relation, so its first message after the
// command is taken as the answer. It fails t when none comes within 30 s.
func BotCommand(t testing.TB, cli *mautrix.Client, room id.RoomID, bot id.UserID, cmd string) string {
	t.Helper()
	sent, err := cli.SendText(context.Background(), room, cmd)
	if err != nil {
		t.Fatal(err)
	}
	var reply string
	WaitFor(t, botReplyTimeout, "the bot's reply to "+cmd, func() (bool, error) {
		evts, err := RoomEvents(context.Background(), cli, room, event.EventMessage)
		if err != nil {
			return false, err
		}
		after := false
		for _, e := range evts {
			if e.ID == sent.EventID {
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
