// Package homeserver lets an end-to-end test run the same code against either test
// homeserver, Dendrite (internal/testpeer/dendrite) or Synapse (internal/testpeer/synapse),
// each started with one Switchboard registration. It is imported by tests only.
//
//	hs, err := homeserver.Start(ctx, homeserver.Synapse, t.TempDir(), as)
//	alice := hs.NewUser(t, "alice")
package homeserver

import (
	"context"
	"fmt"
	"testing"

	"maunium.net/go/mautrix"
	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/synapse"
)

// Kind names a homeserver implementation.
type Kind string

// The homeservers the tests run against.
const (
	Dendrite Kind = "dendrite"
	Synapse  Kind = "synapse"
)

// Kinds lists every homeserver, Dendrite first.
var Kinds = []Kind{Dendrite, Synapse}

// HS is a running homeserver with one Switchboard registration.
type HS interface {
	// Kind says which homeserver this is.
	Kind() Kind
	// BaseURL is the client-server API base URL, http://127.0.0.1:PORT.
	BaseURL() string
	// Domain is the server name ("localhost").
	Domain() string
	// RegPath is the path of the registration file the homeserver loaded.
	RegPath() string
	// Reg is that registration.
	Reg() *mas.Registration
	// AppservicePort is the free port of 127.0.0.1 the registration points to.
	AppservicePort() int
	// NewUser registers a user whose localpart starts with prefix; it fails t on error.
	NewUser(t testing.TB, prefix string) *mautrix.Client
	// RegisterUser registers a user and returns its logged-in client.
	RegisterUser(ctx context.Context, localpart, password string) (*mautrix.Client, error)
	// Stop stops the homeserver; final and idempotent.
	Stop() error
	// Restart stops the homeserver and starts it again with the same data and port.
	Restart(ctx context.Context) error
	// LogTail returns the last n lines of the homeserver's log.
	LogTail(n int) string
}

// Start starts a homeserver of kind in dir/<kind> with the Switchboard registration of as
// saved in dir/registration.yaml (see dendrite.StartWithAppservice and
// synapse.StartWithAppservice; on Synapse the registration also carries the MSC3202 and
// MSC4190 keys).
func Start(ctx context.Context, kind Kind, dir string, as dendrite.Appservice) (HS, error) {
	switch kind {
	case Dendrite:
		hs, err := dendrite.StartWithAppservice(ctx, dir, as)
		if err != nil {
			return nil, err
		}
		return dendriteHS{hs}, nil
	case Synapse:
		hs, err := synapse.StartWithAppservice(ctx, dir, as)
		if err != nil {
			return nil, err
		}
		return synapseHS{hs}, nil
	default:
		return nil, fmt.Errorf("homeserver: unknown kind %q", kind)
	}
}

// Available reports why a homeserver of kind cannot run here, or nil if it can.
func Available(kind Kind) error {
	switch kind {
	case Dendrite:
		return dendrite.Available()
	case Synapse:
		return synapse.Available()
	default:
		return fmt.Errorf("homeserver: unknown kind %q", kind)
	}
}

// RequireOrSkip skips t when a homeserver of kind cannot run here, or fails t when
// SWITCHBOARD_REQUIRE_PEERS=1.
func RequireOrSkip(t testing.TB, kind Kind) {
	t.Helper()
	peerproc.RequireOrSkip(t, string(kind), Available(kind))
}

// dendriteHS adapts a dendrite.Homeserver.
type dendriteHS struct{ *dendrite.Homeserver }

func (h dendriteHS) Kind() Kind             { return Dendrite }
func (h dendriteHS) BaseURL() string        { return h.URL }
func (h dendriteHS) Domain() string         { return h.ServerName }
func (h dendriteHS) RegPath() string        { return h.RegistrationPath }
func (h dendriteHS) Reg() *mas.Registration { return h.Registration }
func (h dendriteHS) AppservicePort() int    { return h.ASPort }

// synapseHS adapts a synapse.Homeserver.
type synapseHS struct{ *synapse.Homeserver }

func (h synapseHS) Kind() Kind             { return Synapse }
func (h synapseHS) BaseURL() string        { return h.URL }
func (h synapseHS) Domain() string         { return h.ServerName }
func (h synapseHS) RegPath() string        { return h.RegistrationPath }
func (h synapseHS) Reg() *mas.Registration { return h.Registration }
func (h synapseHS) AppservicePort() int    { return h.ASPort }
