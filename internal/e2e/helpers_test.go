package e2e

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
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
	tm := testmodule.New(tmCfg, st)
	core, _ := sbcore.Start(t, sbcore.Options{
		Registration: reg, HomeserverURL: hs.URL, Domain: domain, ASPort: asPort, Store: st,
		Modules: []appservice.Module{tm}, Version: "e2e", LogLevel: zerolog.InfoLevel,
		Retry: appservice.Retry{Attempts: 5, Initial: 100 * time.Millisecond, Max: time.Second},
	})
	p := &inProcess{core: core, tm: tm, st: st}
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

// The Matrix-client helpers are shared with the bridges' end-to-end tests.
var (
	waitFor      = matrixtest.WaitFor
	roomMessages = matrixtest.RoomMessages
	isJoined     = matrixtest.IsJoined
	bodies       = matrixtest.Bodies
)
