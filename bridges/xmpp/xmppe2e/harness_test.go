package xmppe2e

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

// unique returns a name unique in the test run.
var unique = dendrite.Unique

// newMatrixUser registers a real Matrix user with a display name on the test's homeserver.
func newMatrixUser(t testing.TB, prefix string) *mautrix.Client {
	t.Helper()
	cli := onHS.NewUser(t, prefix)
	if err := cli.SetDisplayName(context.Background(), prefix+" M"); err != nil {
		t.Fatal(err)
	}
	return cli
}

// running is a Switchboard core with the XMPP bridge, inside the test.
type running struct {
	core   *appservice.Core
	bridge *xmpp.Bridge
	st     *store.Store
}

// startBridge starts Switchboard with the bridge on st (a fresh SQLite store when nil) and
// waits until the component is connected.
func startBridge(t testing.TB, st *store.Store) *running {
	t.Helper()
	return startBridgeWith(t, st, bridgeConfig(), true)
}

// startBridgeWith starts Switchboard on the test's homeserver with the bridge configured by cfg, and waits for the
// component's connection when connected is true.
func startBridgeWith(t testing.TB, st *store.Store, cfg xmpp.Config, connected bool) *running {
	t.Helper()
	return startBridgeEncryption(t, st, cfg, connected, appservice.Encryption{})
}

// startBridgeEncryption is startBridgeWith with the core's end-to-end encryption set to
// enc (off when zero).
func startBridgeEncryption(t testing.TB, st *store.Store, cfg xmpp.Config, connected bool, enc appservice.Encryption) *running {
	t.Helper()
	return startBridgeCore(t, st, cfg, connected, sbcore.Options{Encryption: enc})
}

// startBridgeCore is startBridgeWith with the core options of opts that the harness does
// not set itself (Encryption, Scanning, Retry, …); its homeserver, store, modules and
// logging are the harness's.
func startBridgeCore(t testing.TB, st *store.Store, cfg xmpp.Config, connected bool, opts sbcore.Options) *running {
	t.Helper()
	if st == nil {
		st = storetest.Open(t, store.SQLite)
	}
	bridge, err := xmpp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts.Registration, opts.HomeserverURL, opts.Domain, opts.ASPort, opts.Store = onHS.Reg, onHS.URL, domain, onHS.ASPort, st
	opts.Modules, opts.Version, opts.LogLevel = []appservice.Module{bridge}, "xmppe2e", logLevel()
	core, ctx := sbcore.Start(t, opts)
	r := &running{core: core, bridge: bridge, st: st}
	if connected {
		matrixtest.WaitFor(t, 20*time.Second, "the component to connect", func() (bool, error) {
			return bridge.Status(ctx).Connected, nil
		})
	}
	return r
}

func logLevel() zerolog.Level {
	if l, err := zerolog.ParseLevel(getenv("SWITCHBOARD_XMPPE2E_LOG", "info")); err == nil {
		return l
	}
	return zerolog.InfoLevel
}

// ghostOf is the Matrix ghost of an XMPP user.
func ghostOf(t testing.TB, bare string) id.UserID {
	t.Helper()
	return id.UserID("@_xmpp_" + id.EncodeUserLocalpart(bare) + ":" + domain)
}

// portOf is the port of a host:port address.
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
