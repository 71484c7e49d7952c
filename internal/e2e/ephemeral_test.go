package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// ephemeralModule is the test module with the EphemeralHandler capability: it records the
// typing notifications, receipts and presence the core routes to it.
type ephemeralModule struct {
	*testmodule.Module
	mu  sync.Mutex
	got []*event.Event
}

func (m *ephemeralModule) HandleEphemeral(_ context.Context, evt *event.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, evt)
	return nil
}

// find returns the first event routed to the module that match accepts.
func (m *ephemeralModule) find(match func(*event.Event) bool) *event.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, evt := range m.got {
		if match(evt) {
			return evt
		}
	}
	return nil
}

func (m *ephemeralModule) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.got)
}

// TestEphemeralRoutingDendrite: Dendrite v0.13.8 pushes no ephemeral events to
// appservices, although the registration asks for them; the test waits 3 s and says so.
// TestEphemeralRoutingSynapse is the same test on Synapse, where they arrive. Synapse drops
// ephemeral events while it considers the appservice down (after a failed transaction,
// until its recoverer succeeds): typing, receipts and presence of that time never arrive.
func TestEphemeralRoutingDendrite(t *testing.T) {
	testEphemeralRouting(t, onHS(t, homeserver.Dendrite))
}

// testEphemeralRouting: a real user types, sends a read receipt and sets her presence in a
// portal of the test module; the homeserver pushes them in transactions (MSC2409,
// receive_ephemeral) and the core routes each to the module that handles ephemeral events,
// as an ephemeral event with its room (typing, receipt) or sender (presence).
func testEphemeralRouting(t *testing.T, h homeserver.HS) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := openStore(t, store.SQLite)
	em := &ephemeralModule{Module: testmodule.New(testmodule.Config{}, st)}
	startCore(t, h, st, coreOptions{modules: []appservice.Module{em}})
	alice := newUser(t, h, "ephemeral")
	ghost := id.NewUserID(testmodule.GhostPrefix+"eph", domain)
	resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Invite: []id.UserID{ghost}})
	if err != nil {
		t.Fatal(err)
	}
	room := resp.RoomID
	waitFor(t, 30*time.Second, "the ghost to join", func() (bool, error) { return isJoined(ctx, alice, room, ghost) })

	if _, err := alice.UserTyping(ctx, room, true, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	sent, err := alice.SendText(ctx, room, "read me")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.MarkRead(ctx, room, sent.EventID); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetPresence(ctx, mautrix.ReqPresence{Presence: event.PresenceOnline, StatusMsg: "e2e"}); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name  string
		match func(*event.Event) bool
	}{
		{"typing", func(e *event.Event) bool {
			if e.Type != event.EphemeralEventTyping || e.RoomID != room {
				return false
			}
			for _, u := range e.Content.AsTyping().UserIDs {
				if u == alice.UserID {
					return true
				}
			}
			return false
		}},
		{"receipt", func(e *event.Event) bool {
			if e.Type != event.EphemeralEventReceipt || e.RoomID != room {
				return false
			}
			_, ok := (*e.Content.AsReceipt())[sent.EventID][event.ReceiptTypeRead][alice.UserID]
			return ok
		}},
		{"presence", func(e *event.Event) bool {
			return e.Type == event.EphemeralEventPresence && e.Sender == alice.UserID &&
				e.Content.AsPresence().Presence == event.PresenceOnline
		}},
	}
	if h.Kind() == homeserver.Dendrite {
		time.Sleep(3 * time.Second)
		t.Logf("Dendrite differs from Synapse: %d ephemeral events reached the module in 3 s (Dendrite v0.13.8 does not push typing, receipts or presence to appservices)", em.count())
		return
	}
	for _, c := range checks {
		var got *event.Event
		waitFor(t, 30*time.Second, "the "+c.name+" event at the module", func() (bool, error) {
			got = em.find(c.match)
			return got != nil, nil
		})
		if got.Type.Class != event.EphemeralEventType || got.Mautrix.EventSource != event.SourceEphemeral {
			t.Errorf("%s reached the module as %v from %v, want an ephemeral event", c.name, got.Type.Class, got.Mautrix.EventSource)
		}
		t.Logf("%s: %s reached the module (%s)", h.Kind(), c.name, got.Type.Type)
	}
}
