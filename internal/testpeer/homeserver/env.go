package homeserver

import (
	"testing"

	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
)

// Env is what an end-to-end package's helpers use of the homeserver of the running test,
// one that knows the package's registration. A package keeps one in a variable, set to its
// Dendrite by TestMain (DendriteEnv) and swapped for its Synapse by the Synapse variants of
// its tests (Use).
type Env struct {
	// Kind says which homeserver this is.
	Kind Kind
	// URL is the client-server API base URL.
	URL string
	// Reg is the package's registration as the homeserver loaded it.
	Reg *mas.Registration
	// ASPort is the port of 127.0.0.1 the registration points to.
	ASPort int
	// NewUser registers a user whose localpart starts with prefix; it fails t on error.
	NewUser func(t testing.TB, prefix string) *mautrix.Client
}

// EnvOf is the Env of h.
func EnvOf(h HS) Env {
	return Env{Kind: h.Kind(), URL: h.BaseURL(), Reg: h.Reg(), ASPort: h.AppservicePort(), NewUser: h.NewUser}
}

// DendriteEnv is the Env of a Dendrite started with dendrite.StartWithAppservice.
func DendriteEnv(h *dendrite.Homeserver) Env { return EnvOf(dendriteHS{h}) }

// Env is the Env of the lazily started homeserver (see Get: it may skip or fail t).
func (l *Lazy) Env(t *testing.T) Env {
	t.Helper()
	return EnvOf(l.Get(t))
}

// Use runs test with l's homeserver as the test's homeserver: it sets *cur to l.Env(t) and
// restores it when t ends. The restore is registered before test's own cleanups, so it runs
// after them (a core stopped by a cleanup still sees l's homeserver). Without the
// homeserver it skips t, or fails it when SWITCHBOARD_REQUIRE_PEERS=1. Tests using cur must
// not run in parallel.
//
//	func TestConversationSynapse(t *testing.T) { homeserver.Use(t, &syn, &onHS, TestConversation) }
func Use(t *testing.T, l *Lazy, cur *Env, test func(t *testing.T)) {
	t.Helper()
	env := l.Env(t)
	prev := *cur
	*cur = env
	t.Cleanup(func() { *cur = prev })
	test(t)
}
