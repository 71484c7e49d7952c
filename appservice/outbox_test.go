package appservice

import (
	"context"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func TestSendIsIdempotentByRemoteID(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	h := env.mod.host
	msg := Message{RoomID: "!p:test", Sender: "@_rec_ghost:test", RemoteID: "r1",
		Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "hello"}}
	ctx := context.Background()
	first, err := h.Send(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := h.Send(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatalf("second send returned %s, want %s", second, first)
	}
	if n := len(env.hs.sentMessages()); n != 1 {
		t.Fatalf("homeserver got %d sends, want 1", n)
	}
	if r, e, err := h.Store().MessageByRemote(ctx, "r1"); err != nil || r != "!p:test" || e != first {
		t.Fatalf("message map = %s %s %v", r, e, err)
	}
}

func TestSendRetriesWithSameTxnID(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	env.hs.mu.Lock()
	env.hs.failSend = 2
	env.hs.mu.Unlock()
	eid, err := env.mod.host.Send(context.Background(), Message{RoomID: "!p:test", Sender: "@_rec_ghost:test", RemoteID: "r2",
		Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "x"}})
	if err != nil || eid == "" {
		t.Fatalf("send: %v", err)
	}
	sent := env.hs.sentMessages()
	if len(sent) != 1 || sent[0].TxnID != TxnIDFor("rec", "r2") {
		t.Fatalf("sent %+v, want one send with the derived txn id", sent)
	}
}

func TestSendChecksNamespace(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	_, err := env.mod.host.Send(context.Background(), Message{RoomID: "!p:test", Sender: id.UserID("@alice:test"), RemoteID: "r3",
		Content: &event.MessageEventContent{Body: "x"}})
	if err != ErrNotInNamespace {
		t.Fatalf("err = %v, want ErrNotInNamespace", err)
	}
	if _, err := env.mod.host.Ghost("alice"); err != ErrNotInNamespace {
		t.Fatalf("Ghost(alice) err = %v", err)
	}
}

func TestTxnIDForIsStableAndDistinct(t *testing.T) {
	a, b := TxnIDFor("xmpp", "id1"), TxnIDFor("xmpp", "id1")
	if a != b {
		t.Fatal("not stable")
	}
	if TxnIDFor("xmpp", "id2") == a || TxnIDFor("email", "id1") == a || TxnIDFor("xmp", "pid1") == a {
		t.Fatal("collision between different modules or ids")
	}
}
