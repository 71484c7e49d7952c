package e2e

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
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/registration"
)

// One Dendrite serves the whole package (tests run one after the other): it knows one
// registration, whose appservice URL is a port picked here that every test's Switchboard
// (in-process or a separate process) listens on in turn.
var (
	hs      *dendrite.Server
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
	if err := dendrite.Available(); err != nil {
		if os.Getenv("SWITCHBOARD_REQUIRE_PEERS") == "1" {
			fmt.Fprintln(os.Stderr, "e2e: Dendrite unavailable and SWITCHBOARD_REQUIRE_PEERS=1:", err)
			return 1
		}
		fmt.Println("e2e: skipping: Dendrite unavailable:", err)
		return 0
	}
	var err error
	workDir, err = os.MkdirTemp("", "switchboard-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	asPort, err = freePort()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	reg, err = registration.Build(registration.BuildConfig{
		ID: "switchboard-e2e", URL: fmt.Sprintf("http://127.0.0.1:%d", asPort), BotLocalpart: "switchboard",
		Domain: domain, Ephemeral: true,
	}, map[string]registration.Namespaces{
		management.ID: {}, testmodule.ID: testmodule.New(testmodule.Config{}, nil).Namespaces(),
	}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: registration:", err)
		return 1
	}
	regPath = filepath.Join(workDir, "registration.yaml")
	if err := registration.Save(regPath, reg); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: registration:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	hs, err = dendrite.Start(ctx, dendrite.Options{ServerName: domain, RegistrationFiles: []string{regPath}, Dir: filepath.Join(workDir, "dendrite")})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: dendrite:", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "dendrite log tail:\n%s\n", hs.LogTail(40))
	}
	_ = hs.Stop()
	return code
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
