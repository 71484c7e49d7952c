package casee2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
)

// TestCrashPoints kills Switchboard with SIGKILL at the two exact points the issue names,
// holding the request at the fake UCRM until the process is dead: after the bot stored
// received messages and asked to commit them, and after it sent a dispatcher's answer but
// before it learned the answer was taken. Each point runs with the held request dropped
// and with it applied. No case is lost or shown twice; no answer goes out twice or under
// a second messageId.
func TestCrashPoints(t *testing.T) {
	dbURI := storetest.NewDatabaseURI(t, store.SQLite)
	alice := newMatrixUser(t, "alice")
	b := newCentre(t, alice.UserID)
	sb := startProcess(t, dbURI, b)
	defer sb.Stop()
	adminRoom(t, alice, b)
	ctx := context.Background()
	var got received

	killWhileHeld := func(t *testing.T, h *ucrm.Hold, apply bool) {
		t.Helper()
		select {
		case <-h.Arrived():
		case <-time.After(30 * time.Second):
			t.Fatal("the request was not made")
		}
		sb.Kill9()
		h.Release(apply)
		sb.Start()
	}

	for _, apply := range []bool{false, true} {
		t.Run(fmt.Sprintf("between receive and commit, commit applied %t", apply), func(t *testing.T) {
			h := srv.Hold("/messaging/commit")
			caseID := uuid.NewString()
			if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(caseID), "ALL"); err != nil {
				t.Fatal(err)
			}
			killWhileHeld(t, h, apply)
			room := caseRoom(t, alice, b, caseID)
			waitNotice(t, alice, room, "Neuer Fall")
			matrixtest.WaitFor(t, 30*time.Second, "the queue to be committed", func() (bool, error) { return srv.Queue(b.OID) == 0, nil })
			time.Sleep(time.Second) // a second showing would come from the redelivery, now done
			if n := countBodies(t, alice, room, "Neuer Fall"); n != 1 {
				t.Errorf("the case is shown %d times", n)
			}
		})
		t.Run(fmt.Sprintf("between answer and send, send applied %t", apply), func(t *testing.T) {
			caseID := uuid.NewString()
			if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(caseID), "NONE"); err != nil {
				t.Fatal(err)
			}
			room := caseRoom(t, alice, b, caseID)
			waitNotice(t, alice, room, "Neuer Fall")
			h := srv.Hold("/messaging/send")
			say(t, alice, room, "!accept")
			killWhileHeld(t, h, apply)
			got.wait(t, b.OID, "acknowledgement", func(d map[string]any) bool { return d["sharedIncidentId"] == caseID })
			waitNotice(t, alice, room, "wurde an", "gesendet")
			var ids []string
			for _, raw := range srv.Sent(b.OID) {
				m, err := ucrm.ParseMessage(raw)
				if err != nil {
					t.Fatal(err)
				}
				var d map[string]any
				_ = json.Unmarshal(m.Data, &d)
				if d["sharedIncidentId"] == caseID {
					ids = append(ids, m.MessageID)
				}
			}
			got.poll(t)
			atA := 0
			for _, m := range got.msgs {
				var d map[string]any
				_ = json.Unmarshal(m.Data, &d)
				if d["sharedIncidentId"] == caseID {
					atA++
				}
			}
			if len(ids) != 1 || atA != 1 {
				t.Errorf("the acknowledgement was taken %d times (ids %v) and reached A %d times", len(ids), ids, atA)
			}
		})
	}
	checkSchemas(t, b.OID)
}

// TestUCRMRestartBeforeProcessing: a UCRM that keeps its queues in memory (the reference
// does) numbers sequenceIds from 1 again after a restart. Case A is received, stored and
// committed, and Switchboard is killed before it processed A (its registry lookup is held,
// so A cannot be applied). The UCRM restarts fresh and case B arrives with A's sequenceId.
// Both cases must be shown: A's stored row is neither overwritten nor deleted by B's.
func TestUCRMRestartBeforeProcessing(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			dbURI := storetest.NewDatabaseURI(t, dialect)
			alice := newMatrixUser(t, "alice")
			b := newCentre(t, alice.UserID)
			if err := srv.RestartFresh(); err != nil { // b's queue numbers from 1
				t.Fatal(err)
			}
			sb := startProcess(t, dbURI, b)
			defer sb.Stop()
			adminRoom(t, alice, b)
			ctx := context.Background()

			reg := srv.Hold("/registry")
			commit := srv.Hold("/messaging/commit")
			caseA := uuid.NewString()
			if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(caseA), "NONE"); err != nil {
				t.Fatal(err)
			}
			select {
			case <-commit.Arrived():
			case <-time.After(30 * time.Second):
				t.Fatal("the commit was not made")
			}
			sb.Kill9()
			commit.Release(true) // A is gone from the UCRM; only Switchboard's store has it
			reg.Release(false)
			matrixtest.WaitFor(t, 10*time.Second, "A to be committed as sequenceId 1", func() (bool, error) { return srv.Committed(b.OID) == 1, nil })

			if err := srv.RestartFresh(); err != nil {
				t.Fatal(err)
			}
			caseB := uuid.NewString()
			if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(caseB), "NONE"); err != nil {
				t.Fatal(err)
			}
			sb.Start()
			for _, id := range []string{caseA, caseB} {
				room := caseRoom(t, alice, b, id)
				waitNotice(t, alice, room, "Neuer Fall")
			}
			matrixtest.WaitFor(t, 30*time.Second, "the queue to be committed", func() (bool, error) { return srv.Queue(b.OID) == 0, nil })
		})
	}
}
