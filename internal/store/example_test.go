package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

func ExampleStore_CommitTransaction() {
	dir, _ := os.MkdirTemp("", "switchboard")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "switchboard.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	evs := []store.InboxEvent{{EventID: "$a", RoomID: "!r:example.org", Kind: "timeline", Payload: []byte(`{}`)}}
	dup, n, _ := s.CommitTransaction(ctx, "as", "txn1", evs)
	fmt.Println("first:", dup, n)
	dup, n, _ = s.CommitTransaction(ctx, "as", "txn1", evs) // the homeserver retries
	fmt.Println("retry:", dup, n)

	pending, _ := s.PendingEvents(ctx, 0, 10)
	for _, e := range pending {
		fmt.Println("pending:", e.EventID)
		_ = s.MarkEventDone(ctx, e.Seq)
	}
	depth, _ := s.InboxDepth(ctx)
	fmt.Println("depth:", depth)
	// Output:
	// first: false 1
	// retry: true 0
	// pending: $a
	// depth: 0
}

func ExampleStore_EnqueueOutbox() {
	dir, _ := os.MkdirTemp("", "switchboard")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(dir, "switchboard.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	m := store.OutboxMessage{Module: "xmpp", RemoteID: "msg-1", RoomID: "!r:example.org",
		Sender: "@xmpp_alice:example.org", EventType: "m.room.message",
		Content: []byte(`{"msgtype":"m.text","body":"hi"}`), TxnID: "xmpp-msg-1"}
	row, existing, _ := s.EnqueueOutbox(ctx, m)
	fmt.Println(row.State, existing)
	_ = s.MarkOutboxSent(ctx, row.Seq, "$sent")
	row, existing, _ = s.EnqueueOutbox(ctx, m) // the module resends after a restart
	fmt.Println(row.State, row.EventID, existing)
	remote, _ := s.MessageByEvent(ctx, "xmpp", "$sent")
	fmt.Println(remote)
	// Output:
	// pending false
	// sent $sent true
	// msg-1
}
