package e2eeclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/syncbuf"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/registration"
)

var workDir string

// syn is the package's Synapse, with a registration nobody serves (no Switchboard runs).
var syn = homeserver.Lazy{
	Kind: homeserver.Synapse,
	Dir:  func() string { return filepath.Join(workDir, "synapse") },
	Appservice: func() (dendrite.Appservice, error) {
		return dendrite.Appservice{
			ID: "switchboard-e2eeclient",
			Namespaces: map[string]registration.Namespaces{
				"test": {Users: []registration.Pattern{{Localpart: "_test_.+", Exclusive: true}}},
			},
		}, nil
	},
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2eeclient-")
	if err != nil {
		panic(err)
	}
	workDir = dir
	code := m.Run()
	syn.Stop()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type syncBuffer = syncbuf.Buffer

// newClient registers a user on hs and sets up its encrypting client; its warn-level
// log is shown when t fails.
func newClient(ctx context.Context, t *testing.T, hs homeserver.HS, prefix string) *Client {
	t.Helper()
	name := dendrite.Unique(prefix)
	password := "password-" + name
	cli, err := hs.RegisterUser(ctx, name, password)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := zerolog.New(&logs).Level(zerolog.WarnLevel).With().Timestamp().Logger()
	c, err := New(ctx, cli, password, Options{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("%s log:\n%s", prefix, logs.String())
		}
	})
	return c
}

// encryptedRoom has alice create an encrypted room and invite bob, and bob accept the
// invite (AcceptInvite).
func encryptedRoom(ctx context.Context, t *testing.T, alice, bob *Client) id.RoomID {
	t.Helper()
	roomID, err := alice.CreateEncryptedRoom(ctx, &mautrix.ReqCreateRoom{
		Preset: "private_chat", Invite: []id.UserID{bob.UserID()},
	})
	if err != nil {
		t.Fatal(err)
	}
	joined, err := bob.AcceptInvite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if joined != roomID {
		t.Fatalf("bob joined %s, want %s", joined, roomID)
	}
	return roomID
}

// body matches a decrypted text message with the given body.
func body(want string) func(Message) bool {
	return func(m Message) bool {
		c := m.Event.Content.AsMessage()
		return m.DecryptError == nil && m.Event.Type == event.EventMessage && c != nil && c.Body == want
	}
}

func text(s string) *event.MessageEventContent {
	return &event.MessageEventContent{MsgType: event.MsgText, Body: s}
}

// TestEncryptedMessageDecryptedAndCrossSigned: bob receives alice's message in an
// encrypted room decrypted, sent by alice's device, which is cross-signed by alice
// (trust CrossSignedTOFU or better); and alice receives bob's answer the same way.
func TestEncryptedMessageDecryptedAndCrossSigned(t *testing.T) {
	hs := syn.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := newClient(ctx, t, hs, "alice")
	bob := newClient(ctx, t, hs, "bob")
	roomID := encryptedRoom(ctx, t, alice, bob)

	for _, tc := range []struct {
		name     string
		from, to *Client
		body     string
	}{
		{"alice to bob", alice, bob, "hello bob"},
		{"bob to alice", bob, alice, "hello alice"},
		{"alice to bob again", alice, bob, "second"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eventID, err := tc.from.Send(ctx, roomID, event.EventMessage, text(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			m, err := tc.to.WaitMessage(ctx, roomID, func(m Message) bool { return m.Event.ID == eventID })
			if err != nil {
				t.Fatal(err)
			}
			if !m.Encrypted || m.DecryptError != nil {
				t.Fatalf("encrypted=%v decrypt error=%v; want an encrypted event, decrypted", m.Encrypted, m.DecryptError)
			}
			if got := m.Event.Content.AsMessage().Body; got != tc.body {
				t.Errorf("body %q, want %q", got, tc.body)
			}
			if m.SenderDevice == nil || m.SenderDevice.UserID != tc.from.UserID() || m.SenderDevice.DeviceID != tc.from.DeviceID() {
				t.Errorf("sender device %+v, want %s/%s", m.SenderDevice, tc.from.UserID(), tc.from.DeviceID())
			}
			t.Logf("trust %s", m.Trust)
			if m.Trust < id.TrustStateCrossSignedTOFU {
				t.Errorf("trust %s, want %s or better", m.Trust, id.TrustStateCrossSignedTOFU)
			}
		})
	}
}

// TestWithheldKeyReleasedLate: bob first sees alice's withheld-key message as
// undecryptable (no session), then, once alice releases the key, decrypted; a message
// whose key is never released stays undecryptable; a normal message afterwards still
// decrypts (the room's own session was left in place).
func TestWithheldKeyReleasedLate(t *testing.T) {
	hs := syn.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := newClient(ctx, t, hs, "alice")
	bob := newClient(ctx, t, hs, "bob")
	roomID := encryptedRoom(ctx, t, alice, bob)
	if _, err := alice.Send(ctx, roomID, event.EventMessage, text("before")); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitMessage(ctx, roomID, body("before")); err != nil {
		t.Fatal(err)
	}

	late, release, err := alice.SendWithheldKey(ctx, roomID, text("late key"))
	if err != nil {
		t.Fatal(err)
	}
	never, _, err := alice.SendWithheldKey(ctx, roomID, text("never"))
	if err != nil {
		t.Fatal(err)
	}
	for _, eventID := range []id.EventID{late, never} {
		m, err := bob.WaitMessage(ctx, roomID, func(m Message) bool { return m.Event.ID == eventID })
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(m.DecryptError, crypto.ErrNoSessionFound) {
			t.Fatalf("%s: decrypt error %v, want %v", eventID, m.DecryptError, crypto.ErrNoSessionFound)
		}
	}

	if err := release(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := bob.WaitMessage(ctx, roomID, func(m Message) bool { return m.Event.ID == late && m.DecryptError == nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Event.Content.AsMessage().Body; got != "late key" || m.Trust < id.TrustStateCrossSignedTOFU {
		t.Errorf("late message %q trust %s, want %q and %s or better", got, m.Trust, "late key", id.TrustStateCrossSignedTOFU)
	}

	if _, err := alice.Send(ctx, roomID, event.EventMessage, text("after")); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitMessage(ctx, roomID, body("after")); err != nil {
		t.Fatal(err)
	}
	for _, m := range bob.Received(roomID) {
		if m.Event.ID == never && m.DecryptError == nil {
			t.Errorf("the message whose key was never released was decrypted: %q", m.Event.Content.AsMessage().Body)
		}
	}
}

// TestPlainRoom: in a room without m.room.encryption, Send sends plain events.
func TestPlainRoom(t *testing.T) {
	hs := syn.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := newClient(ctx, t, hs, "alice")
	bob := newClient(ctx, t, hs, "bob")
	resp, err := alice.Mautrix().CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "private_chat", Invite: []id.UserID{bob.UserID()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Mautrix().JoinRoomByID(ctx, resp.RoomID); err != nil {
		t.Fatal(err)
	}
	eventID, err := alice.Send(ctx, resp.RoomID, event.EventMessage, text("plain"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := bob.WaitMessage(ctx, resp.RoomID, func(m Message) bool { return m.Event.ID == eventID })
	if err != nil {
		t.Fatal(err)
	}
	if m.Encrypted || m.Event.Type != event.EventMessage || m.Event.Content.AsMessage().Body != "plain" {
		t.Errorf("got encrypted=%v type %s, want a plain m.room.message %q", m.Encrypted, m.Event.Type.Type, "plain")
	}
}

// TestLateJoinerGetsTheKey: a member who joins after the room's session was shared gets
// the key of the next message (the client starts a new session for the new set of
// devices), as Element does.
func TestLateJoinerGetsTheKey(t *testing.T) {
	hs := syn.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := newClient(ctx, t, hs, "alice")
	bob := newClient(ctx, t, hs, "bob")
	carol := newClient(ctx, t, hs, "carol")
	roomID := encryptedRoom(ctx, t, alice, bob)
	if _, err := alice.Send(ctx, roomID, event.EventMessage, text("before carol")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Mautrix().InviteUser(ctx, roomID, &mautrix.ReqInviteUser{UserID: carol.UserID()}); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Mautrix().JoinRoomByID(ctx, roomID); err != nil {
		t.Fatal(err)
	}
	eventID, err := alice.Send(ctx, roomID, event.EventMessage, text("with carol"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{bob, carol} {
		m, err := c.WaitMessage(ctx, roomID, func(m Message) bool { return m.Event.ID == eventID })
		if err != nil {
			t.Fatal(err)
		}
		if m.DecryptError != nil || m.Trust < id.TrustStateCrossSignedTOFU {
			t.Errorf("%s: decrypt error %v, trust %s", c.UserID(), m.DecryptError, m.Trust)
		}
	}
}

// TestLimitedTimelineFilled: when more events arrive between two syncs than the
// timeline limit, the client fetches the missing ones, so it receives every message in
// order.
func TestLimitedTimelineFilled(t *testing.T) {
	hs := syn.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := newClient(ctx, t, hs, "alice")
	name := dendrite.Unique("bob")
	cli, err := hs.RegisterUser(ctx, name, "pw-"+name)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := New(ctx, cli, "pw-"+name, Options{TimelineLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	roomID := encryptedRoom(ctx, t, alice, bob)
	if _, err := alice.Send(ctx, roomID, event.EventMessage, text("first")); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.WaitMessage(ctx, roomID, body("first")); err != nil {
		t.Fatal(err)
	}

	const n = 12
	bob.syncer.hold.Lock()
	var want []id.EventID
	for i := range n {
		eventID, err := alice.Send(ctx, roomID, event.EventMessage, text(fmt.Sprintf("burst %d", i)))
		if err != nil {
			bob.syncer.hold.Unlock()
			t.Fatal(err)
		}
		want = append(want, eventID)
	}
	bob.syncer.hold.Unlock()
	if _, err := bob.WaitMessage(ctx, roomID, body(fmt.Sprintf("burst %d", n-1))); err != nil {
		t.Fatal(err)
	}
	var got []id.EventID
	for _, m := range bob.Received(roomID) {
		if slices.Contains(want, m.Event.ID) {
			if m.DecryptError != nil {
				t.Errorf("%s: %v", m.Event.ID, m.DecryptError)
			}
			got = append(got, m.Event.ID)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("bob received %d of the %d burst events (%v), want all in order (%v)", len(got), n, got, want)
	}
	bob.mu.Lock()
	filled := bob.filled
	bob.mu.Unlock()
	if filled == 0 {
		t.Error("no gap was filled; the test did not make a limited timeline")
	}
}
