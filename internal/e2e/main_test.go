package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// The package's homeservers (tests run one after the other): Dendrite, started here, serves
// every test that does not name a homeserver; Synapse starts the first time a Synapse test
// asks for it (see onHS). Each knows one registration, whose appservice URL is a port picked
// for it that every test's Switchboard (in-process or a separate process) listens on in
// turn. Both have the server name "localhost".
var workDir string

const domain = "localhost"

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if err := homeserver.Available(homeserver.Dendrite); err != nil {
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
	h, err := startHomeserver(ctx, homeserver.Dendrite)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	servers.set(homeserver.Dendrite, h, nil)
	code := m.Run()
	servers.stopAll(code != 0)
	return code
}
