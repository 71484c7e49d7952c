package casee2e

import (
	"path/filepath"
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// The main conversation tests run against both homeservers: TestXxx on the package's
// Dendrite (started by TestMain), TestXxxSynapse with the same body on the package's
// Synapse, which the first Synapse variant starts (with the same registration on a port of
// its own) and which then serves the rest of the run. `go test -run Synapse` runs exactly
// the Synapse variants.

// onHS is the homeserver of the running test: the package's Dendrite (set by TestMain)
// unless a Synapse variant runs (tests run one after the other).
var onHS homeserver.Env

// syn is the package's Synapse, started by the first Synapse variant.
var syn = homeserver.Lazy{
	Kind: homeserver.Synapse,
	Dir:  func() string { return filepath.Join(workDir, "synapse") },
	// Ephemeral events carry the to-device events and device lists encryption needs.
	Appservice: func() (dendrite.Appservice, error) { a := appserviceFor(); a.Ephemeral = true; return a, nil },
}

// onSynapse runs test with the package's Synapse as the test's homeserver. Without Synapse
// it skips, or fails when SWITCHBOARD_REQUIRE_PEERS=1.
func onSynapse(t *testing.T, test func(t *testing.T)) { homeserver.Use(t, &syn, &onHS, test) }

// TestIncomingCaseSynapse is TestIncomingCase against Synapse.
func TestIncomingCaseSynapse(t *testing.T) { onSynapse(t, TestIncomingCase) }
