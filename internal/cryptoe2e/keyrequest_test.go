package cryptoe2e

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestRoomKeyLostWhileDownSynapse: a room key sent while Switchboard is down is lost (Synapse
// drops the to-device events of transactions it could not deliver; its recoverer resends
// only the room events). The core asks the sender's devices for the missing key, the
// client answers, and the event is delivered once, well before the decrypt timeout.
func TestRoomKeyLostWhileDownSynapse(t *testing.T) {
	h := syn.Get(t)
	st := storetest.Open(t, store.SQLite)
	core, _, _ := startCore(t, h, st, testmodule.Config{}, encryptionOn(5*time.Minute))
	alice := newCryptoUser(t, h, "alice")
	room := encryptedPortal(t, alice, "sink")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stopCtx, stopCancel := context.WithTimeout(ctx, 15*time.Second)
	if err := core.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	stopCancel()
	// The first message of the room starts its Megolm session: its key goes out now, to a
	// Switchboard that does not answer.
	if _, err := alice.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "while down"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // Synapse tries, fails and drops the to-device events
	start := time.Now()
	startCore(t, h, st, testmodule.Config{}, encryptionOn(5*time.Minute))
	matrixtest.WaitFor(t, 2*time.Minute, "the event is delivered after its key was requested", func() (bool, error) {
		return bodiesHandled(t, st, room)["while down"] == 1, nil
	})
	t.Logf("delivered %s after the restart", time.Since(start).Round(100*time.Millisecond))
}
