package xmppe2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/prosody"
	"github.com/switchboard-matrix/switchboard/registration"
)

// One Dendrite and one Prosody serve the whole package (tests run one after the other).
// Dendrite knows one registration, whose appservice URL is a port picked here that every
// test's Switchboard listens on in turn.
var (
	hs      *dendrite.Server
	xs      *prosody.Server
	reg     *mas.Registration
	regPath string
	asPort  int
	workDir string
)

const domain = "localhost"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	for name, avail := range map[string]func() error{"Dendrite": dendrite.Available, "Prosody": prosody.Available} {
		if err := avail(); err != nil {
			if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
				fmt.Fprintf(os.Stderr, "xmppe2e: %s unavailable and SWITCHBOARD_REQUIRE_PEERS=1: %v\n", name, err)
				return 1
			}
			fmt.Printf("xmppe2e: skipping: %s unavailable: %v\n", name, err)
			return 0
		}
	}
	var err error
	workDir, err = os.MkdirTemp("", "switchboard-xmppe2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	xs, err = prosody.Start(ctx, prosody.Options{EnableUpload: true, Dir: filepath.Join(workDir, "prosody")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppe2e: prosody:", err)
		return 1
	}
	defer func() { _ = xs.Stop() }()
	appsvc, err := appserviceFor()
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppe2e: bridge config:", err)
		return 1
	}
	h, err := dendrite.StartWithAppservice(ctx, workDir, appsvc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppe2e:", err)
		return 1
	}
	hs, reg, regPath, asPort = h.Server, h.Registration, h.RegistrationPath, h.ASPort
	onHS = homeserver.DendriteEnv(h)
	defer func() { _ = hs.Stop() }()
	defer syn.Stop()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "dendrite log tail:\n%s\nprosody log tail:\n%s\n", hs.LogTail(30), xs.LogTail(40))
	}
	return code
}

// appserviceFor is the package's registration, the same on both homeservers.
func appserviceFor() (dendrite.Appservice, error) {
	bridge, err := xmpp.New(bridgeConfig())
	if err != nil {
		return dendrite.Appservice{}, err
	}
	return dendrite.Appservice{
		ID: "switchboard-xmppe2e", Ephemeral: true,
		Namespaces: map[string]registration.Namespaces{management.ID: {}, xmpp.ID: bridge.Namespaces()},
	}, nil
}

// bridgeConfig is the bridge's config for the package's Prosody.
func bridgeConfig() xmpp.Config {
	presence, history := true, 20
	return xmpp.Config{
		Component: xmpp.ComponentConfig{
			Address: xs.ComponentAddr, Domain: xs.ComponentDomain, Secret: xs.ComponentSecret,
			ServerDomain: xs.Domain, UploadService: xs.UploadDomain,
			MinBackoff: config.Duration(100 * time.Millisecond), MaxBackoff: config.Duration(time.Second),
		},
		Media:    xmpp.MediaConfig{MaxBytes: 4 << 20, AllowPrivate: true},
		Presence: &presence, MUCHistory: &history,
	}
}
