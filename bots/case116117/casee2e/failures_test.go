package casee2e

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
)

// inject puts an envelope from A into the centre's queue past the UCRM's checks, as a
// faulty or forged UCRM would deliver it; edit changes it after signing.
func inject(t *testing.T, dest string, data any, edit func(env map[string]any)) string {
	t.Helper()
	env, err := peerA.Envelope(dest, app, "incident", data, "NONE")
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
	t.Run("wrong signature", func(t *testing.T) {
		caseID := uuid.NewString()
		msgID := inject(t, b.OID, incident(caseID), func(env map[string]any) {
			// Signed, then changed: the signature no longer fits.
			env["payload"].(map[string]any)["data"] = mustJSON(incident(uuid.NewString()))
		})
		waitNotice(t, alice, admin, msgID, "nicht übernommen", "ignatur")
	})
	t.Run("unsigned", func(t *testing.T) {
		msgID := inject(t, b.OID, incident(uuid.NewString()), func(env map[string]any) { delete(env, "signature") })
		waitNotice(t, alice, admin, msgID, "nicht signiert")
	})
	t.Run("not JSON", func(t *testing.T) {
		msgID := inject(t, b.OID, []byte(`{"sharedIncidentId": `), nil)
		waitNotice(t, alice, admin, msgID, "nicht übernommen")
	})

	// Nothing of the three forged or broken messages became a case.
	if n := countBodies(t, alice, admin, "Neuer Fall"); n != 0 {
		t.Errorf("%d cases were opened from invalid messages", n)
	}

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
	})
	checkSchemas(t, b.OID)
}

func mustJSON(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}
