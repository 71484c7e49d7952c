package cryptoe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/e2eeclient"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// decryptTimeout is the core's wait for a room key in TestLateRoomKeySynapse.
const decryptTimeout = 8 * time.Second

// TestLateRoomKeySynapse: an event whose room key the client withholds waits in the
// journal; when the key arrives late, the module gets the event once. An event whose key
// never arrives is failed after the decrypt timeout: its sender sees a failure status and
// a notice saying the bridge could not decrypt it, and the module never gets it.
func TestLateRoomKeySynapse(t *testing.T) {
	h := syn.Get(t)
	st := storetest.Open(t, store.SQLite)
	startCore(t, h, st, testmodule.Config{}, encryptionOn(decryptTimeout))
	alice := newCryptoUser(t, h, "alice")
	room := encryptedPortal(t, alice, "sink")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The test module's ghost in the room reports failures (appservice.FailureSender).
	reporter := id.NewUserID(testmodule.GhostPrefix+"sink", domain)

	t.Run("late", func(t *testing.T) {
		evtID, release, err := alice.SendWithheldKey(ctx, room, &event.MessageEventContent{MsgType: event.MsgText, Body: "late key"})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if n := bodiesHandled(t, st, room)["late key"]; n != 0 {
			t.Fatalf("handled %d times before its key arrived", n)
		}
		if err := release(ctx); err != nil {
			t.Fatal(err)
		}
		matrixtest.WaitFor(t, time.Minute, "the module gets the event once its key arrived", func() (bool, error) {
			return bodiesHandled(t, st, room)["late key"] == 1, nil
		})
		effects, err := testmodule.Effects(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		if effects[evtID.String()] != 1 {
			t.Errorf("event %s handled %d times, want 1", evtID, effects[evtID.String()])
		}
	})

	t.Run("never", func(t *testing.T) {
		start := time.Now()
		evtID, _, err := alice.SendWithheldKey(ctx, room, &event.MessageEventContent{MsgType: event.MsgText, Body: "no key"})
		if err != nil {
			t.Fatal(err)
		}
		notice, err := alice.WaitMessage(ctx, room, func(m e2eeclient.Message) bool {
			if m.Event.Type != event.EventMessage || m.Event.Sender != reporter {
				return false
			}
			c := m.Event.Content.AsMessage()
			return c.RelatesTo != nil && c.RelatesTo.InReplyTo != nil && c.RelatesTo.InReplyTo.EventID == evtID
		})
		if err != nil {
			t.Fatal(err)
		}
		waited := time.Since(start)
		body := notice.Event.Content.AsMessage().Body
		if !strings.Contains(body, "could not decrypt") {
			t.Errorf("notice %q does not say the bridge could not decrypt the message", body)
		}
		if waited < decryptTimeout-time.Second {
			t.Errorf("notice after %s, before the decrypt timeout of %s", waited, decryptTimeout)
		}
		t.Logf("notice after %s: %q (encrypted: %v)", waited.Round(100*time.Millisecond), body, notice.Encrypted)
		matrixtest.WaitFor(t, 30*time.Second, "a failure status on the event", func() (bool, error) {
			evts, err := matrixtest.RoomEvents(ctx, alice.Mautrix(), room, event.BeeperMessageStatus)
			for _, e := range evts {
				if rel, _ := e.Content.Raw["m.relates_to"].(map[string]any); rel != nil && rel["event_id"] == evtID.String() {
					return true, nil
				}
			}
			return false, err
		})
		if n := bodiesHandled(t, st, room)["no key"]; n != 0 {
			t.Errorf("the module got an event it could not have decrypted (%d)", n)
		}
		recs, err := st.InboxRecords(t.Context(), evtID.String())
		if err != nil {
			t.Fatal(err)
		}
		failed := 0
		for _, r := range recs {
			if r.State == "failed" {
				failed++
			}
		}
		if failed != 1 {
			t.Errorf("the journal has %d failed rows for the event, want 1", failed)
		}
	})
}
