package casee2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/case116117"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/e2eeclient"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
)

// newCryptoDispatcher registers a dispatcher on h with an encrypting client (its own
// device, cross-signed).
func newCryptoDispatcher(t *testing.T, h homeserver.HS, prefix string) *e2eeclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9)
	password := "password-" + name
	cli, err := h.RegisterUser(ctx, name, password)
	if err != nil {
		t.Fatal(err)
	}
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	c, err := e2eeclient.New(ctx, cli, password, e2eeclient.Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// acceptRoom waits for the bot's invite to the room of alias (the invites come in the
// order the bot makes its rooms), joins it and checks that the room is encrypted (Megolm).
func acceptRoom(ctx context.Context, t *testing.T, c *e2eeclient.Client, alias string) id.RoomID {
	t.Helper()
	var want id.RoomID
	matrixtest.WaitFor(t, time.Minute, "the room "+alias, func() (bool, error) {
		resp, err := c.Mautrix().ResolveAlias(ctx, id.RoomAlias(alias))
		if err != nil {
			return false, nil
		}
		want = resp.RoomID
		return true, nil
	})
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	room, err := c.AcceptInvite(actx)
	if err != nil {
		t.Fatal(err)
	}
	if room != want {
		t.Fatalf("invited to %s first, want %s (%s)", room, want, alias)
	}
	var enc event.EncryptionEventContent
	if err := c.Mautrix().StateEvent(ctx, room, event.StateEncryption, "", &enc); err != nil {
		t.Fatalf("%s has no m.room.encryption: %v", alias, err)
	}
	if enc.Algorithm != id.AlgorithmMegolmV1 {
		t.Fatalf("%s: m.room.encryption algorithm %q", alias, enc.Algorithm)
	}
	return room
}

// waitDecrypted waits for a message of sender in room whose decrypted body has all the
// parts, and checks that it came encrypted from a device cross-signed by sender.
func waitDecrypted(ctx context.Context, t *testing.T, c *e2eeclient.Client, room id.RoomID, sender id.UserID, parts ...string) e2eeclient.Message {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	m, err := c.WaitMessage(wctx, room, func(m e2eeclient.Message) bool {
		return m.Event.Sender == sender && m.DecryptError == nil && hasParts(m.Event, parts)
	})
	if err != nil {
		t.Fatalf("waiting for %q: %v (received: %s)", parts, err, describe(c.Received(room)))
	}
	if !m.Encrypted {
		t.Errorf("%q arrived unencrypted", parts)
	}
	if m.Trust < id.TrustStateCrossSignedTOFU {
		t.Errorf("%q: sender device trust %s, want cross-signed", parts, m.Trust)
	}
	return m
}

func hasParts(e *event.Event, parts []string) bool {
	body, _ := e.Content.Raw["body"].(string)
	if e.Type != event.EventMessage {
		return false
	}
	for _, p := range parts {
		if !strings.Contains(body, p) {
			return false
		}
	}
	return true
}

// describe lists messages for a failure report: type, sender, encryption, error (no
// bodies: the test's log is no place for the case's text either).
func describe(ms []e2eeclient.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n  %s from %s encrypted=%v err=%v", m.Event.Type.Type, m.Event.Sender, m.Encrypted, m.DecryptError)
	}
	return b.String()
}

// countDecrypted counts sender's decrypted messages in room with all the parts.
func countDecrypted(c *e2eeclient.Client, room id.RoomID, sender id.UserID, parts ...string) int {
	n := 0
	seen := map[id.EventID]bool{}
	for _, m := range c.Received(room) {
		if m.Event.Sender == sender && m.DecryptError == nil && !seen[m.Event.ID] && hasParts(m.Event, parts) {
			seen[m.Event.ID] = true
			n++
		}
	}
	return n
}

// plainFrom lists the events sender sent into room unencrypted.
func plainFrom(c *e2eeclient.Client, room id.RoomID, sender id.UserID) []string {
	var out []string
	for _, m := range c.Received(room) {
		if m.Event.Sender == sender && !m.Encrypted {
			out = append(out, m.Event.Type.Type)
		}
	}
	return out
}

// sentTimes counts the messages of schemaID about caseID that source sent to the UCRM.
func sentTimes(t *testing.T, source, schemaID, caseID string) int {
	t.Helper()
	n := 0
	for _, raw := range srv.Sent(source) {
		m, err := ucrm.ParseMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		var data map[string]any
		if m.SchemaID != schemaID || json.Unmarshal(m.Data, &data) != nil {
			continue
		}
		if caseID == "" || data["sharedIncidentId"] == caseID {
			n++
		}
	}
	return n
}

func text(body string) *event.MessageEventContent {
	return &event.MessageEventContent{MsgType: event.MsgText, Body: body}
}

// TestEncryptedCaseSynapse: with the core's encryption on (and encryption.default OFF,
// so the bot asks for encryption itself), the admin room and every case room are created
// encrypted; the dispatcher's encrypting client decrypts the case summary and the bot's
// notices, sent from the bot's device cross-signed by the bot; the dispatcher's encrypted
// commands and reaction (case rooms) and handover (admin room) are acted on exactly once,
// and the UCRM receives each answer exactly once. No bot message in these rooms is plain.
func TestEncryptedCaseSynapse(t *testing.T) {
	onSynapse(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		disp := newCryptoDispatcher(t, syn.Get(t), "disp")
		b := newCentre(t, disp.UserID())
		core := startBotEncrypted(t, nil, appservice.Encryption{Enabled: true, Default: false, DecryptTimeout: time.Minute}, b)
		if !core.EncryptionActive() {
			t.Fatal("the core's encryption is not active on Synapse")
		}
		botID := id.NewUserID(case116117.DefaultPrefix+b.Name, domain)
		prefix := "#" + case116117.DefaultPrefix + b.Name
		admin := acceptRoom(ctx, t, disp, prefix+":"+domain)

		// An incoming case, accepted and completed by commands.
		caseID := uuid.NewString()
		if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(caseID), "ALL"); err != nil {
			t.Fatal(err)
		}
		room := acceptRoom(ctx, t, disp, prefix+"_"+caseID+":"+domain)
		summary := waitDecrypted(ctx, t, disp, room, botID, "Neuer Fall", "Musterstrasse 15b", "Hans Mustermann", "RMI 360")
		t.Logf("case summary from device %s: trust %s", summary.SenderDevice.DeviceID, summary.Trust)
		waitDecrypted(ctx, t, disp, admin, botID, "Neuer Fall", "Fall A1 · Musterhausen")

		if _, err := disp.Send(ctx, room, event.EventMessage, text("!accept Wir übernehmen")); err != nil {
			t.Fatal(err)
		}
		var got received
		ack := got.wait(t, b.OID, "acknowledgement", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
		var data map[string]any
		_ = json.Unmarshal(ack.Data, &data)
		if data["status"] != "accepted" || data["cause"] != "Wir übernehmen" {
			t.Errorf("acknowledgement %s", ack.Data)
		}
		waitDecrypted(ctx, t, disp, room, botID, "✅ Fall angenommen")
		waitDecrypted(ctx, t, disp, room, botID, "zugestellt")
		if _, err := disp.Send(ctx, room, event.EventMessage, text("!complete Patient versorgt")); err != nil {
			t.Fatal(err)
		}
		done := got.wait(t, b.OID, "completion", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
		_ = json.Unmarshal(done.Data, &data)
		if data["status"] != "completed_sucessfully" {
			t.Errorf("completion %s", done.Data)
		}

		// A second case, rejected by an encrypted reaction on its summary.
		case2 := uuid.NewString()
		if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(case2), "ALL"); err != nil {
			t.Fatal(err)
		}
		room2 := acceptRoom(ctx, t, disp, prefix+"_"+case2+":"+domain)
		summary2 := waitDecrypted(ctx, t, disp, room2, botID, "Neuer Fall")
		if _, err := disp.Send(ctx, room2, event.EventReaction, &event.ReactionEventContent{
			RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: summary2.Event.ID, Key: "❌"},
		}); err != nil {
			t.Fatal(err)
		}
		got.wait(t, b.OID, "acknowledgement", func(d map[string]any) bool { return d["sharedIncidentId"] == case2 && d["status"] == "rejected" })

		// A case handed over from the encrypted admin room gets an encrypted room too.
		if _, err := disp.Send(ctx, admin, event.EventMessage, text("!handover "+oidC+"\nstichwort: B2\nanlass: Sturz\nstrasse: Hauptstraße\nhausnummer: 1\nplz: 54321\nort: Beispielstadt\n"+
			"patient: Muster, Erika\ngeschlecht: w\ngeburtsdatum: 31.12.1950\ntelefon: +49 40 555\nersteinschaetzung: Sturz, ansprechbar")); err != nil {
			t.Fatal(err)
		}
		toC := received{peer: peerC}
		inc := toC.wait(t, b.OID, "incident", nil)
		_ = json.Unmarshal(inc.Data, &data)
		case3, _ := data["sharedIncidentId"].(string)
		room3 := acceptRoom(ctx, t, disp, prefix+"_"+case3+":"+domain)
		waitDecrypted(ctx, t, disp, room3, botID, "Fall zur Übergabe", "Erika Muster", "Beispielstadt")
		waitDecrypted(ctx, t, disp, room3, botID, "zugestellt")

		// Let any second handling show, then count.
		time.Sleep(3 * time.Second)
		for _, c := range []struct {
			what, schema, caseID string
			want                 int
		}{
			{"acknowledgement of case 1", "acknowledgement", caseID, 1},
			{"completion of case 1", "completion", caseID, 1},
			{"acknowledgement of case 2", "acknowledgement", case2, 1},
			{"handed-over incident", "incident", "", 1},
		} {
			if n := sentTimes(t, b.OID, c.schema, c.caseID); n != c.want {
				t.Errorf("%s sent %d times, want %d", c.what, n, c.want)
			}
		}
		for _, c := range []struct {
			room  id.RoomID
			parts []string
		}{
			{room, []string{"Neuer Fall", "Hans Mustermann"}},
			{room, []string{"✅ Fall angenommen"}},
			{room2, []string{"Neuer Fall"}},
			{room3, []string{"Fall zur Übergabe"}},
		} {
			if n := countDecrypted(disp, c.room, botID, c.parts...); n != 1 {
				t.Errorf("%q shown %d times in %s", c.parts, n, c.room)
			}
		}
		for _, r := range []id.RoomID{admin, room, room2, room3} {
			if plain := plainFrom(disp, r, botID); len(plain) > 0 {
				t.Errorf("the bot sent %v unencrypted into %s", plain, r)
			}
		}
		checkSchemas(t, b.OID)
	})
}

// TestEncryptedCommandWithoutEncryption: on Dendrite the core runs without encryption and
// the bot's rooms are unencrypted; an encrypted message a dispatcher's client sends into a
// case room anyway is not silently dropped: the link bot answers it with a notice, and
// nothing goes to the UCRM.
func TestEncryptedCommandWithoutEncryption(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	core := startBot(t, nil, b)
	if core.EncryptionActive() {
		t.Fatal("encryption is active without being enabled")
	}
	caseID := uuid.NewString()
	if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(caseID), "NONE"); err != nil {
		t.Fatal(err)
	}
	room := caseRoom(t, alice, b, caseID)
	waitNotice(t, alice, room, "Neuer Fall")
	var enc event.EncryptionEventContent
	if err := alice.StateEvent(ctx, room, event.StateEncryption, "", &enc); err == nil && enc.Algorithm != "" {
		t.Fatalf("the case room is encrypted (%s) though the core has no encryption", enc.Algorithm)
	}
	// What a client sends in an encrypted room (the ciphertext does not matter here).
	if _, err := alice.SendMessageEvent(ctx, room, event.EventEncrypted, map[string]any{
		"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEhA", "session_id": "sess", "sender_key": "key", "device_id": "DEV",
	}); err != nil {
		t.Fatal(err)
	}
	botID := id.NewUserID(case116117.DefaultPrefix+b.Name, domain)
	notice := waitNotice(t, alice, room, "not delivered", "encryption")
	if notice.Sender != botID {
		t.Errorf("the notice came from %s, want the link bot %s", notice.Sender, botID)
	}
	time.Sleep(2 * time.Second)
	if n := sentTimes(t, b.OID, "acknowledgement", caseID); n != 0 {
		t.Errorf("%d acknowledgements sent for an unreadable message", n)
	}
}
