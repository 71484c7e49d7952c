package casee2e

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

// TestUnknownDispatcher: a user in the config who does not exist (a typo, a deleted
// account) does not keep the case rooms from being made; the others are invited.
func TestUnknownDispatcher(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	b.Dispatchers = append([]string{"@nobody-" + uuid.NewString()[:8] + ":" + domain}, b.Dispatchers...)
	startBot(t, nil, b)
	admin := adminRoom(t, alice, b)
	caseID := uuid.NewString()
	if _, err := peerA.Send(context.Background(), b.OID, app, "incident", incident(caseID), "NONE"); err != nil {
		t.Fatal(err)
	}
	room := caseRoom(t, alice, b, caseID)
	waitNotice(t, alice, room, "Neuer Fall")
	if n := countBodies(t, alice, admin, "konnte nicht in den Raum"); n == 0 {
		t.Log("the homeserver took the invite of the unknown user")
	}
}
