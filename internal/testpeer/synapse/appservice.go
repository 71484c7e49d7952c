package synapse

import (
	"context"
	"fmt"
	"path/filepath"

	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/registration"
)

// Homeserver is a Synapse with one appservice registered.
type Homeserver struct {
	*Server
	Registration     *mas.Registration
	RegistrationPath string
	// ASPort is the free port of 127.0.0.1 the registration points the homeserver to.
	ASPort int
}

// Registration returns the registration Switchboard needs on Synapse for as, pointing to
// url: the one registration.Build makes (bot localpart "switchboard", server name
// "localhost") plus MSC3202 (org.matrix.msc3202: device lists and one-time key counts in
// transactions) and MSC4190 (io.element.msc4190: device management by the appservice).
// MSC2409 (receive_ephemeral and de.sorunome.msc2409.push_ephemeral) follows as.Ephemeral.
func Registration(as dendrite.Appservice, url string) (*mas.Registration, error) {
	reg, err := registration.Build(registration.BuildConfig{
		ID: as.ID, URL: url, BotLocalpart: "switchboard",
		Domain: "localhost", Ephemeral: as.Ephemeral, MSC3202: true, MSC4190: true,
	}, as.Namespaces, nil)
	if err != nil {
		return nil, fmt.Errorf("synapse: registration: %w", err)
	}
	return reg, nil
}

// StartWithAppservice builds the registration of as (see Registration) on a free
// appservice port, saves it in dir and starts Synapse with it in dir/synapse.
func StartWithAppservice(ctx context.Context, dir string, as dendrite.Appservice) (*Homeserver, error) {
	port, err := peerproc.FreePort()
	if err != nil {
		return nil, err
	}
	reg, err := Registration(as, fmt.Sprintf("http://127.0.0.1:%d", port))
	if err != nil {
		return nil, err
	}
	regPath := filepath.Join(dir, "registration.yaml")
	if err := registration.Save(regPath, reg); err != nil {
		return nil, fmt.Errorf("synapse: registration: %w", err)
	}
	s, err := Start(ctx, Options{ServerName: "localhost", RegistrationFiles: []string{regPath}, Dir: filepath.Join(dir, "synapse")})
	if err != nil {
		return nil, err
	}
	return &Homeserver{Server: s, Registration: reg, RegistrationPath: regPath, ASPort: port}, nil
}
