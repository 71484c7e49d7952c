package jitsie2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/bridges/jitsi"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/prosody"
	"github.com/switchboard-matrix/switchboard/registration"
)

// One Synapse and one Prosody serve the whole package (tests run one after the other).
var (
	hs      homeserver.HS
	onHS    homeserver.Env
	xs      *prosody.Server
	workDir string
)

const (
	domain          = "localhost" // the homeserver's
	watcherUser     = "switchboard"
	watcherPassword = "watcher-pw"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	for name, avail := range map[string]func() error{
		"Synapse": func() error { return homeserver.Available(homeserver.Synapse) },
		"Prosody": prosody.Available,
	} {
		if err := avail(); err != nil {
			if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
				fmt.Fprintf(os.Stderr, "jitsie2e: %s unavailable and SWITCHBOARD_REQUIRE_PEERS=1: %v\n", name, err)
				return 1
			}
			fmt.Printf("jitsie2e: skipping: %s unavailable: %v\n", name, err)
			return 0
		}
	}
	var err error
	workDir, err = os.MkdirTemp("", "switchboard-jitsie2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	xs, err = prosody.Start(ctx, prosody.Options{Dir: filepath.Join(workDir, "prosody")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitsie2e: prosody:", err)
		return 1
	}
	defer func() { _ = xs.Stop() }()
	if err := xs.Register(ctx, watcherUser, watcherPassword); err != nil {
		fmt.Fprintln(os.Stderr, "jitsie2e: prosody:", err)
		return 1
	}
	module, err := jitsi.New(moduleConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitsie2e: module config:", err)
		return 1
	}
	hs, err = homeserver.Start(ctx, homeserver.Synapse, workDir, dendrite.Appservice{
		ID: "switchboard-jitsie2e", Ephemeral: true,
		Namespaces: map[string]registration.Namespaces{management.ID: {}, jitsi.ID: module.Namespaces()},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitsie2e:", err)
		return 1
	}
	defer func() { _ = hs.Stop() }()
	onHS = homeserver.EnvOf(hs)
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "synapse log tail:\n%s\nprosody log tail:\n%s\n", hs.LogTail(40), xs.LogTail(40))
	}
	return code
}

// moduleConfig is the module's base config: Jitsi "at" meet.test whose XMPP side is the
// package's Prosody (its domain and MUC), no access endpoints, no watcher.
func moduleConfig() jitsi.Config {
	return jitsi.Config{
		URL:       "https://meet.test",
		Domain:    "meet.test",
		MUCDomain: "conference.localhost",
		Auth:      jitsi.AuthNone,
	}
}
