package cryptoe2e

import (
	"context"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/e2eeclient"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// newCryptoUser registers a user on h with an encrypting client.
func newCryptoUser(t *testing.T, h homeserver.HS, prefix string) *e2eeclient.Client {
	t.Helper()
	cli, password := newUser(t, h, prefix)
	return e2eeclient.ForTest(t, cli, password)
}

// encryptedPortal creates an encrypted room as user with the test module's ghosts invited
// and waits until they joined.
func encryptedPortal(t *testing.T, user *e2eeclient.Client, ghosts ...string) id.RoomID {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var invite []id.UserID
	for _, g := range ghosts {
		invite = append(invite, id.NewUserID(testmodule.GhostPrefix+g, domain))
	}
	room, err := user.CreateEncryptedRoom(ctx, &mautrix.ReqCreateRoom{Invite: invite})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range invite {
		matrixtest.WaitFor(t, time.Minute, "ghost "+g.String()+" joins", func() (bool, error) {
			return matrixtest.IsJoined(ctx, user.Mautrix(), room, g)
		})
	}
	return room
}

// bodiesHandled returns body -> deliveries of the test module's effects in room.
func bodiesHandled(t *testing.T, st *store.Store, room id.RoomID) map[string]int {
	t.Helper()
	rows, err := st.DB().Query(`SELECT body, deliveries FROM testmod_effects WHERE room_id = $1`, room.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var b string
		var n int
		if err := rows.Scan(&b, &n); err != nil {
			t.Fatal(err)
		}
		out[b] += n
	}
	return out
}

// TestEncryptedRoundTripSynapse: in an encrypted room, messages a user's encrypting client
// sends reach the module decrypted, once each; messages the module sends reach the client
// encrypted, decryptable, from a device cross-signed by the ghost that sent them.
func TestEncryptedRoundTripSynapse(t *testing.T) {
	h := syn.Get(t)
	st := storetest.Open(t, store.SQLite)
	feed := &testmodule.Feed{}
	srv := httptest.NewServer(feed)
	defer srv.Close()
	alice := newCryptoUser(t, h, "alice")
	// The room exists before the core starts, so the feed has somewhere to send to.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	room, err := alice.CreateEncryptedRoom(ctx, &mautrix.ReqCreateRoom{})
	if err != nil {
		t.Fatal(err)
	}
	startCore(t, h, st, testmodule.Config{RemoteURL: srv.URL, Room: room.String(), Ghost: "feeder"}, encryptionOn(time.Minute))
	for _, g := range []string{"sink", "feeder"} {
		if _, err := alice.Mautrix().InviteUser(ctx, room, &mautrix.ReqInviteUser{UserID: id.NewUserID(testmodule.GhostPrefix+g, domain)}); err != nil {
			t.Fatal(err)
		}
		matrixtest.WaitFor(t, time.Minute, g+" joins", func() (bool, error) {
			return matrixtest.IsJoined(ctx, alice.Mautrix(), room, id.NewUserID(testmodule.GhostPrefix+g, domain))
		})
	}
	const n = 5
	for i := 0; i < n; i++ {
		if _, err := alice.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "secret-" + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	feed.Released.Store(n)
	matrixtest.WaitFor(t, time.Minute, "the module handles every message", func() (bool, error) {
		return len(bodiesHandled(t, st, room)) == n, nil
	})
	for b, d := range bodiesHandled(t, st, room) {
		if d != 1 {
			t.Errorf("%q handled %d times", b, d)
		}
	}
	feeder := id.NewUserID(testmodule.GhostPrefix+"feeder", domain)
	for i := 1; i <= n; i++ {
		body := "remote-" + strconv.Itoa(i)
		m, err := alice.WaitMessage(ctx, room, func(m e2eeclient.Message) bool {
			return m.Event.Sender == feeder && m.DecryptError == nil && m.Event.Content.AsMessage().Body == body
		})
		if err != nil {
			t.Fatalf("waiting for %s: %v", body, err)
		}
		if !m.Encrypted {
			t.Errorf("%s arrived unencrypted", body)
		}
		if m.Trust < id.TrustStateCrossSignedTOFU {
			t.Errorf("%s: sender device trust %s, want cross-signed", body, m.Trust)
		}
		if i == 1 {
			t.Logf("%s from device %s: trust %s", body, m.SenderDevice.DeviceID, m.Trust)
		}
	}
	// One room key for all of them: the session is kept while the members and their
	// devices stay the same (the sender keeps its own copy of each session it made).
	var sessions int
	if err := st.DB().QueryRow(`SELECT count(*) FROM crypto_megolm_inbound_session s
		JOIN switchboard_e2ee_device o ON o.user_id = s.account_id
		JOIN crypto_device d ON d.user_id = o.user_id AND d.device_id = o.device_id
		WHERE s.account_id = $1 AND s.room_id = $2 AND s.sender_key = d.identity_key`,
		feeder.String(), room.String()).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions != 1 {
		t.Errorf("the feeder used %d Megolm sessions for %d messages, want 1", sessions, n)
	}
}
