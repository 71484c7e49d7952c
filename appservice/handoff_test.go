package appservice

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// gatedModule is a recModule whose handler waits until the gate opens.
type gatedModule struct {
	*recModule
	gate chan struct{}
}

func (m *gatedModule) HandleEvent(ctx context.Context, evt *event.Event) error {
	select {
	case <-m.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return m.recModule.HandleEvent(ctx, evt)
}

// TestHandOffUnderConcurrentCommits: transactions committed concurrently (group commits)
// while the handlers are held, so that more events wait than the dispatcher keeps in memory
// (offers are turned away and the loader reads the journal, while commits go on): every
// event is handled once, and each room's events in journal (seq) order.
func TestHandOffUnderConcurrentCommits(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) { testHandOff(t, d) })
	}
}

func testHandOff(t *testing.T, d store.Dialect) {
	mod := &gatedModule{recModule: &recModule{id: "rec", fail: map[id.EventID]int{}}, gate: make(chan struct{})}
	st := storetest.Open(t, d)
	env := startCore(t, st, mod)
	env.mod = mod.recModule
	env.core.disp.mu.Lock()
	env.core.disp.maxLoaded = 150 // far fewer than wait: offers are turned away, the loader reads
	env.core.disp.mu.Unlock()
	rooms := []string{"!a:test", "!b:test", "!c:test", "!d:test"}
	for _, r := range rooms {
		putPortal(t, env, r)
	}
	const senders, txns, perTxn = 8, 8, 20 // 1280 events
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range txns {
				var evts []string
				for i := range perTxn {
					room := rooms[(s+n+i)%len(rooms)]
					evts = append(evts, msgEvent(fmt.Sprintf("$s%dn%di%d", s, n, i), room, "x"))
				}
				env.putTxn(t, fmt.Sprintf("s%d-%d", s, n), evts...)
				if n == txns*3/4 && s == 0 {
					close(mod.gate) // release the handlers while commits go on
				}
			}
		}()
	}
	wg.Wait()
	const total = senders * txns * perTxn
	eventually(t, "every event handled", func() bool { return len(env.mod.got()) >= total })

	seq := map[string]int64{}
	recs, err := st.InboxRecords(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		seq[r.EventID] = r.Seq
	}
	got := env.mod.got()
	if len(got) != total || len(seq) != total {
		t.Fatalf("handled %d events, journaled %d, want %d each", len(got), len(seq), total)
	}
	// Handled in order, the events are recorded by the watermark alone.
	var maxSeq int64
	for _, s := range seq {
		maxSeq = max(maxSeq, s)
	}
	eventually(t, "the handled watermark past every event", func() bool {
		w, err := st.InboxDoneBelow(context.Background())
		return err == nil && w > maxSeq
	})
	if n, err := st.InboxDepth(context.Background()); err != nil || n != 0 {
		t.Errorf("InboxDepth = %d, %v; want 0", n, err)
	}
	seen := map[id.EventID]bool{}
	last := map[id.RoomID]int64{}
	for _, e := range got {
		if seen[e.ID] {
			t.Fatalf("%s handled twice", e.ID)
		}
		seen[e.ID] = true
		s := seq[e.ID.String()]
		if s <= last[e.RoomID] {
			t.Fatalf("room %s: %s (seq %d) handled after seq %d", e.RoomID, e.ID, s, last[e.RoomID])
		}
		last[e.RoomID] = s
	}
}
