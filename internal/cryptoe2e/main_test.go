// Package cryptoe2e tests the core's end-to-end encryption against a real Synapse with an
// encrypting Matrix client (internal/testpeer/e2eeclient) and the countable test module,
// and the refusal on Dendrite. It holds tests only.
package cryptoe2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
	"github.com/switchboard-matrix/switchboard/registration"
)

var workDir string

func appserviceFor(id string) func() (dendrite.Appservice, error) {
	return func() (dendrite.Appservice, error) {
		return dendrite.Appservice{
			ID: id, Ephemeral: true,
			Namespaces: map[string]registration.Namespaces{
				management.ID: {}, testmodule.ID: testmodule.New(testmodule.Config{}, nil).Namespaces(),
			},
		}, nil
	}
}

var (
	syn = homeserver.Lazy{Kind: homeserver.Synapse, Dir: func() string { return filepath.Join(workDir, "synapse") }, Appservice: appserviceFor("switchboard-crypto")}
	den = homeserver.Lazy{Kind: homeserver.Dendrite, Dir: func() string { return filepath.Join(workDir, "dendrite") }, Appservice: appserviceFor("switchboard-crypto")}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cryptoe2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	code := m.Run()
	syn.Stop()
	den.Stop()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const domain = "localhost"

var userCounter atomic.Int64

// newUser registers a fresh user on h and returns its client and password.
func newUser(t *testing.T, h homeserver.HS, prefix string) (*mautrix.Client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("%s%d%d", prefix, time.Now().UnixNano()%1e6, userCounter.Add(1))
	password := "password-" + name
	cli, err := h.RegisterUser(ctx, name, password)
	if err != nil {
		t.Fatal(err)
	}
	return cli, password
}

// encryptionOn is the encryption the tests run with: a short decrypt timeout.
func encryptionOn(timeout time.Duration) appservice.Encryption {
	return appservice.Encryption{Enabled: true, Default: true, DecryptTimeout: timeout}
}

// startCore starts a core with the test module on h.
func startCore(t *testing.T, h homeserver.HS, st *store.Store, tmCfg testmodule.Config, enc appservice.Encryption) (*appservice.Core, *testmodule.Module, context.Context) {
	t.Helper()
	return startCoreLog(t, h, st, tmCfg, enc, nil)
}

// startCoreLog is startCore with the core's log also written to log.
func startCoreLog(t *testing.T, h homeserver.HS, st *store.Store, tmCfg testmodule.Config, enc appservice.Encryption, log io.Writer) (*appservice.Core, *testmodule.Module, context.Context) {
	t.Helper()
	tm := testmodule.New(tmCfg, st)
	level := zerolog.InfoLevel
	if os.Getenv("SWITCHBOARD_CRYPTOE2E_LOG") == "debug" {
		level = zerolog.DebugLevel
	}
	core, ctx := sbcore.Start(t, sbcore.Options{
		Registration: h.Reg(), HomeserverURL: h.BaseURL(), Domain: domain, ASPort: h.AppservicePort(), Store: st,
		Modules: []appservice.Module{tm}, Version: "cryptoe2e", LogLevel: level,
		Retry:      appservice.Retry{Attempts: 5, Initial: 100 * time.Millisecond, Max: time.Second},
		Encryption: enc, Log: log,
	})
	return core, tm, ctx
}
