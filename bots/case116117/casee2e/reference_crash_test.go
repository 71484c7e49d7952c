package casee2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-matrix/switchboard/bots/case116117/ucri"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

const refCrashCases = 12

// TestReferenceCrashKill9 is TestCrashKill9 against the reference UCRM: A hands 12 cases
// to the bot's centre through the reference while a dispatcher accepts each as its room
// appears, and Switchboard (the real binary) is killed with SIGKILL three times. Afterwards
// every case is in one room, shown once, and A received exactly one acceptance per case
// (one messageId), each signed so that the reference's own code verifies it. The reference
// does not deduplicate: a resend under the same messageId reaches A again and is reported
// as a repeat, not counted as a second answer. On SQLite, and on PostgreSQL when
// SWITCHBOARD_TEST_POSTGRES is set.
func TestReferenceCrashKill9(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			dbURI := storetest.NewDatabaseURI(t, dialect)
			alice := newMatrixUser(t, "alice")
			n := startReference(t, alice.UserID)
			sb := startProcess(t, dbURI, n.link)
			defer sb.Stop()
			adminRoom(t, alice, n.link)

			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			ids := make([]string, refCrashCases)
			for i := range ids {
				ids[i] = uuid.NewString()
			}
			begin := time.Now()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				for _, id := range ids {
					if _, err := n.a.Send(ctx, oidB, app, "incident", incident(id), ucri.AckNone); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(60 * time.Millisecond)
				}
			}()
			go func() { defer wg.Done(); acceptAll(ctx, t, alice, n.link, ids) }()
			for k, after := range crashKillsAfter[:3] {
				time.Sleep(after)
				sb.Kill9()
				t.Logf("kill -9 #%d at %s", k+1, time.Since(begin).Round(time.Millisecond))
				sb.Start()
			}
			wg.Wait()
			if ctx.Err() != nil || t.Failed() {
				t.Fatal("the load did not finish")
			}
			t.Logf("all cases accepted in Matrix at %s", time.Since(begin).Round(time.Millisecond))
			n.verifyCrash(t, ids)
			for _, id := range ids {
				room := caseRoom(t, alice, n.link, id)
				if c := countBodies(t, alice, room, "Neuer Fall"); c != 1 {
					t.Errorf("case %s is shown %d times", id, c)
				}
			}
			t.Logf("verified at %s", time.Since(begin).Round(time.Millisecond))
		})
	}
}

// verifyCrash waits until A received an acceptance of every case and checks that each
// case has exactly one (one messageId), signed and schema-valid.
func (n *refNet) verifyCrash(t *testing.T, ids []string) {
	t.Helper()
	perCase := map[string]map[string]ucri.ReceivedMessage{} // case → messageId → message
	repeats := 0
	matrixtest.WaitFor(t, 90*time.Second, "an acceptance of every case at A", func() (bool, error) {
		if _, err := n.a.Poll(context.Background()); err != nil {
			return false, err
		}
		clear(perCase)
		repeats = 0
		for _, m := range n.a.Received() {
			if m.Payload.SchemaID != ucri.SchemaAcknowledgement {
				continue
			}
			var d map[string]any
			if err := json.Unmarshal([]byte(m.Payload.Data), &d); err != nil {
				return false, err
			}
			id := fmt.Sprint(d["sharedIncidentId"])
			if perCase[id] == nil {
				perCase[id] = map[string]ucri.ReceivedMessage{}
			}
			if _, seen := perCase[id][m.MessageID]; seen {
				repeats++
			}
			perCase[id][m.MessageID] = m
		}
		return len(perCase) == len(ids), nil
	})
	lost, doubled := 0, 0
	for _, id := range ids {
		switch c := len(perCase[id]); {
		case c == 0:
			lost++
		case c > 1:
			doubled++
			t.Errorf("case %s: %d acknowledgements with different messageIds", id, c)
		}
		for _, m := range perCase[id] {
			n.checkSigned(t, m)
		}
	}
	t.Logf("%d cases: %d acknowledgements lost, %d doubled, %d repeated under the same messageId", len(ids), lost, doubled, repeats)
	if lost > 0 {
		t.Errorf("%d acknowledgements lost", lost)
	}
}
