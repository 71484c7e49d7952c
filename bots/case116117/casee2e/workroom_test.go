package casee2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bots/case116117"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestWorkRoom: a link worked by the members of an existing room. The bot asks to be
// invited, joins when it is, announces new cases there and invites the room's members to
// each case room.
func TestWorkRoom(t *testing.T) {
	ctx := context.Background()
	alice, bob := newMatrixUser(t, "alice"), newMatrixUser(t, "bob")
	resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Name: "Disposition", Invite: []id.UserID{bob.UserID}})
	if err != nil {
		t.Fatal(err)
	}
	work := resp.RoomID
	if _, err := bob.JoinRoomByID(ctx, work); err != nil {
		t.Fatal(err)
	}
	b := newCentre(t, alice.UserID)
	b.Dispatchers, b.Rooms = nil, []string{work.String()}
	startBot(t, nil, b)
	admin := adminRoom(t, alice, b)
	waitNotice(t, alice, admin, "bitte", "einladen")

	botID := id.NewUserID(case116117.DefaultPrefix+b.Name, domain)
	if _, err := alice.InviteUser(ctx, work, &mautrix.ReqInviteUser{UserID: botID}); err != nil {
		t.Fatal(err)
	}
	matrixtest.WaitFor(t, 30*time.Second, "the bot to join the work room", func() (bool, error) {
		return matrixtest.IsJoined(ctx, alice, work, botID)
	})

	caseID := uuid.NewString()
	if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(caseID), "NONE"); err != nil {
		t.Fatal(err)
	}
	waitNotice(t, bob, work, "Neuer Fall", "Fall A1 · Musterhausen")
	room := caseRoom(t, bob, b, caseID) // bob was invited as a member of the work room
	waitNotice(t, bob, room, "Neuer Fall", "Hans Mustermann")
	say(t, bob, room, "!accept")
	var got received
	got.wait(t, b.OID, "acknowledgement", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
}
