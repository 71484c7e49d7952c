package casee2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
)

// inject puts an incident from A into the centre's queue past the UCRM's checks, as a
// faulty or forged UCRM would deliver it; edit changes it after signing.
func inject(t *testing.T, dest string, data any, edit func(env map[string]any)) string {
	t.Helper()
	return injectFrom(t, peerA, dest, app, "incident", data, edit)
}

// injectFrom is inject for any sender and message.
func injectFrom(t *testing.T, from *ucrm.Peer, dest, appID, schemaID string, data any, edit func(env map[string]any)) string {
	t.Helper()
	env, err := from.Envelope(dest, appID, schemaID, data, "NONE")
	if err != nil {
		t.Fatal(err)
	}
	env["sentDate"], env["timeout"] = time.Now().UTC().Format(time.RFC3339), 3600
	delete(env, "destinations")
	if edit != nil {
		edit(env)
	}
	raw, _ := json.Marshal(env)
	srv.Inject(dest, raw)
	return env["messageId"].(string)
}

// TestFailures: invalid payloads, wrong and missing signatures, expired tokens and an
// unreachable UCRM produce clear messages and lose nothing.
func TestFailures(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	startBot(t, nil, b)
	admin := adminRoom(t, alice, b)
	var got received

	t.Run("invalid payload", func(t *testing.T) {
		caseID := uuid.NewString()
		inc := incident(caseID)
		delete(inc, "patients")
		msgID := inject(t, b.OID, inc, nil)
		waitNotice(t, alice, admin, msgID, "nicht übernommen", "patients")
		ack := got.wait(t, b.OID, "acknowledgement", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
		var d map[string]any
		_ = json.Unmarshal(ack.Data, &d)
		if d["status"] != "rejected" {
			t.Errorf("the invalid incident was answered with %s", ack.Data)
		}
	})
	// An incident refused as untrusted is answered, so that its sender does not take it as
	// delivered (issue 10 item 5).
	wantRejected := func(t *testing.T, caseID, cause string) {
		t.Helper()
		ack := got.wait(t, b.OID, "acknowledgement", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
		var d map[string]any
		_ = json.Unmarshal(ack.Data, &d)
		if c, _ := d["cause"].(string); d["status"] != "rejected" || !strings.Contains(c, cause) {
			t.Errorf("the untrusted incident was answered with %s", ack.Data)
		}
	}
	t.Run("wrong signature", func(t *testing.T) {
		caseID := uuid.NewString()
		msgID := inject(t, b.OID, incident(uuid.NewString()), func(env map[string]any) {
			// Signed, then changed: the signature no longer fits.
			env["payload"].(map[string]any)["data"] = mustJSON(incident(caseID))
		})
		waitNotice(t, alice, admin, msgID, "nicht übernommen", "ignatur")
		wantRejected(t, caseID, "Signatur ungültig")
	})
	t.Run("unsigned", func(t *testing.T) {
		caseID := uuid.NewString()
		msgID := inject(t, b.OID, incident(caseID), func(env map[string]any) { delete(env, "signature") })
		waitNotice(t, alice, admin, msgID, "nicht signiert")
		wantRejected(t, caseID, "nicht signiert")
	})
	t.Run("not JSON", func(t *testing.T) {
		msgID := inject(t, b.OID, []byte(`{"sharedIncidentId": `), nil)
		waitNotice(t, alice, admin, msgID, "nicht übernommen")
	})

	// Nothing of the three forged or broken messages became a case.
	if n := countBodies(t, alice, admin, "Neuer Fall"); n != 0 {
		t.Errorf("%d cases were opened from invalid messages", n)
	}

	t.Run("transport messages from a third party", func(t *testing.T) {
		// A reports on C: only C itself or the UCRM may (issue 10 item 5).
		msgID := injectFrom(t, peerA, b.OID, ucrm.AppTransport, "participant_availability_update",
			map[string]any{"id": oidC, "status": "offline"}, nil)
		waitNotice(t, alice, admin, msgID, "nicht übernommen", "Erreichbarkeitsmeldung")
		msgID = injectFrom(t, peerA, b.OID, ucrm.AppTransport, "message_delivery_status",
			map[string]any{"refMessageId": uuid.NewString(), "destination": oidC, "statusCode": 200}, nil)
		waitNotice(t, alice, admin, msgID, "nicht übernommen", "Zustellstatus")
		if n := countBodies(t, alice, admin, "NICHT erreichbar"); n != 0 {
			t.Errorf("A's report on C was shown")
		}
		// The UCRM's own report is shown.
		srv.SetAvailability(oidC, "offline")
		waitNotice(t, alice, admin, "NICHT erreichbar")
		srv.SetAvailability(oidC, "online")
	})
	t.Run("registry asked again before refusing", func(t *testing.T) {
		// D is in the cached registry as signing; it then opts out of signing. Its unsigned
		// case is taken once the registry is read again (issue 10 item 5).
		oidD := b.OID + ".4"
		keyD := &keyC.PublicKey
		srv.AddParticipant(ucrm.Participant{OID: oidD, Username: "d-" + b.Name, Password: "pw", Key: keyD})
		peerD := srv.Peer(oidD, keyC)
		first := uuid.NewString()
		if _, err := peerD.Send(context.Background(), b.OID, app, "incident", incident(first), "NONE"); err != nil {
			t.Fatal(err)
		}
		waitNotice(t, alice, caseRoom(t, alice, b, first), "Neuer Fall") // the registry with D is cached
		srv.AddParticipant(ucrm.Participant{OID: oidD, Username: "d-" + b.Name, Password: "pw", TransmitsUnsigned: true})
		caseID := uuid.NewString()
		injectFrom(t, srv.Peer(oidD, nil), b.OID, app, "incident", incident(caseID), nil)
		waitNotice(t, alice, caseRoom(t, alice, b, caseID), "Neuer Fall")
	})

	t.Run("expired token", func(t *testing.T) {
		srv.ExpireTokens()
		caseID := uuid.NewString()
		if _, err := peerA.Send(context.Background(), b.OID, app, "incident", incident(caseID), "ALL"); err != nil {
			t.Fatal(err)
		}
		room := caseRoom(t, alice, b, caseID)
		waitNotice(t, alice, room, "Neuer Fall")
	})
	t.Run("unreachable UCRM", func(t *testing.T) {
		caseID := uuid.NewString()
		if _, err := peerA.Send(context.Background(), b.OID, app, "incident", incident(caseID), "ALL"); err != nil {
			t.Fatal(err)
		}
		room := caseRoom(t, alice, b, caseID)
		waitNotice(t, alice, room, "Neuer Fall")
		srv.Stop()
		say(t, alice, room, "!accept")
		waitNotice(t, alice, admin, "UCRM ist nicht erreichbar")
		waitNotice(t, alice, room, "angenommen", "wird an")
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		got.wait(t, b.OID, "acknowledgement", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
		waitNotice(t, alice, admin, "wieder erreichbar")
		waitNotice(t, alice, room, "zugestellt")
		checkWording(t, alice, room)
	})
	checkWording(t, alice, admin)
	checkSchemas(t, b.OID)
}

func mustJSON(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}
