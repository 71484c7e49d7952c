package casee2e

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

// TestUnknownDispatcher: a user in the config who does not exist (a typo, a deleted
// account) does not keep the case rooms from being made; the others are invited and the
// admin room is told once.
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
	// Dendrite refuses to invite a user it does not know, Synapse invites them silently:
	// the bot looks the user up first and tells the admin room on both.
	waitNotice(t, alice, admin, "konnte nicht in den Raum", "Konfiguration prüfen")
	if n := countBodies(t, alice, admin, "konnte nicht in den Raum"); n != 1 {
		t.Errorf("%d notices about the unknown user, want 1", n)
	}
}

// TestUnknownDispatcherSynapse is TestUnknownDispatcher against Synapse.
func TestUnknownDispatcherSynapse(t *testing.T) { onSynapse(t, TestUnknownDispatcher) }
