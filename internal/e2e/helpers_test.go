package e2e

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/syncbuf"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

var userCounter atomic.Int64

// newUser registers a fresh real Matrix user on h.
func newUser(t *testing.T, h homeserver.HS, prefix string) *mautrix.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("%s%d%d", prefix, time.Now().UnixNano()%1e6, userCounter.Add(1))
	cli, err := h.RegisterUser(ctx, name, "password-"+name)
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

func startInProcess(t *testing.T, h homeserver.HS, st *store.Store, tmCfg testmodule.Config) *inProcess {
	t.Helper()
	tm := testmodule.New(tmCfg, st)
	core, _ := sbcore.Start(t, sbcore.Options{
		Registration: h.Reg(), HomeserverURL: h.BaseURL(), Domain: domain, ASPort: h.AppservicePort(), Store: st,
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

// coreOptions are what startCore varies.
type coreOptions struct {
	modules []appservice.Module
	// port is where the Application Service API listens; 0 means h's appservice port.
	port int
	// log receives the core's log besides the test's output; debug lowers the level from
	// info to debug.
	log   io.Writer
	debug bool
	// registration replaces h's registration (to test a wrong token).
	registration *mas.Registration
}

// startCore starts a core with the management bot and o.modules on h, like sbcore.Start,
// with its log also written to o.log; it is stopped at the end of the test.
func startCore(t *testing.T, h homeserver.HS, st *store.Store, o coreOptions) *appservice.Core {
	t.Helper()
	bot, err := management.New(management.Config{Admins: []string{"*:" + domain}})
	if err != nil {
		t.Fatal(err)
	}
	if o.port == 0 {
		o.port = h.AppservicePort()
	}
	if o.registration == nil {
		o.registration = h.Reg()
	}
	core, err := appservice.New(appservice.Options{
		Registration: o.registration, HomeserverURL: h.BaseURL(), Domain: domain, Store: st,
		Modules: append([]appservice.Module{bot}, o.modules...), BotModule: management.ID, BotDisplayName: "Switchboard",
		Listen: fmt.Sprintf("127.0.0.1:%d", o.port), Version: "e2e",
		Retry: appservice.Retry{Attempts: 5, Initial: 100 * time.Millisecond, Max: time.Second}, InDoubtSettle: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var w io.Writer = zerolog.NewTestWriter(t)
	if o.log != nil {
		w = zerolog.MultiLevelWriter(w, o.log)
	}
	level := zerolog.InfoLevel
	if o.debug {
		level = zerolog.DebugLevel
	}
	ctx := zerolog.New(w).Level(level).With().Timestamp().Logger().WithContext(context.Background())
	if err := core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := core.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return core
}

// logBuffer collects a log for the test to read while it is written.
type logBuffer = syncbuf.Buffer
