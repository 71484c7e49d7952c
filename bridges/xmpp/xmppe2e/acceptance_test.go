package xmppe2e

import (
	"context"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// TestAcceptedStanzaNotResent (issue 10, item 17) is a crash right after the server
// confirmed a Matrix message's stanza but before the journal recorded the event as
// handled: the event is delivered again after the restart, and the bridge, which recorded
// the server's acceptance at once, does not send the stanza a second time. On SQLite and
// PostgreSQL.
func TestAcceptedStanzaNotResent(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) { testAcceptedStanzaNotResent(t, dialect) })
	}
}

func testAcceptedStanzaNotResent(t *testing.T, dialect store.Dialect) {
	st := storetest.Open(t, dialect)
	r := startBridge(t, st)
	ctx := context.Background()
	bob := newXClient(t, "bob")
	alice := newMatrixUser(t, "alice")
	room := openDM(t, alice, bob.bare())
	body := unique("accepted once ")
	sent, err := alice.SendText(ctx, room, body)
	if err != nil {
		t.Fatal(err)
	}
	bob.waitMessage("the message", func(m *xmsg.Message) bool { return m.Body == body })

	stopCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := r.core.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	// As if the process had died before the journal's record of the event (its row and the
	// handled watermark, store.RecordInboxProgress).
	recs, err := st.InboxRecords(ctx, sent.EventID.String())
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d journal records for %s (%v), want 1", len(recs), sent.EventID, err)
	}
	if _, err := st.DB().ExecContext(ctx, `UPDATE inbox_progress SET done_below = $1`, recs[0].Seq); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, `DELETE FROM inbox_state WHERE seq = $1`, recs[0].Seq); err != nil {
		t.Fatal(err)
	}

	startBridge(t, st)
	after := unique("after the restart ")
	if _, err := alice.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: after}); err != nil {
		t.Fatal(err)
	}
	bob.waitMessage("the next message", func(m *xmsg.Message) bool { return m.Body == after })
	if got := bob.messages(func(m *xmsg.Message) bool { return m.Body == body }); len(got) != 1 {
		t.Errorf("bob received the message %d times, want once", len(got))
	}
}
