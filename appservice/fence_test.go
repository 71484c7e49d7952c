package appservice

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// While the lead is not valid, no event reaches a module; when it is valid again, the
// event is handled, once.
func TestFencedDispatch(t *testing.T) {
	st := sqliteStore(t)
	// Journaled while another process led.
	if _, _, err := st.CommitTransaction(t.Context(), "scope", "1", []store.InboxEvent{
		{EventID: "$e1", RoomID: "!p:test", Kind: kindTimeline, Payload: []byte(msgEvent("$e1", "!p:test", "x"))},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutPortal(t.Context(), "rec", "k!p:test", "!p:test"); err != nil {
		t.Fatal(err)
	}
	var leading atomic.Bool
	env := startCoreWith(t, st, func(o *Options) { o.Leading = leading.Load })
	time.Sleep(300 * time.Millisecond)
	if n := len(env.mod.got()); n != 0 {
		t.Fatalf("a module got %d events while the lead was not valid", n)
	}
	leading.Store(true)
	eventually(t, "the event after the lead came back", func() bool { return len(env.mod.got()) == 1 })
}

// A transaction reaching a process whose lead is not valid is not journaled: 503 with
// Retry-After, and the homeserver sends it again.
func TestFencedTransaction(t *testing.T) {
	var leading atomic.Bool
	env := startCoreWith(t, sqliteStore(t), func(o *Options) { o.Leading = leading.Load })
	putPortal(t, env, "!p:test")
	if status, body := env.do(t, "PUT", "/_matrix/app/v1/transactions/1", testHSToken, txnBody(msgEvent("$e1", "!p:test", "x"))); status != 503 {
		t.Fatalf("not leading: %d %s, want 503", status, body)
	}
	if n, _ := env.st.InboxDepth(t.Context()); n != 0 {
		t.Fatalf("%d events journaled by a process that may not lead", n)
	}
	leading.Store(true)
	env.putTxn(t, "1", msgEvent("$e1", "!p:test", "x"))
	eventually(t, "the event", func() bool { return len(env.mod.got()) == 1 })
}
