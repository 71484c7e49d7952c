package benchflight

import (
	"context"
	"errors"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// MatrixSender runs the benchmark (RunTimingSends) with cli sending the messages to room as
// m.text messages, each by one PUT /send with its own transaction ID; send-p50-ms and
// send-p99-ms are the PUT /send round trips. startReceiver starts the receiving side, which
// passes every body it sees to sink.
func MatrixSender(b *testing.B, window int, cli *mautrix.Client, room id.RoomID, startReceiver func(sink func(string))) {
	txn := unique("bench")
	RunTimingSends(b, window, startReceiver, func(ctx context.Context, f *Flight, i int) error {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: f.Body(i)}
		_, err := cli.SendMessageEvent(ctx, room, event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: txn + "-" + f.ID(i)})
		return err
	})
}

// HomeserverSend runs the Matrix baseline of a bridge's benchmarks: from creates a private
// room and invites to, to joins, then from sends the messages (MatrixSender) and to
// receives them by /sync (StartMatrixReceiver). No bridge is involved.
func HomeserverSend(b *testing.B, window int, from, to *mautrix.Client) {
	b.Helper()
	ctx := context.Background()
	resp, err := from.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", Invite: []id.UserID{to.UserID}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := to.JoinRoomByID(ctx, resp.RoomID); err != nil {
		b.Fatal(err)
	}
	MatrixSender(b, window, from, resp.RoomID, func(sink func(string)) {
		StartMatrixReceiver(b, to, resp.RoomID, from.UserID, sink)
	})
}

// StartMatrixReceiver syncs cli until the joined room is in its /sync, then long-polls
// /sync in the background for the room's m.room.message events from sender and passes
// their bodies to sink, until the benchmark ends. cli's user must have joined the room.
func StartMatrixReceiver(b *testing.B, cli *mautrix.Client, room id.RoomID, sender id.UserID, sink func(string)) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	none := &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}}
	filter, err := cli.CreateFilter(ctx, &mautrix.Filter{
		AccountData: none, Presence: none,
		Room: &mautrix.RoomFilter{
			Rooms: []id.RoomID{room}, AccountData: none, Ephemeral: none, State: none,
			Timeline: &mautrix.FilterPart{Limit: 1000, Types: []event.Type{event.EventMessage}, Senders: []id.UserID{sender}},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	// The first sync that has the room joined: a later sync that is the first to see the
	// join gives the room as newly joined, with a limited timeline.
	since := ""
	matrixtest.WaitFor(b, 30*time.Second, "the joined room in /sync", func() (bool, error) {
		resp, err := cli.SyncRequest(ctx, 0, "", filter.FilterID, false, "")
		if err != nil {
			return false, err
		}
		since = resp.NextBatch
		return resp.Rooms.Join[room] != nil, nil
	})
	done := make(chan struct{})
	b.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			resp, err := cli.SyncRequest(ctx, 30000, since, filter.FilterID, false, "")
			if err != nil {
				if ctx.Err() == nil {
					b.Logf("sync: %v", err)
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
			since = resp.NextBatch
			if r := resp.Rooms.Join[room]; r != nil {
				if r.Timeline.Limited {
					// Dendrite sometimes marks a sync limited right after the join: what the
					// gap holds comes from /messages (the sink takes each body once).
					backfill(ctx, b, cli, room, sender, r.Timeline.PrevBatch, sink)
				}
				for _, e := range r.Timeline.Events {
					if e.Type == event.EventMessage && e.Sender == sender {
						sink(messageBody(e))
					}
				}
			}
		}
	}()
}

// backfill passes the sender's messages before from (up to 1000 events back) to sink.
func backfill(ctx context.Context, b *testing.B, cli *mautrix.Client, room id.RoomID, sender id.UserID, from string, sink func(string)) {
	for page := 0; page < 10 && from != ""; page++ {
		resp, err := cli.Messages(ctx, room, from, "", mautrix.DirectionBackward, nil, 100)
		if err != nil {
			if ctx.Err() == nil {
				b.Errorf("messages after a limited sync: %v", err)
			}
			return
		}
		for _, e := range resp.Chunk {
			if e.Type == event.EventMessage && e.Sender == sender {
				sink(messageBody(e))
			}
		}
		if len(resp.Chunk) == 0 || resp.End == "" {
			return
		}
		from = resp.End
	}
}

// messageBody is the body of a message event as received in a sync (content unparsed).
func messageBody(e *event.Event) string {
	if err := e.Content.ParseRaw(e.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
		return ""
	}
	if m := e.Content.AsMessage(); m != nil {
		return m.Body
	}
	return ""
}
