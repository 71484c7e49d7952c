package casee2e

import (
	"testing"

	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"
)

// matrixEnv is what the tests' helpers use of a homeserver that knows the package's
// registration.
type matrixEnv struct {
	kind    string
	url     string
	reg     *mas.Registration
	asPort  int
	newUser func(t testing.TB, prefix string) *mautrix.Client
}

// onHS is the homeserver of the running test: the package's Dendrite unless a Synapse
// variant runs (tests run one after the other).
var onHS matrixEnv

// stopSynapse stops the package's Synapse if a test started it.
func stopSynapse() {}
