// Package sbcore runs a Switchboard core inside an end-to-end test: the management bot and
// the test's modules, on the registration's appservice port, with quick retries, logging
// to the test and stopped at its end.
package sbcore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"
	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/internal/store"
)

// Options says what to run.
type Options struct {
	Registration          *mas.Registration
	HomeserverURL, Domain string
	ASPort                int
	Store                 *store.Store
	// Modules run beside the management bot (whose admins are every user of Domain).
	Modules []appservice.Module
	Version string
	// Retry is the backoff; zero means 4 attempts from 200 ms to 1 s.
	Retry    appservice.Retry
	LogLevel zerolog.Level
	// Permissions are the modules' permission lists (appservice.Options.Permissions);
	// nil: every user of Domain may use every module.
	Permissions map[string][]string
	// Encryption is the core's end-to-end encryption (off when zero).
	Encryption appservice.Encryption
	// Log, when set, receives the core's log too (JSON lines).
	Log io.Writer
	// Provisioning turns the provisioning API on (serve it with ServeOps).
	Provisioning *appservice.Provisioning
	// Scanning is the core's virus scanning (off without a Scanner).
	Scanning appservice.Scanning
}

// Start starts the core and returns it with a context that carries the test's logger.
// Stopping it again before the test ends is allowed.
func Start(t testing.TB, o Options) (*appservice.Core, context.Context) {
	t.Helper()
	bot, err := management.New(management.Config{Admins: []string{"*:" + o.Domain}})
	if err != nil {
		t.Fatal(err)
	}
	if o.Retry == (appservice.Retry{}) {
		o.Retry = appservice.Retry{Attempts: 4, Initial: 200 * time.Millisecond, Max: time.Second}
	}
	core, err := appservice.New(appservice.Options{
		Registration: o.Registration, HomeserverURL: o.HomeserverURL, Domain: o.Domain, Store: o.Store,
		Modules: append([]appservice.Module{bot}, o.Modules...), BotModule: management.ID, BotDisplayName: "Switchboard",
		Listen: fmt.Sprintf("127.0.0.1:%d", o.ASPort), Version: o.Version,
		Retry: o.Retry, InDoubtSettle: 300 * time.Millisecond, Permissions: o.Permissions,
		Encryption: o.Encryption, Provisioning: o.Provisioning, Scanning: o.Scanning,
	})
	if err != nil {
		t.Fatal(err)
	}
	var w io.Writer = zerolog.NewTestWriter(t)
	if o.Log != nil {
		w = io.MultiWriter(w, o.Log)
	}
	ctx := zerolog.New(w).Level(o.LogLevel).WithContext(context.Background())
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
	return core, ctx
}

// ServeOps serves the core's operator endpoints (metrics, health, status page, provisioning
// API) on a loopback port until the test ends, and returns their base URL.
func ServeOps(t testing.TB, core *appservice.Core) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: core.OpsHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// ScannerState is the virus scanner's line of the readiness check of the operator
// endpoints at ops (ServeOps, or a process's metrics listener): "ok (version)" or
// "unreachable", with "; N file(s) held" while files wait, and the last error.
func ScannerState(ops string) (string, error) {
	resp, err := http.Get(ops + "/health/ready")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var ready struct {
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ready); err != nil {
		return "", err
	}
	return ready.Checks["scanner"], nil
}

// OpsOnly builds a core for m without starting it (no homeserver needed) with the
// provisioning API on, for the shared secret secret; users may use m (its permission list),
// admins are also admins. It serves the core's operator endpoints on loopback until the
// test ends and returns their base URL: enough for tests of a module's provisioning routes.
func OpsOnly(t testing.TB, st *store.Store, m appservice.Module, secret string, users, admins []string) string {
	t.Helper()
	core, err := appservice.New(appservice.Options{
		Registration:  &mas.Registration{ID: "opsonly", URL: "http://127.0.0.1:1", AppToken: "as-token", ServerToken: "hs-token", SenderLocalpart: "bot"},
		HomeserverURL: "http://127.0.0.1:1", Domain: "example.org", Store: st,
		Modules:      []appservice.Module{m},
		Permissions:  map[string][]string{m.ID(): append(append([]string{}, users...), admins...)},
		Provisioning: &appservice.Provisioning{SharedSecret: secret, Admins: admins},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ServeOps(t, core)
}
