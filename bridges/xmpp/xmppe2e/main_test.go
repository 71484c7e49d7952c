package xmppe2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/bots/management"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
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
	if asPort, err = freePort(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bridge, err := xmpp.New(bridgeConfig())
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppe2e: bridge config:", err)
		return 1
	}
	reg, err = registration.Build(registration.BuildConfig{
		ID: "switchboard-xmppe2e", URL: fmt.Sprintf("http://127.0.0.1:%d", asPort), BotLocalpart: "switchboard",
		Domain: domain, Ephemeral: true,
	}, map[string]registration.Namespaces{management.ID: {}, xmpp.ID: bridge.Namespaces()}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppe2e: registration:", err)
		return 1
	}
	regPath = filepath.Join(workDir, "registration.yaml")
	if err := registration.Save(regPath, reg); err != nil {
		fmt.Fprintln(os.Stderr, "xmppe2e: registration:", err)
		return 1
	}
	hs, err = dendrite.Start(ctx, dendrite.Options{ServerName: domain, RegistrationFiles: []string{regPath}, Dir: filepath.Join(workDir, "dendrite")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppe2e: dendrite:", err)
		return 1
	}
	defer func() { _ = hs.Stop() }()
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "dendrite log tail:\n%s\nprosody log tail:\n%s\n", hs.LogTail(30), xs.LogTail(40))
	}
	return code
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

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
