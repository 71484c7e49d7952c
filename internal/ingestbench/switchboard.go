package ingestbench

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// Domain is the homeserver domain of the benchmark.
const Domain = "bench.test"

// sbConfig is the part of a Switchboard config the benchmark varies.
type sbConfig struct {
	HomeserverURL       string
	ASPort, MetricsPort int
	DatabaseURI         string
	Rooms               []string
}

// writeConfig writes a Switchboard config with the no-op module owning rooms into dir
// (mode 0600) and returns its path.
func writeConfig(dir string, c sbConfig) (string, error) {
	rooms, _ := json.Marshal(c.Rooms) // a JSON array is a YAML flow sequence
	cfg := fmt.Sprintf(`homeserver:
  address: %s
  domain: %s
appservice:
  id: ingestbench
  listen: 127.0.0.1:%d
  public_url: http://127.0.0.1:%d
  bot:
    localpart: switchboard
database:
  uri: %q
logging:
  level: warn
  format: json
metrics:
  enabled: true
  listen: 127.0.0.1:%d
  pprof: true
management:
  admins: ["*:%s"]
modules:
  noop:
    enabled: true
    rooms: %s
`, c.HomeserverURL, Domain, c.ASPort, c.ASPort, c.DatabaseURI, c.MetricsPort, Domain, rooms)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("ingestbench: %w", err)
	}
	return path, nil
}

// sbKind is how a Switchboard run stores: "sqlite", "postgres", "sqlite+state".
type sbKind string

// sbEnv is what every Switchboard run shares.
type sbEnv struct {
	bin         string // switchboard-test
	standInURL  string // the homeserver stand-in
	postgresURL string // the server to create databases on; may be empty
	rooms       []string
}

// startSwitchboard makes a fresh database (a file, or a new PostgreSQL database), fills it
// for "sqlite+state", generates the registration with the binary and starts it.
func startSwitchboard(ctx context.Context, env sbEnv, kind sbKind, dir string) (*proc, error) {
	asPort, err := freePort()
	if err != nil {
		return nil, err
	}
	opsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	p := &proc{name: "switchboard-" + string(kind), baseURL: fmt.Sprintf("http://127.0.0.1:%d", asPort)}
	uri := "sqlite:" + filepath.Join(dir, "switchboard.db")
	if kind == "postgres" {
		dbURI, drop, err := createPostgresDB(ctx, env.postgresURL)
		if err != nil {
			return nil, err
		}
		uri, p.cleanup = dbURI, drop
	}
	fail := func(err error) (*proc, error) {
		if p.cleanup != nil {
			p.cleanup(ctx)
		}
		return nil, err
	}
	if kind == "sqlite+state" {
		if err := fillState(ctx, uri, stateGhosts, statePortals); err != nil {
			return fail(err)
		}
	}
	cfg, err := writeConfig(dir, sbConfig{HomeserverURL: env.standInURL, ASPort: asPort, MetricsPort: opsPort, DatabaseURI: uri, Rooms: env.rooms})
	if err != nil {
		return fail(err)
	}
	reg := filepath.Join(dir, "registration.yaml")
	if out, err := exec.CommandContext(ctx, env.bin, "-g", "-c", cfg, "-r", reg).CombinedOutput(); err != nil {
		return fail(fmt.Errorf("ingestbench: failed to generate the registration: %w\n%s", err, out))
	}
	r, err := appservice.LoadRegistration(reg)
	if err != nil {
		return fail(fmt.Errorf("ingestbench: failed to read the registration: %w", err))
	}
	p.hsToken = r.ServerToken
	p.cmd = exec.Command(env.bin, "-c", cfg, "-r", reg)
	if err := p.start(filepath.Join(dir, "switchboard.log")); err != nil {
		return fail(err)
	}
	ops := fmt.Sprintf("http://127.0.0.1:%d", opsPort)
	err = p.waitUp(ctx, ops+"/health/ready", func(resp *http.Response) bool {
		var ready struct {
			Checks map[string]string `json:"checks"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&ready)
		return resp.StatusCode == http.StatusOK || ready.Checks["core"] == "running" && ready.Checks["database"] == "ok"
	})
	if err != nil {
		p.stop()
		return fail(err)
	}
	// The module's count is read while the process runs; check is called after it stopped.
	var handledAtEnd int64 = -1
	p.handled = func(ctx context.Context) (int64, error) {
		n, err := handledMetric(ctx, ops+"/metrics", "noop")
		if err == nil {
			handledAtEnd = n
		}
		return n, err
	}
	p.check = func(ctx context.Context, sent int) (string, bool) {
		return checkInbox(ctx, uri, sent, handledAtEnd)
	}
	return p, nil
}

// handledMetric reads switchboard_events_handled_total{module=module,result="ok"} from a
// Prometheus text exposition at metricsURL.
func handledMetric(ctx context.Context, metricsURL, module string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("ingestbench: failed to read the metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseHandled(bufio.NewScanner(resp.Body), module)
}

// parseHandled finds the handled-ok counter of module in the lines of sc.
func parseHandled(sc *bufio.Scanner, module string) (int64, error) {
	want := map[string]string{"module": module, "result": "ok"}
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "switchboard_events_handled_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !labelsMatch(labels, want) {
			continue
		}
		f, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			return 0, fmt.Errorf("ingestbench: bad metric line %q: %w", line, err)
		}
		return int64(f), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("ingestbench: failed to read the metrics: %w", err)
	}
	return 0, fmt.Errorf("ingestbench: no switchboard_events_handled_total for module %s", module)
}

func labelsMatch(labels string, want map[string]string) bool {
	got := map[string]string{}
	for _, kv := range strings.Split(labels, ",") {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = strings.Trim(v, `"`)
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// checkInbox checks that the journal holds every sent event exactly once and handled
// (state done), and that the module handled each once (handled is the module's count read
// last while the process ran).
func checkInbox(ctx context.Context, uri string, sent int, handled int64) (string, bool) {
	st, err := store.Open(ctx, uri)
	if err != nil {
		return "error: " + err.Error(), false
	}
	defer st.Close()
	recs, err := st.InboxRecords(ctx, "")
	if err != nil {
		return "error: " + err.Error(), false
	}
	rows, done := int64(len(recs)), int64(0)
	ids := make(map[string]bool, len(recs))
	for _, r := range recs {
		ids[r.EventID] = true
		if r.State == "done" {
			done++
		}
	}
	distinct := int64(len(ids))
	ok := rows == int64(sent) && distinct == int64(sent) && done == int64(sent) && handled == int64(sent)
	return fmt.Sprintf("inbox %d rows, %d distinct, %d done; module handled %d; of %d", rows, distinct, done, handled, sent), ok
}

// createPostgresDB creates a database bench_<random> on the server of adminURL and returns
// its URI and a function that drops it.
func createPostgresDB(ctx context.Context, adminURL string) (string, func(context.Context), error) {
	if adminURL == "" {
		return "", nil, fmt.Errorf("ingestbench: no PostgreSQL server (-postgres or SWITCHBOARD_TEST_POSTGRES)")
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("ingestbench: the PostgreSQL URL does not parse")
	}
	admin, err := sql.Open("pgx", adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("ingestbench: failed to open the PostgreSQL server: %w", err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "bench_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("ingestbench: failed to create database %s: %w", name, err)
	}
	u.Path = "/" + name
	drop := func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name)
		admin.Close()
	}
	return u.String(), drop, nil
}

// PostgresFsync returns the fsync setting of the PostgreSQL server at adminURL ("on", "off").
func PostgresFsync(ctx context.Context, adminURL string) (string, error) {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return "", fmt.Errorf("ingestbench: %w", err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRowContext(ctx, "SHOW fsync").Scan(&v); err != nil {
		return "", fmt.Errorf("ingestbench: failed to ask PostgreSQL for fsync: %w", err)
	}
	return v, nil
}

// The scale of the "sqlite+state" store (issue 16 item 3).
const (
	stateGhosts  = 100_000
	statePortals = 10_000
)

// fillState creates the store at uri and fills it with ghosts registered ghosts of the no-op
// module and portals portals of it (in rooms other than the benchmark's), in one transaction.
func fillState(ctx context.Context, uri string, ghosts, portals int) error {
	st, err := store.Open(ctx, uri)
	if err != nil {
		return fmt.Errorf("ingestbench: %w", err)
	}
	defer st.Close()
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ingestbench: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UnixMilli()
	g, err := tx.PrepareContext(ctx, `INSERT INTO ghost (user_id, registered_at) VALUES ($1, $2)`)
	if err != nil {
		return fmt.Errorf("ingestbench: %w", err)
	}
	for i := range ghosts {
		if _, err := g.ExecContext(ctx, fmt.Sprintf("@_noop_ghost%d:%s", i, Domain), now); err != nil {
			return fmt.Errorf("ingestbench: failed to insert ghost %d: %w", i, err)
		}
	}
	pp, err := tx.PrepareContext(ctx, `INSERT INTO portal (module, remote_key, room_id) VALUES ($1, $2, $3)`)
	if err != nil {
		return fmt.Errorf("ingestbench: %w", err)
	}
	for i := range portals {
		if _, err := pp.ExecContext(ctx, "noop", fmt.Sprintf("state:%d", i), fmt.Sprintf("!state%d:%s", i, Domain)); err != nil {
			return fmt.Errorf("ingestbench: failed to insert portal %d: %w", i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("ingestbench: failed to commit the state: %w", err)
	}
	return nil
}
