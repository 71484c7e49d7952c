package casee2e

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"maunium.net/go/mautrix"

	"github.com/switchboard-matrix/switchboard/bots/case116117"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/ucrm"
)

const crashCases = 40

// crashKillsAfter are the times from one start (or the load's) to the next kill.
var crashKillsAfter = []time.Duration{1200 * time.Millisecond, 3 * time.Second, 2 * time.Second, 4 * time.Second}

// TestCrashKill9 hands 40 cases from A to the bot's centre while a dispatcher accepts each
// as its room appears, and kills Switchboard (the real binary) with SIGKILL four times:
// between receiving and committing, and between a Matrix answer and its send. Afterwards
// every case is in one room, shown once, and A got exactly one acceptance per case, under
// one messageId. On SQLite and PostgreSQL.
func TestCrashKill9(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			dbURI := storetest.NewDatabaseURI(t, dialect)
			alice := newMatrixUser(t, "alice")
			b := newCentre(t, alice.UserID)
			sb := startProcess(t, dbURI, b)
			defer sb.Stop()
			adminRoom(t, alice, b)

			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			ids := make([]string, crashCases)
			for i := range ids {
				ids[i] = uuid.NewString()
			}
			begin := time.Now()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				for _, id := range ids {
					if _, err := peerA.Send(ctx, b.OID, app, "incident", incident(id), "NONE"); err != nil {
						t.Error(err)
						return
					}
					time.Sleep(60 * time.Millisecond)
				}
			}()
			go func() { defer wg.Done(); acceptAll(ctx, t, alice, b, ids) }()
			for k, after := range crashKillsAfter {
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
			verifyCrash(t, alice, b, ids)
			t.Logf("verified at %s", time.Since(begin).Round(time.Millisecond))
		})
	}
}

// acceptAll joins each case's room as it appears and accepts the case.
func acceptAll(ctx context.Context, t *testing.T, cli *mautrix.Client, b case116117.LinkConfig, ids []string) {
	for _, id := range ids {
		room := caseRoom(t, cli, b, id)
		waitNotice(t, cli, room, "Neuer Fall")
		if _, err := cli.SendText(ctx, room, "!accept"); err != nil {
			t.Error(err)
			return
		}
	}
}

// verifyCrash: every case once in its room, one acknowledgement per case at A, every
// received message committed, everything schema-valid.
func verifyCrash(t *testing.T, cli *mautrix.Client, b case116117.LinkConfig, ids []string) {
	var got received
	matrixtest.WaitFor(t, 90*time.Second, "an acceptance of every case at A", func() (bool, error) {
		got.poll(t)
		got.mu.Lock()
		defer got.mu.Unlock()
		seen := map[string]bool{}
		for _, m := range got.msgs {
			if m.SchemaID == "acknowledgement" {
				var d map[string]any
				_ = json.Unmarshal(m.Data, &d)
				seen[fmt.Sprint(d["sharedIncidentId"])] = true
			}
		}
		return len(seen) == len(ids), nil
	})
	// What the bot's centre sent, as the UCRM took it: one acknowledgement (one messageId)
	// per case. A resend with the same messageId is one message at the UCRM.
	perCase := map[string][]string{}
	for _, raw := range srv.Sent(b.OID) {
		m, err := ucrm.ParseMessage(raw)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		_ = json.Unmarshal(m.Data, &d)
		id := fmt.Sprint(d["sharedIncidentId"])
		perCase[id] = append(perCase[id], m.MessageID)
	}
	lost, doubled := 0, 0
	for _, id := range ids {
		switch n := len(perCase[id]); {
		case n == 0:
			lost++
		case n > 1:
			doubled++
			t.Errorf("case %s: %d acknowledgements with the ids %v", id, n, perCase[id])
		}
		room := caseRoom(t, cli, b, id)
		if n := countBodies(t, cli, room, "Neuer Fall"); n != 1 {
			t.Errorf("case %s is shown %d times", id, n)
		}
	}
	if q := srv.Queue(b.OID); q != 0 {
		t.Errorf("%d messages are still uncommitted at the UCRM", q)
	}
	checkSchemas(t, b.OID)
	t.Logf("%d cases: %d acknowledgements lost, %d doubled", len(ids), lost, doubled)
	if lost > 0 {
		t.Errorf("%d acknowledgements lost", lost)
	}
}

// startProcess writes the config of a switchboard process with the bot for the centre on
// the database dbURI and starts it. Its log is shown when t fails.
func startProcess(t testing.TB, dbURI string, l case116117.LinkConfig) *sbproc.Runner {
	t.Helper()
	return sbproc.Launch(t, workDir, "github.com/switchboard-matrix/switchboard/cmd/switchboard", filepath.Join(workDir, "registration.yaml"), sbproc.Config{
		HomeserverURL: hs.URL, Domain: domain, RegistrationID: reg.ID, ASPort: asPort,
		DatabaseURI: dbURI, LogLevel: getenv("SWITCHBOARD_CASEE2E_LOG", "info"),
		Modules: fmt.Sprintf(`  case116117:
    enabled: true
    links:
      - name: %q
        oid: %q
        signing_key: %q
        ucrm: {url: %q, username: %q, password: %q}
        dispatchers: [%q]
        admins: [%q]
        max_delay: 2s
`, l.Name, l.OID, l.SigningKey, l.UCRM.URL, l.UCRM.Username, l.UCRM.Password, l.Dispatchers[0], l.Admins[0]),
	})
}
