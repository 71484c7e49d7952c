package casee2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// incident is an incident_transfer_with_patient incident like the official example, with
// a new case ID.
func incident(caseID string) map[string]any {
	return map[string]any{
		"sharedIncidentId": caseID, "internalId": "f123456", "classifications": []string{"A1"},
		"issue": "Atemnot", "flashingLights": true, "additionalInformation": "Zusatzinformationen",
		"sentByDispatcherAt": "2024-01-01T10:05:08Z", "startTimestamp": "2024-01-01T09:55:15Z",
		"missionLocation": map[string]any{
			"coordinate": map[string]any{"lat": 52.5, "lon": 13.4},
			"address":    map[string]any{"street": "Musterstrasse", "houseNumber": "15b", "postalCode": "12345", "city": "Musterhausen", "country": "DE"},
			"floor":      "3. OG",
		},
		"patients": []any{map[string]any{
			"name": "Mustermann", "surname": "Hans", "phone": "+49 30 123456", "gender": "Male", "dateOfBirth": "1980-12-30",
			"initialAssessment": map[string]any{"rmi": "360", "pzc": "360401", "additionalInformation": "unspezifischer Notfall"},
		}},
		"informers": []any{map[string]any{"name": "Musterfrau", "surname": "Heike", "phone": "+49 30 234567"}},
	}
}

const app = "incident_transfer_with_patient"

// TestIncomingCase: an incident from centre A appears once in a case room (no patient
// data in its name or state); accept and complete from Matrix reach A as schema-valid,
// signed messages; the delivery status shows in the room.
func TestIncomingCase(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	startBot(t, nil, b)
	admin := adminRoom(t, alice, b)

	caseID := uuid.NewString()
	if _, err := peerA.Send(context.Background(), b.OID, app, "incident", incident(caseID), "ALL"); err != nil {
		t.Fatal(err)
	}
	room := caseRoom(t, alice, b, caseID)
	waitNotice(t, alice, room, "Neuer Fall", "Musterstrasse 15b", "Hans Mustermann", "RMI 360", "+49 30 234567")
	waitNotice(t, alice, admin, "Neuer Fall", "Fall A1 · Musterhausen")

	ctx := context.Background()
	var name event.RoomNameEventContent
	if err := alice.StateEvent(ctx, room, event.StateRoomName, "", &name); err != nil {
		t.Fatal(err)
	}
	if name.Name != "Fall A1 · Musterhausen" {
		t.Errorf("room name %q", name.Name)
	}
	state, err := alice.State(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	for typ, byKey := range state {
		for _, e := range byKey {
			raw, _ := json.Marshal(e.Content.Raw)
			if strings.Contains(string(raw), "Mustermann") || strings.Contains(string(raw), "123456") {
				t.Errorf("state event %s holds patient data: %s", typ.Type, raw)
			}
		}
	}
	caseState := state[event.Type{Type: "net.switchboard.case116117.case", Class: event.StateEventType}][""]
	if caseState == nil || caseState.Content.Raw["case_id"] != caseID || caseState.Content.Raw["state"] != "received" || caseState.Content.Raw["peer_oid"] != oidA {
		t.Fatalf("case state event: %+v", caseState)
	}
	// The room tells clients what it is bridged to (MSC2346), under both event types: the
	// case ID and nothing else (checked for patient data above).
	for _, typ := range []event.Type{event.StateBridge, event.StateHalfShotBridge} {
		var found bool
		for key, e := range state[typ] {
			info := e.Content.AsBridge()
			found = found || strings.HasPrefix(key, "net.switchboard://ucri2/") && strings.HasSuffix(key, "/"+caseID) &&
				info.Protocol.ID == "ucri2" && info.Channel.ID == caseID
		}
		if !found {
			t.Errorf("no %s state with protocol ucri2 and channel %s: %v", typ.Type, caseID, state[typ])
		}
	}
	waitEvent(t, alice, room, "the payload event", func(e *event.Event) bool {
		return e.Type.Type == "net.switchboard.case116117.payload" && e.Content.Raw["case_id"] == caseID
	})

	// Accepting twice: the second is refused in the room; A gets one acknowledgement.
	say(t, alice, room, "!accept Wir übernehmen")
	var got received
	ack := got.wait(t, b.OID, "acknowledgement", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
	var data map[string]any
	_ = json.Unmarshal(ack.Data, &data)
	if data["status"] != "accepted" || data["cause"] != "Wir übernehmen" || ack.Signature == "" {
		t.Errorf("acknowledgement %s, signature %q", ack.Data, ack.Signature)
	}
	waitNotice(t, alice, room, "zugestellt")
	waitNotice(t, alice, admin, "zugestellt", caseID)
	// The dispatcher sees the acceptance before its sending (issue 10 item 5).
	if acc, sent := firstBody(t, alice, room, "✅ Fall angenommen"), firstBody(t, alice, room, "📤", "gesendet"); acc < 0 || sent < 0 || sent < acc {
		t.Errorf("\"✅ angenommen\" is message %d, \"📤 gesendet\" message %d", acc, sent)
	}
	say(t, alice, room, "!reject zu spät")
	waitNotice(t, alice, room, "bereits angenommen")

	// The management bot lists the open case, found by a part of its ID, without patient
	// data, and the link's state.
	mgmt := id.NewUserID(onHS.Reg.SenderLocalpart, domain)
	dm := matrixtest.BotDM(t, alice, mgmt)
	if got := matrixtest.BotCommand(t, alice, dm, mgmt, "case116117 cases "+caseID[:13]); !strings.Contains(got, "`"+caseID+"` ("+b.Name+"): accepted") ||
		strings.Contains(got, "Mustermann") || strings.Contains(got, "Musterhausen") {
		t.Errorf("case116117 cases: want the accepted case without patient data:\n%s", got)
	}
	if got := matrixtest.BotCommand(t, alice, dm, mgmt, "case116117 links"); !strings.Contains(got, "**"+b.Name+"** ("+b.OID+"): connected") {
		t.Errorf("case116117 links: want %s connected:\n%s", b.Name, got)
	}

	say(t, alice, room, "!complete Patient versorgt")
	done := got.wait(t, b.OID, "completion", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
	_ = json.Unmarshal(done.Data, &data)
	if data["status"] != "completed_sucessfully" {
		t.Errorf("completion %s", done.Data)
	}
	say(t, alice, room, "!status")
	waitNotice(t, alice, room, "abgeschlossen", "Verlauf", alice.UserID.String())

	if n := countBodies(t, alice, room, "Neuer Fall"); n != 1 {
		t.Errorf("the case is shown %d times", n)
	}
	checkWording(t, alice, room, admin)
	if n := checkSchemas(t, b.OID); n < 2 {
		t.Errorf("only %d messages sent", n)
	}
}

// TestReactions: ❌ rejects a case, ✅ accepts another; a reject command needs a cause.
func TestReactions(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	startBot(t, nil, b)
	var got received
	for _, tc := range []struct{ name, key, want string }{{"reject", "❌", "rejected"}, {"accept", "✅", "accepted"}} {
		t.Run(tc.name, func(t *testing.T) {
			caseID := uuid.NewString()
			if _, err := peerA.Send(context.Background(), b.OID, app, "incident", incident(caseID), "ALL"); err != nil {
				t.Fatal(err)
			}
			room := caseRoom(t, alice, b, caseID)
			summary := waitNotice(t, alice, room, "Neuer Fall")
			if tc.name == "reject" {
				say(t, alice, room, "!reject")
				waitNotice(t, alice, room, "Bitte einen Grund angeben")
			}
			if _, err := alice.SendReaction(context.Background(), room, summary.ID, tc.key); err != nil {
				t.Fatal(err)
			}
			got.wait(t, b.OID, "acknowledgement", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID && d["status"] == tc.want })
		})
	}
	checkSchemas(t, b.OID)
}

// TestHandover: a case handed over from Matrix reaches centre C; C's answers appear in
// the case room; the registry command lists the centres.
func TestHandover(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	startBot(t, nil, b)
	admin := adminRoom(t, alice, b)

	say(t, alice, admin, "!registry")
	waitNotice(t, alice, admin, oidA, "Leitstelle A", oidC, "Rettungsleitstelle C")

	say(t, alice, admin, "!handover "+oidC+"\nstrasse: Hauptstraße")
	waitNotice(t, alice, admin, "mindestens ein Patient")
	say(t, alice, admin, "!handover "+oidC+"\nstrasse: Hauptstraße\nplz: 1234x\npatient: Muster")
	waitNotice(t, alice, admin, "ungültig", "postalCode")

	say(t, alice, admin, "!handover "+oidC+"\nstichwort: B2\nanlass: Sturz\nstrasse: Hauptstraße\nhausnummer: 1\nplz: 54321\nort: Beispielstadt\n"+
		"patient: Muster, Erika\ngeschlecht: w\ngeburtsdatum: 31.12.1950\ntelefon: +49 40 555\nersteinschaetzung: Sturz, ansprechbar")
	got := received{peer: peerC}
	inc := got.wait(t, b.OID, "incident", nil)
	var data map[string]any
	_ = json.Unmarshal(inc.Data, &data)
	caseID, _ := data["sharedIncidentId"].(string)
	room := caseRoom(t, alice, b, caseID)
	waitNotice(t, alice, room, "Fall zur Übergabe", "Erika Muster", "Beispielstadt")
	waitNotice(t, alice, room, "zugestellt")

	ctx := context.Background()
	if _, err := peerC.Send(ctx, b.OID, app, "acknowledgement", map[string]any{
		"sharedIncidentId": caseID, "acknowledgedByDispatcherAt": "2026-01-01T10:00:00Z", "status": "accepted", "cause": "Team unterwegs",
	}, "NONE"); err != nil {
		t.Fatal(err)
	}
	waitNotice(t, alice, room, "angenommen", "Team unterwegs")
	if _, err := peerC.Send(ctx, b.OID, app, "completion", map[string]any{
		"sharedIncidentId": caseID, "completedAt": "2026-01-01T11:00:00Z", "status": "aborted", "additionalInformation": "Niemand angetroffen",
	}, "NONE"); err != nil {
		t.Fatal(err)
	}
	waitNotice(t, alice, room, "abgebrochen", "Niemand angetroffen")
	say(t, alice, room, "!accept")
	waitNotice(t, alice, room, "nur die dortige Leitstelle")
	checkWording(t, alice, room, admin)
	checkSchemas(t, b.OID)
}

// TestAvailability: another centre's availability shows in the admin room and in the
// rooms of its open cases.
func TestAvailability(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	startBot(t, nil, b)
	admin := adminRoom(t, alice, b)
	caseID := uuid.NewString()
	if _, err := peerA.Send(context.Background(), b.OID, app, "incident", incident(caseID), "NONE"); err != nil {
		t.Fatal(err)
	}
	room := caseRoom(t, alice, b, caseID)
	waitNotice(t, alice, room, "Neuer Fall")
	srv.SetAvailability(oidA, "offline")
	defer srv.SetAvailability(oidA, "online")
	waitNotice(t, alice, admin, "Leitstelle A", "NICHT erreichbar")
	waitNotice(t, alice, room, "Leitstelle A", "NICHT erreichbar")
}
