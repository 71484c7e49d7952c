package casee2e

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bots/case116117"
)

// TestRoomRepair: a run that crashed while the homeserver was creating a case room can
// leave the room and its alias without the invites, name and state. The next run finds
// the room by its alias and finishes it, so the dispatchers get the case.
func TestRoomRepair(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	startBot(t, nil, b)
	adminRoom(t, alice, b) // the link's bot is registered

	// What the crashed run left: the room with its alias, made by the link's bot, and
	// nothing else.
	caseID := uuid.NewString()
	botID := id.NewUserID(case116117.DefaultPrefix+b.Name, domain)
	asBot, err := mautrix.NewClient(hs.URL, botID, reg.AppToken)
	if err != nil {
		t.Fatal(err)
	}
	asBot.SetAppServiceUserID = true
	half, err := asBot.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", RoomAliasName: case116117.DefaultPrefix + b.Name + "_" + caseID})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(caseID), "NONE"); err != nil {
		t.Fatal(err)
	}
	room := caseRoom(t, alice, b, caseID) // alice can join: she was invited by the repair
	if room != half.RoomID {
		t.Fatalf("a second room %s was made beside %s", room, half.RoomID)
	}
	waitNotice(t, alice, room, "Neuer Fall")
	var name struct {
		Name string `json:"name"`
	}
	if err := alice.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil || name.Name != "Fall A1 · Musterhausen" {
		t.Errorf("room name %q, %v", name.Name, err)
	}
}
