package appservice

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// TestDeletePortal: after a module deletes its portal, the room's events are routed to no
// module, even though the route to the module was cached; deleting again is no error,
// and the room can become a portal again.
func TestDeletePortal(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	ctx := context.Background()
	ms := (&host{core: env.core, module: "rec"}).Store()
	room := id.RoomID("!p:test")
	if err := ms.PutPortal(ctx, "kp", room); err != nil {
		t.Fatal(err)
	}
	evt := &event.Event{ID: "$m", RoomID: room, Sender: "@alice:test", Type: event.EventMessage}
	routeTo := func(want string) {
		t.Helper()
		mods, err := env.core.route(ctx, evt, kindTimeline)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, m := range mods {
			got += m.ID()
		}
		if got != want {
			t.Errorf("routed to %q, want %q", got, want)
		}
	}
	routeTo("rec")
	routeTo("rec") // from the cache
	if _, ok := env.core.router.portals.Load(room); !ok {
		t.Fatal("the route was not cached")
	}

	if err := ms.DeletePortal(ctx, "kp"); err != nil {
		t.Fatal(err)
	}
	routeTo("")
	if _, err := ms.PortalByKey(ctx, "kp"); err == nil {
		t.Error("PortalByKey finds the deleted portal")
	}
	if err := ms.DeletePortal(ctx, "kp"); err != nil {
		t.Errorf("deleting again: %v", err)
	}
	if err := ms.PutPortal(ctx, "kp2", room); err != nil {
		t.Fatalf("the room cannot become a portal again: %v", err)
	}
	routeTo("rec")
}
