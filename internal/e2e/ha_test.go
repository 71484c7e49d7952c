package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// TestHATakeover: two real processes with high_availability on one PostgreSQL database.
// The first leads; the second waits as a standby (readiness 503 "standby", its
// transaction endpoint 503 with Retry-After). When the leader is killed with SIGKILL the
// standby takes over: it is ready after the fence delay, leads with the next epoch and
// journals a transaction. (Issue 18's test with a front, load both ways and ten kills is
// still to come.)
func TestHATakeover(t *testing.T) {
	h := onHS(t, homeserver.Dendrite)
	bin := sbproc.Build(t, workDir, "github.com/switchboard-matrix/switchboard/cmd/switchboard")
	dbURI := storetest.NewDatabaseURI(t, store.Postgres)
	type node struct {
		metrics, as int
		cfg         string
		log         *os.File
		proc        *sbproc.Process
	}
	newNode := func(name string, asPort int) *node {
		dir := t.TempDir()
		metrics, err := peerproc.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		n := &node{metrics: metrics, as: asPort}
		n.cfg = sbproc.WriteConfig(t, dir, sbproc.Config{
			HomeserverURL: h.BaseURL(), Domain: domain, RegistrationID: h.Reg().ID, ASPort: asPort, MetricsPort: metrics,
			DatabaseURI: dbURI, LogLevel: logLevel(),
			Extra: "high_availability:\n  enabled: true\n  check_interval: 500ms\n  check_timeout: 500ms\n  fence_delay: 2s\n",
		})
		if n.log, err = os.Create(filepath.Join(dir, name+".log")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's warnings and errors:\n%s", name, sbproc.LogProblems(n.log.Name(), 40))
			}
			n.log.Close()
		})
		return n
	}
	ready := func(n *node) (int, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/health/ready", n.metrics))
		if err != nil {
			return 0, ""
		}
		defer resp.Body.Close()
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Checks["core"]
	}

	bPort, err := peerproc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a, b := newNode("a", h.AppservicePort()), newNode("b", bPort)
	a.proc = sbproc.Start(t, bin, a.cfg, h.RegPath(), a.metrics, a.log)
	defer func() {
		if a.proc != nil {
			a.proc.Kill9()
		}
	}()
	b.proc = sbproc.StartNoWait(t, bin, b.cfg, h.RegPath(), b.log)
	defer b.proc.Kill9()
	waitFor(t, 30*time.Second, "the second process to wait as a standby", func() (bool, error) {
		status, core := ready(b)
		return status == http.StatusServiceUnavailable && strings.HasPrefix(core, "standby"), nil
	})
	txn := func(n *node, id string) int {
		body := `{"events":[{"event_id":"$ha` + id + `","room_id":"!ha:localhost","type":"m.room.message","sender":"@x:localhost","origin_server_ts":1,"content":{"msgtype":"m.text","body":"x"}}]}`
		req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://127.0.0.1:%d/_matrix/app/v1/transactions/ha%s", n.as, id), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+h.Reg().ServerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
			t.Error("a 503 without Retry-After")
		}
		return resp.StatusCode
	}
	if got := txn(b, "1"); got != http.StatusServiceUnavailable {
		t.Errorf("a transaction to the standby: %d, want 503", got)
	}

	killedAt := time.Now()
	a.proc.Kill9()
	a.proc = nil
	b.proc.WaitReady(t, b.metrics, 60*time.Second)
	t.Logf("takeover: the standby was ready %s after the leader's kill (fence delay 2s)", time.Since(killedAt).Round(time.Millisecond))
	if got := txn(b, "2"); got != http.StatusOK {
		t.Errorf("a transaction to the new leader: %d, want 200", got)
	}
	db, err := sql.Open("pgx", dbURI)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var epoch int64
	if err := db.QueryRowContext(ctx, `SELECT epoch FROM ha_leader WHERE id = 1`).Scan(&epoch); err != nil || epoch != 2 {
		t.Errorf("epoch = %d, %v; want 2", epoch, err)
	}
}
