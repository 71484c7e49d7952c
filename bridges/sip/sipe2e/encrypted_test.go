package sipe2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/e2eeclient"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// TestEncryptedConversationSynapse: the rooms of the homeservers Switchboard's users run
// are encrypted. With the core's encryption on and encryption.default, the DM a SIP user
// opens is created encrypted; the Matrix user (an encrypting client with its own device)
// decrypts every SIP message, once, from the ghost's cross-signed device, and the SIP
// phone gets the plaintext of every encrypted Matrix message once. Synapse only: Dendrite
// lacks MSC4190, so the core runs without encryption there.
func TestEncryptedConversationSynapse(t *testing.T) { onSynapse(t, testEncryptedConversation) }

func testEncryptedConversation(t *testing.T) {
	startBridgeEncryption(t, nil, bridgeConfig(), appservice.Encryption{Enabled: true, Default: true, DecryptTimeout: 2 * time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	alice := e2eeclient.RegisterForTest(t, syn.Get(t), unique("alice"), "alice M")
	phone := newPhone(t, "judy")
	ghost := ghostOf(t, "judy")
	to := sipURIOf(t, alice.UserID())
	const n = 4

	var room id.RoomID
	for i := range n {
		body := fmt.Sprintf("to-alice-%d", i)
		if code, reason, err := phone.Send(ctx, sipphone.Request{To: to, ContentType: "text/plain;charset=utf-8", Body: []byte(body)}); err != nil || code != 202 {
			t.Fatalf("MESSAGE %d: %d %s %v", i, code, reason, err)
		}
		if i == 0 {
			var err error
			if room, err = alice.AcceptInvite(ctx); err != nil {
				t.Fatal(err)
			}
			requireEncrypted(ctx, t, alice, room)
		}
	}
	for i := range n {
		body := fmt.Sprintf("to-alice-%d", i)
		m, err := alice.WaitMessage(ctx, room, func(m e2eeclient.Message) bool {
			return m.DecryptError == nil && m.Event.Sender == ghost && m.Event.Content.AsMessage().Body == body
		})
		if err != nil {
			t.Fatalf("waiting for %s: %v", body, err)
		}
		if !m.Encrypted {
			t.Errorf("%s arrived unencrypted", body)
		}
		if m.SenderDevice == nil || m.SenderDevice.UserID != ghost || m.Trust < id.TrustStateCrossSignedTOFU {
			t.Errorf("%s: sender device %+v with trust %s, want a cross-signed device of %s", body, m.SenderDevice, m.Trust, ghost)
		}
	}
	seen := map[string]int{}
	for _, m := range alice.Received(room) {
		if m.DecryptError == nil && m.Event.Sender == ghost {
			seen[m.Event.Content.AsMessage().Body]++
		}
	}
	for i := range n {
		if body := fmt.Sprintf("to-alice-%d", i); seen[body] != 1 {
			t.Errorf("%q reached Matrix %d times, want once", body, seen[body])
		}
	}

	// Matrix to SIP: encrypted messages reach the phone as plaintext, once each.
	for i := range n {
		body := fmt.Sprintf("from-alice-%d", i)
		if _, err := alice.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: body}); err != nil {
			t.Fatalf("send %s: %v", body, err)
		}
	}
	for i := range n {
		body := fmt.Sprintf("from-alice-%d", i)
		if _, err := phone.Wait(ctx, body, func(r *sip.Request) bool { return string(r.Body()) == body }); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range phone.Received("MESSAGE") {
		if strings.Contains(string(r.Body()), "m.room.encrypted") || strings.Contains(string(r.Body()), "ciphertext") {
			t.Errorf("the phone received an undecrypted event: %q", r.Body())
		}
	}
	callIDs := map[string]map[string]bool{}
	for _, r := range phone.Received("MESSAGE") {
		b := string(r.Body())
		if callIDs[b] == nil {
			callIDs[b] = map[string]bool{}
		}
		callIDs[b][r.CallID().Value()] = true
	}
	for i := range n {
		if body := fmt.Sprintf("from-alice-%d", i); len(callIDs[body]) != 1 {
			t.Errorf("%q reached the phone under %d Call-IDs, want 1", body, len(callIDs[body]))
		}
	}
}

// requireEncrypted fails t unless room has m.room.encryption (Megolm).
func requireEncrypted(ctx context.Context, t *testing.T, user *e2eeclient.Client, room id.RoomID) {
	t.Helper()
	var enc event.EncryptionEventContent
	if err := user.Mautrix().StateEvent(ctx, room, event.StateEncryption, "", &enc); err != nil {
		t.Fatalf("%s has no m.room.encryption: %v", room, err)
	}
	if enc.Algorithm != id.AlgorithmMegolmV1 {
		t.Fatalf("%s is encrypted with %q, want %s", room, enc.Algorithm, id.AlgorithmMegolmV1)
	}
}
