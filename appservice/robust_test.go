package appservice

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/id"
)

// TestRouteErrorIsRetried: when the store cannot say whether a room is a portal, the event
// is retried, not dropped as "not for any module".
func TestRouteErrorIsRetried(t *testing.T) {
	st := sqliteStore(t)
	env := startCoreWith(t, st, func(o *Options) {
		o.Retry = Retry{Attempts: 100, Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond}
	})
	putPortal(t, env, "!p:test")
	ctx := context.Background()
	if _, err := st.DB().ExecContext(ctx, `ALTER TABLE portal RENAME TO portal_away`); err != nil {
		t.Fatal(err)
	}
	env.putTxn(t, "1", msgEvent("$routed", "!p:test", "x"))
	time.Sleep(100 * time.Millisecond)
	if len(env.mod.got()) != 0 {
		t.Fatal("handled without a portal table")
	}
	if _, err := st.DB().ExecContext(ctx, `ALTER TABLE portal_away RENAME TO portal`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the event once the store answers again", func() bool { return len(env.mod.got()) == 1 })
}

// TestBackoffDoesNotBlockOtherRooms: a room waiting to retry gives its worker back, so one
// failing room cannot stall the others even with a single worker.
func TestBackoffDoesNotBlockOtherRooms(t *testing.T) {
	mod := &recModule{id: "rec", fail: map[id.EventID]int{"$stuck": 1000}}
	env := startCoreWith(t, sqliteStore(t), func(o *Options) {
		o.Workers = 1
		o.Retry = Retry{Attempts: 10, Initial: time.Minute, Max: time.Minute}
	}, mod)
	putPortal(t, env, "!failing:test")
	putPortal(t, env, "!healthy:test")
	env.putTxn(t, "1", msgEvent("$stuck", "!failing:test", "x"))
	time.Sleep(50 * time.Millisecond) // let $stuck fail once and start its minute of backoff
	env.putTxn(t, "2", msgEvent("$fine", "!healthy:test", "y"))
	eventually(t, "the healthy room's event", func() bool { return len(mod.got()) == 1 })

	// Stop does not wait out the backoff, and the failing event stays journaled.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done <- env.core.Stop(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop waited for a handler's backoff")
	}
	if n, _ := env.st.InboxDepth(context.Background()); n != 1 {
		t.Fatalf("pending after stop = %d, want 1 (the failing event)", n)
	}
}
