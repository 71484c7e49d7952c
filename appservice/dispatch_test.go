package appservice

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

func putPortal(t *testing.T, env *testEnv, room string) {
	t.Helper()
	if err := env.st.PutPortal(context.Background(), env.mod.id, "k"+room, room); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) putTxn(t *testing.T, txnID string, events ...string) {
	t.Helper()
	if status, body := e.do(t, "PUT", "/_matrix/app/v1/transactions/"+txnID, testHSToken, txnBody(events...)); status != 200 {
		t.Fatalf("transaction %s: %d %s", txnID, status, body)
	}
}

func TestDispatchOrderAndDedup(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	rooms := []string{"!a:test", "!b:test", "!c:test"}
	for _, r := range rooms {
		putPortal(t, env, r)
	}
	const perRoom = 30
	for i := 0; i < perRoom; i++ {
		var evts []string
		for _, r := range rooms {
			evts = append(evts, msgEvent(fmt.Sprintf("$%s%d", r[1:2], i), r, fmt.Sprint(i)))
		}
		env.putTxn(t, fmt.Sprint("t", i), evts...)
		env.putTxn(t, fmt.Sprint("t", i), evts...)     // replayed transaction
		env.putTxn(t, fmt.Sprint("again", i), evts[0]) // same event in another transaction
	}
	eventually(t, "all events", func() bool { return len(env.mod.got()) >= perRoom*len(rooms) })
	time.Sleep(50 * time.Millisecond)
	got := env.mod.got()
	if len(got) != perRoom*len(rooms) {
		t.Fatalf("handled %d events, want %d", len(got), perRoom*len(rooms))
	}
	next := map[id.RoomID]int{}
	for _, e := range got {
		want := fmt.Sprint(next[e.RoomID])
		if body := e.Content.AsMessage().Body; body != want {
			t.Fatalf("room %s: got body %s, want %s (out of order)", e.RoomID, body, want)
		}
		next[e.RoomID]++
	}
}

func TestDispatchIgnoresEchoesAndUnroutedRooms(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	putPortal(t, env, "!p:test")
	echo := strings.Replace(msgEvent("$echo", "!p:test", "x"), "@alice:test", "@_rec_ghost:test", 1)
	env.putTxn(t, "1", echo, msgEvent("$elsewhere", "!other:test", "x"), msgEvent("$mine", "!p:test", "x"))
	eventually(t, "routed event", func() bool { return len(env.mod.got()) == 1 })
	if got := env.mod.got()[0].ID; got != "$mine" {
		t.Fatalf("got %s, want $mine", got)
	}
	eventually(t, "inbox drained", func() bool { n, _ := env.st.InboxDepth(context.Background()); return n == 0 })
}

func TestDispatchRetriesThenSucceeds(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	putPortal(t, env, "!p:test")
	env.mod.mu.Lock()
	env.mod.fail["$flaky"] = 2 // attempts = 3
	env.mod.mu.Unlock()
	env.putTxn(t, "1", msgEvent("$flaky", "!p:test", "x"))
	eventually(t, "handled after retries", func() bool { return len(env.mod.got()) == 1 })
	if n := len(env.hs.sentMessages()); n != 0 {
		t.Fatalf("a failure was reported (%d messages) although the retry succeeded", n)
	}
}

// TestDispatchFailureIsReported: when the retries are exhausted the sender sees a
// message-status event and a notice, sent once each.
func TestDispatchFailureIsReported(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	putPortal(t, env, "!p:test")
	env.mod.mu.Lock()
	env.mod.fail["$doomed"] = 100
	env.mod.mu.Unlock()
	env.putTxn(t, "1", msgEvent("$doomed", "!p:test", "x"))
	eventually(t, "failure report", func() bool { return len(env.hs.sentMessages()) == 2 })
	sent := env.hs.sentMessages()
	types := map[string]bool{}
	for _, s := range sent {
		types[s.Type] = true
		if s.Room != "!p:test" || s.Sender != "@bot:test" {
			t.Fatalf("report sent to %s by %s", s.Room, s.Sender)
		}
		if !strings.Contains(string(s.Content), "$doomed") {
			t.Fatalf("report does not refer to the event: %s", s.Content)
		}
	}
	if !types[event.BeeperMessageStatus.Type] || !types[event.EventMessage.Type] {
		t.Fatalf("report types %v, want status and notice", types)
	}
	// The report is queued before the event is marked failed (so that a crash in between
	// cannot leave the sender uninformed): the mark may come a moment after the report.
	eventually(t, "the failed event leaves the pending journal", func() bool {
		n, _ := env.st.InboxDepth(context.Background())
		return n == 0
	})
}

// TestRestartResumesJournal: events journaled but not handled when the core stops (here: a
// handler still busy at the shutdown deadline, and the event queued behind it in the same
// room) are handled after the next start, in order, once.
func TestRestartResumesJournal(t *testing.T) {
	st := sqliteStore(t)
	blocked := &recModule{id: "rec", fail: map[id.EventID]int{}, block: "$e1"}
	env := startCore(t, st, blocked)
	putPortal(t, env, "!p:test")
	env.putTxn(t, "1", msgEvent("$e1", "!p:test", "1"), msgEvent("$e2", "!p:test", "2"))
	time.Sleep(50 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_ = env.core.Stop(ctx)
	cancel()
	if n, _ := st.InboxDepth(context.Background()); n != 2 {
		t.Fatalf("inbox depth after stop = %d, want 2", n)
	}
	fresh := &recModule{id: "rec", fail: map[id.EventID]int{}}
	startCore(t, st, fresh)
	eventually(t, "resumed events", func() bool { return len(fresh.got()) == 2 })
	if got := fresh.got(); got[0].ID != "$e1" || got[1].ID != "$e2" {
		t.Fatalf("resumed out of order: %s, %s", got[0].ID, got[1].ID)
	}
	if len(blocked.got()) != 0 {
		t.Fatalf("the stopped core handled %d events", len(blocked.got()))
	}
}

// TestReusedTxnIDWithMoreEvents: a homeserver that retries a transaction ID with a larger
// batch (Dendrite does) loses nothing: the new events are journaled and handled, the old
// ones are not handled twice.
func TestReusedTxnIDWithMoreEvents(t *testing.T) {
	env := startCore(t, sqliteStore(t))
	putPortal(t, env, "!p:test")
	env.putTxn(t, "T", msgEvent("$1", "!p:test", "1"))
	env.putTxn(t, "T", msgEvent("$1", "!p:test", "1"), msgEvent("$2", "!p:test", "2"))
	eventually(t, "both events", func() bool { return len(env.mod.got()) == 2 })
	time.Sleep(30 * time.Millisecond)
	if got := env.mod.got(); len(got) != 2 || got[0].ID != "$1" || got[1].ID != "$2" {
		t.Fatalf("handled %v", got)
	}
}
