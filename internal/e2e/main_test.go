package e2e

import (
	"context"
	"fmt"
	"os"
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h, err := dendrite.StartWithAppservice(ctx, workDir, dendrite.Appservice{
		ID: "switchboard-e2e", Ephemeral: true,
		Namespaces: map[string]registration.Namespaces{
			management.ID: {}, testmodule.ID: testmodule.New(testmodule.Config{}, nil).Namespaces(),
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	hs, reg, regPath, asPort = h.Server, h.Registration, h.RegistrationPath, h.ASPort
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "dendrite log tail:\n%s\n", hs.LogTail(40))
	}
	_ = hs.Stop()
	return code
}
