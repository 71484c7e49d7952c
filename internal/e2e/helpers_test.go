package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
)

var userCounter atomic.Int64

// newUser registers a fresh real Matrix user on the shared Dendrite.
func newUser(t *testing.T, prefix string) *mautrix.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("%s%d%d", prefix, time.Now().UnixNano()%1e6, userCounter.Add(1))
	cli, err := hs.RegisterUser(ctx, name, "password-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

// inProcess is a Switchboard core running inside the test, on the registration's port.
type inProcess struct {
	core *appservice.Core
	tm   *testmodule.Module
	st   *store.Store
}

func startInProcess(t *testing.T, st *store.Store, tmCfg testmodule.Config) *inProcess {
	t.Helper()
	bot, err := management.New(management.Config{Admins: []string{"*:" + domain}})
	if err != nil {
		t.Fatal(err)
	}
	tm := testmodule.New(tmCfg, st)
	core, err := appservice.New(appservice.Options{
		Registration: reg, HomeserverURL: hs.URL, Domain: domain, Store: st,
		Modules: []appservice.Module{bot, tm}, BotModule: management.ID, BotDisplayName: "Switchboard",
		Listen: fmt.Sprintf("127.0.0.1:%d", asPort), Version: "e2e",
		Retry:         appservice.Retry{Attempts: 5, Initial: 100 * time.Millisecond, Max: time.Second},
		InDoubtSettle: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).WithContext(context.Background())
	if err := core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p := &inProcess{core: core, tm: tm, st: st}
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *inProcess) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.core.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
}

// forDialects runs f on SQLite and on PostgreSQL (skipped without SWITCHBOARD_TEST_POSTGRES).
func forDialects(t *testing.T, f func(t *testing.T, dialect store.Dialect)) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) { f(t, d) })
	}
}

func openStore(t *testing.T, dialect store.Dialect) *store.Store { return storetest.Open(t, dialect) }

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
}

// roomMessages returns every m.room.message in the room, oldest first, as the user sees it.
// Events are deduplicated by event ID, as clients do: Dendrite's pagination may return an
// event at a page boundary twice, which is not a second event.
func roomMessages(ctx context.Context, cli *mautrix.Client, roomID id.RoomID) ([]*event.Event, error) {
	var out []*event.Event
	seen := map[id.EventID]bool{}
	from := ""
	for {
		resp, err := cli.Messages(ctx, roomID, from, "", mautrix.DirectionBackward, nil, 500)
		if err != nil {
			return nil, err
		}
		for _, e := range resp.Chunk {
			if e.Type == event.EventMessage && !seen[e.ID] {
				seen[e.ID] = true
				_ = e.Content.ParseRaw(e.Type)
				out = append(out, e)
			}
		}
		if resp.End == "" || len(resp.Chunk) == 0 {
			break
		}
		from = resp.End
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

func isJoined(ctx context.Context, cli *mautrix.Client, roomID id.RoomID, user id.UserID) (bool, error) {
	resp, err := cli.JoinedMembers(ctx, roomID)
	if err != nil {
		return false, err
	}
	_, ok := resp.Joined[user]
	return ok, nil
}

func bodies(evts []*event.Event, sender id.UserID) []string {
	var out []string
	for _, e := range evts {
		if sender == "" || e.Sender == sender {
			out = append(out, strings.TrimSpace(e.Content.AsMessage().Body))
		}
	}
	return out
}
