package appservice

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// threadModule resolves the thread root of every reply it is given to its remote message,
// as the email bridge does; a miss is a retryable handler error.
type threadModule struct {
	*recModule
	mu    sync.Mutex
	roots map[id.EventID]string // guarded by mu; reply -> remote ID of its root
}

func (m *threadModule) HandleEvent(ctx context.Context, evt *event.Event) error {
	msg := evt.Content.AsMessage()
	if msg == nil || msg.RelatesTo == nil || msg.RelatesTo.EventID == "" {
		return nil
	}
	remoteID, err := m.host.Store().MessageByEvent(ctx, msg.RelatesTo.EventID)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roots[evt.ID] = remoteID
	return nil
}

func (m *threadModule) root(reply id.EventID) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.roots[reply]
}

const (
	echoRoom  = "!p:test"
	echoGhost = "@_rec_ghost:test"
)

// crashedSend leaves the state of a process killed between a send and MarkOutboxSent: the
// row is recorded with one attempt (in doubt) and the homeserver has the event. The row is
// written before the core starts, as a previous process left it. It returns the started
// core, the event ID and the content as sent.
func crashedSend(t *testing.T, st *store.Store, remoteID string) (*testEnv, *threadModule, id.EventID, []byte) {
	t.Helper()
	txnID := TxnIDFor("rec", remoteID)
	content, err := contentWithTxnID(&event.MessageEventContent{MsgType: event.MsgText, Body: "Subject: root"}, txnID)
	if err != nil {
		t.Fatal(err)
	}
	row, _, err := st.EnqueueOutbox(t.Context(), store.OutboxMessage{
		Module: "rec", RemoteID: remoteID, RoomID: echoRoom, Sender: echoGhost,
		EventType: "m.room.message", Content: content, TxnID: txnID,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.RecordOutboxAttempt(t.Context(), row.Seq, ""); err != nil {
		t.Fatal(err)
	}
	env, mod := startAfterCrash(t, st)
	f := env.hs
	f.mu.Lock()
	defer f.mu.Unlock()
	eid := fmt.Sprintf("$ev%d", len(f.sent)+1)
	f.txns[echoGhost+"|"+txnID] = eid
	f.sent = append(f.sent, fakeSent{Room: echoRoom, Type: "m.room.message", Sender: echoGhost, TxnID: txnID, Content: content})
	return env, mod, id.EventID(eid), content
}

func echoEvent(eventID id.EventID, sender string, content []byte) string {
	return fmt.Sprintf(`{"event_id":%q,"room_id":%q,"type":"m.room.message","sender":%q,"origin_server_ts":1,"content":%s}`,
		eventID, echoRoom, sender, content)
}

func threadReply(eventID, root id.EventID) string {
	return fmt.Sprintf(`{"event_id":%q,"room_id":%q,"type":"m.room.message","sender":"@alice:test","origin_server_ts":2,`+
		`"content":{"msgtype":"m.text","body":"re","m.relates_to":{"rel_type":"m.thread","event_id":%q}}}`, eventID, echoRoom, root)
}

// startAfterCrash starts a core whose own look-up of rows in doubt (after InDoubtSettle)
// does not come within the test, with a threadModule.
func startAfterCrash(t *testing.T, st *store.Store) (*testEnv, *threadModule) {
	t.Helper()
	mod := &threadModule{recModule: &recModule{id: "rec", fail: map[id.EventID]int{}}, roots: map[id.EventID]string{}}
	env := startCoreWith(t, st, func(o *Options) { o.InDoubtSettle = time.Hour }, mod)
	putPortal(t, env, echoRoom)
	return env, mod
}

// checkSettled checks that the row of remoteID was recorded sent as eventID without a
// second send, and that the reply was handled (not given up on with a notice).
func checkSettled(t *testing.T, env *testEnv, mod *threadModule, remoteID string, eventID, reply id.EventID) {
	t.Helper()
	eventually(t, "the reply resolved to its root", func() bool { return mod.root(reply) == remoteID })
	row, err := env.st.GetOutbox(t.Context(), "rec", remoteID)
	if err != nil || row.State != store.OutboxSent || row.EventID != eventID.String() {
		t.Fatalf("outbox row = %+v, %v; want sent as %s", row, err, eventID)
	}
	if room, eid, err := env.st.MessageByRemote(t.Context(), "rec", remoteID); err != nil || room != echoRoom || eid != eventID.String() {
		t.Fatalf("message map = %s %s %v", room, eid, err)
	}
	time.Sleep(50 * time.Millisecond)
	for _, s := range env.hs.sentMessages()[1:] {
		t.Errorf("unexpected send after the crash: %s %s", s.Type, s.Content)
	}
	recs, err := env.st.InboxRecords(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.State == "failed" {
			t.Errorf("journal event %s failed: %s", r.EventID, r.LastError)
		}
	}
}

// TestEchoSettlesSendInDoubt: after a crash between a send and its record, the echo of the
// message (pushed back by the homeserver in a transaction) records it as sent at once, long
// before the outbox would look for it itself, so a reply in its thread that follows in the
// journal resolves the root (the soak's "this thread is not a mail conversation").
func TestEchoSettlesSendInDoubt(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, st *store.Store) {
		env, mod, root, content := crashedSend(t, st, "root")
		env.putTxn(t, "t1", echoEvent(root, echoGhost, content), threadReply("$reply", root))
		checkSettled(t, env, mod, "root", root, "$reply")
		env.hs.mu.Lock()
		gets := env.hs.eventGets
		env.hs.mu.Unlock()
		if gets != 0 {
			t.Errorf("%d event fetches, want 0 (the echo settles the row before the reply is handled)", gets)
		}
		// The echo delivered again (a replayed transaction) changes nothing.
		env.putTxn(t, "t2", echoEvent(root, echoGhost, content))
		time.Sleep(50 * time.Millisecond)
		if row, err := env.st.GetOutbox(t.Context(), "rec", "root"); err != nil || row.State != store.OutboxSent || row.EventID != root.String() {
			t.Fatalf("after a second echo: %+v, %v", row, err)
		}
	})
}

// TestLookupMissSettlesSendInDoubt: when the reply is handled before any echo of its root
// (an echo the homeserver never pushed, or one handled by an older version), the module's
// lookup miss asks the homeserver for the event and settles the row from its content.
func TestLookupMissSettlesSendInDoubt(t *testing.T) {
	storetest.Dialects(t, func(t *testing.T, st *store.Store) {
		env, mod, root, _ := crashedSend(t, st, "root")
		env.putTxn(t, "t1", threadReply("$reply", root))
		checkSettled(t, env, mod, "root", root, "$reply")
	})
}

// TestEchoSettlesOnlyItsOwnRow: an event carrying a row's transaction ID settles it only
// when it comes from the row's sender in the row's room; otherwise the row stays in doubt.
func TestEchoSettlesOnlyItsOwnRow(t *testing.T) {
	tests := []struct {
		name, sender, room string
	}{
		{"a Matrix user copying the marker", "@alice:test", echoRoom},
		{"another ghost", "@_rec_other:test", echoRoom},
		{"another room", echoGhost, "!elsewhere:test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, _, content := crashedSend(t, sqliteStore(t), "root")
			evt := strings.Replace(echoEvent("$forged", tt.sender, content), `"room_id":"`+echoRoom+`"`, `"room_id":"`+tt.room+`"`, 1)
			env.putTxn(t, "t1", evt)
			eventually(t, "the event handled", func() bool {
				n, err := env.st.InboxDepth(t.Context())
				return err == nil && n == 0
			})
			row, err := env.st.GetOutbox(t.Context(), "rec", "root")
			if err != nil || row.State != store.OutboxPending || row.EventID != "" {
				t.Fatalf("row = %+v, %v; want still pending", row, err)
			}
		})
	}
}

// TestEchoWakesWaitingSend: a Send waiting for a row in doubt returns the event ID as soon as
// the echo settles the row.
func TestEchoWakesWaitingSend(t *testing.T) {
	env, _, root, content := crashedSend(t, sqliteStore(t), "root")
	type result struct {
		eid id.EventID
		err error
	}
	done := make(chan result, 1)
	go func() {
		eid, err := env.core.sendAndWait(t.Context(), "rec", Message{RoomID: echoRoom, Sender: echoGhost, RemoteID: "root",
			Content: &event.MessageEventContent{MsgType: event.MsgText, Body: "Subject: root"}})
		done <- result{eid, err}
	}()
	time.Sleep(50 * time.Millisecond)
	env.putTxn(t, "t1", echoEvent(root, echoGhost, content))
	select {
	case r := <-done:
		if r.err != nil || r.eid != root {
			t.Fatalf("Send = %s, %v; want %s", r.eid, r.err, root)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send still waiting after the echo")
	}
}
