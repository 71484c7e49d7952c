package casee2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bots/case116117"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
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
	asBot, err := mautrix.NewClient(onHS.URL, botID, onHS.Reg.AppToken)
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

// TestOrphanedCaseRoomCleared: a run killed while the homeserver created a case room can
// leave a room the next run does not use, with the bot as its only member, the case's
// state and invites to the dispatchers. The next run clears it at start: the invites are
// revoked and the bot leaves; the case gets its one room (issue 10 item 5).
func TestOrphanedCaseRoomCleared(t *testing.T) {
	ctx := context.Background()
	dbURI := storetest.NewDatabaseURI(t, store.SQLite)
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	sb := startProcess(t, dbURI, b)
	defer sb.Stop()
	adminRoom(t, alice, b) // the link's bot is registered
	sb.Kill9()

	// What the killed run's creation left: the case's state and an invite, no alias.
	caseID := uuid.NewString()
	botID := id.NewUserID(case116117.DefaultPrefix+b.Name, domain)
	asBot, err := mautrix.NewClient(onHS.URL, botID, onHS.Reg.AppToken)
	if err != nil {
		t.Fatal(err)
	}
	asBot.SetAppServiceUserID = true
	orphan, err := asBot.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Name: "Fall A1 · Musterhausen", Invite: []id.UserID{alice.UserID},
		InitialState: []*event.Event{{
			Type: event.Type{Type: "net.switchboard.case116117.case", Class: event.StateEventType}, StateKey: new(string),
			Content: event.Content{Raw: map[string]any{"case_id": caseID, "state": "received", "role": "incoming", "peer_oid": oidA}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}

	sb.Start()
	matrixtest.WaitFor(t, 30*time.Second, "the bot to leave the orphaned room", func() (bool, error) {
		rooms, err := asBot.JoinedRooms(ctx)
		return err == nil && !slices.Contains(rooms.JoinedRooms, orphan.RoomID), err
	})
	if _, err := alice.JoinRoom(ctx, orphan.RoomID.String(), nil); err == nil {
		t.Error("alice's invite to the orphaned room was not revoked")
	}

	if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(caseID), "NONE"); err != nil {
		t.Fatal(err)
	}
	room := caseRoom(t, alice, b, caseID)
	if room == orphan.RoomID {
		t.Fatal("the case went to the orphaned room")
	}
	waitNotice(t, alice, room, "Neuer Fall")
}
