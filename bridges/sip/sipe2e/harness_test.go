package sipe2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/sip"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// running is a Switchboard core with the SIP bridge, inside the test.
type running struct {
	core   *appservice.Core
	bridge *sip.Bridge
	st     *store.Store
}

// startBridge starts Switchboard with the bridge on the test's homeserver and waits for
// its SIP listeners.
func startBridge(t testing.TB, st *store.Store) *running {
	t.Helper()
	return startBridgeWith(t, st, bridgeConfig())
}

func startBridgeWith(t testing.TB, st *store.Store, cfg sip.Config) *running {
	t.Helper()
	return startBridgeEncryption(t, st, cfg, appservice.Encryption{})
}

// startBridgeEncryption is startBridgeWith with the core's end-to-end encryption set to
// enc (off when zero).
func startBridgeEncryption(t testing.TB, st *store.Store, cfg sip.Config, enc appservice.Encryption) *running {
	t.Helper()
	if st == nil {
		st = storetest.Open(t, store.SQLite)
	}
	bridge, err := sip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	core, _ := sbcore.Start(t, sbcore.Options{
		Registration: onHS.Reg, HomeserverURL: onHS.URL, Domain: domain, ASPort: onHS.ASPort, Store: st,
		Modules: []appservice.Module{bridge}, Version: "sipe2e", LogLevel: logLevel(),
		Encryption: enc,
	})
	select {
	case <-bridge.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the bridge's SIP listeners did not start")
	}
	return &running{core: core, bridge: bridge, st: st}
}

func logLevel() zerolog.Level {
	if l, err := zerolog.ParseLevel(getenv("SWITCHBOARD_SIPE2E_LOG", "info")); err == nil {
		return l
	}
	return zerolog.InfoLevel
}

// newMatrixUser registers a Matrix user with a display name.
func newMatrixUser(t testing.TB, prefix string) *mautrix.Client {
	t.Helper()
	cli := onHS.NewUser(t, prefix)
	if err := cli.SetDisplayName(context.Background(), prefix+" M"); err != nil {
		t.Fatal(err)
	}
	return cli
}

// newPhone starts a scripted SIP phone for a Kamailio user and registers it.
func newPhone(t testing.TB, user string) *sipphone.Phone {
	t.Helper()
	p := sipphone.New(t, sipphone.Options{User: user, Domain: sipDomain, Password: users[user], Proxy: kam.UDPAddr})
	if err := p.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

var mapper = sipuri.Mapper{Homeserver: domain, Domain: bridgeDomain, Prefix: sip.DefaultPrefix}

// sipURIOf is the SIP URI of a Matrix user on the bridge's domain.
func sipURIOf(t testing.TB, user id.UserID) string {
	t.Helper()
	a, err := mapper.UserAOR(user.String())
	if err != nil {
		t.Fatal(err)
	}
	return a.URI()
}

// ghostOf is the Matrix ghost of a SIP user of the package's Kamailio.
func ghostOf(t testing.TB, user string) id.UserID {
	t.Helper()
	lp, err := mapper.GhostLocalpart(sipuri.AOR{User: user, Host: sipDomain})
	if err != nil {
		t.Fatal(err)
	}
	return id.NewUserID(lp, domain)
}

func bodyIs(sender id.UserID, body string) func(*event.Event) bool {
	return func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Sender == sender && e.Content.AsMessage().Body == body
	}
}

// unique is prefix with a random suffix.
func unique(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
