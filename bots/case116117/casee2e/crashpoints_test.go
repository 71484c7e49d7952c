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
