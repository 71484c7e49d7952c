package cryptoe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/syncbuf"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

type syncBuffer = syncbuf.Buffer

// TestEncryptionRefusedDendrite: Dendrite v0.13.8 cannot create devices for appservice
// users (no MSC4190). With encryption.enabled the core says so at start-up, clearly, and
// runs without encryption; an encrypted event in a bridged room then gets a failure status
// and the room one notice explaining that the bridge cannot read encrypted messages.
func TestEncryptionRefusedDendrite(t *testing.T) {
	testEncryptionOff(t, den.Get(t), encryptionOn(time.Minute), "homeserver cannot create devices for appservice users")
}

// TestEncryptionDisabledNoticeSynapse: with encryption off in the config, an encrypted
// event in a bridged room gets a failure status and the room one notice.
func TestEncryptionDisabledNoticeSynapse(t *testing.T) {
	testEncryptionOff(t, syn.Get(t), appservice.Encryption{}, "End-to-end encryption is off")
}

func testEncryptionOff(t *testing.T, h homeserver.HS, enc appservice.Encryption, wantLog string) {
	st := storetest.Open(t, store.SQLite)
	var log syncBuffer
	core, _, _ := startCoreLog(t, h, st, testmodule.Config{}, enc, &log)
	if core.EncryptionActive() {
		t.Fatal("encryption is active")
	}
	if !strings.Contains(log.String(), wantLog) {
		t.Fatalf("the start-up log does not say %q:\n%s", wantLog, log.String())
	}
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, wantLog) {
			t.Logf("start-up log: %s", line)
		}
	}
	alice, _ := newUser(t, h, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ghost := id.NewUserID(testmodule.GhostPrefix+"sink", domain)
	resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{
		Invite: []id.UserID{ghost},
		InitialState: []*event.Event{{Type: event.StateEncryption, Content: event.Content{
			Parsed: &event.EncryptionEventContent{Algorithm: id.AlgorithmMegolmV1}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	room := resp.RoomID
	matrixtest.WaitFor(t, time.Minute, "the ghost joins", func() (bool, error) {
		return matrixtest.IsJoined(ctx, alice, room, ghost)
	})
	// What a client sends in an encrypted room (the ciphertext does not matter here).
	var sent []id.EventID
	for i := 0; i < 2; i++ {
		r, err := alice.SendMessageEvent(ctx, room, event.EventEncrypted, map[string]any{
			"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEhA", "session_id": "sess", "sender_key": "key", "device_id": "DEV",
		})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, r.EventID)
	}
	matrixtest.WaitFor(t, time.Minute, "a failure status on each encrypted event", func() (bool, error) {
		evts, err := matrixtest.RoomEvents(ctx, alice, room, event.BeeperMessageStatus)
		got := 0
		for _, want := range sent {
			for _, e := range evts {
				if rel, _ := e.Content.Raw["m.relates_to"].(map[string]any); rel != nil && rel["event_id"] == want.String() {
					got++
					break
				}
			}
		}
		return got == len(sent), err
	})
	var notices []string
	matrixtest.WaitFor(t, 30*time.Second, "one notice in the room", func() (bool, error) {
		evts, err := matrixtest.RoomEvents(ctx, alice, room, event.EventMessage)
		notices = notices[:0]
		for _, e := range evts {
			if e.Sender == ghost {
				notices = append(notices, e.Content.AsMessage().Body)
			}
		}
		return len(notices) >= 1, err
	})
	time.Sleep(2 * time.Second) // a second notice would have come by now
	evts, err := matrixtest.RoomEvents(ctx, alice, room, event.EventMessage)
	if err != nil {
		t.Fatal(err)
	}
	notices = notices[:0]
	for _, e := range evts {
		if e.Sender == ghost {
			notices = append(notices, e.Content.AsMessage().Body)
		}
	}
	if len(notices) != 1 {
		t.Fatalf("%d notices, want 1: %q", len(notices), notices)
	}
	if !strings.Contains(notices[0], "encrypt") {
		t.Errorf("the notice does not explain encryption: %q", notices[0])
	}
	t.Logf("notice: %q", notices[0])
	if n := len(bodiesHandled(t, st, room)); n != 0 {
		t.Errorf("the module got %d events", n)
	}
}
