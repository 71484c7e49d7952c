package dendrite

import (
	"context"
	"fmt"
	"path/filepath"

	mas "maunium.net/go/mautrix/appservice"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/peerproc"
	"github.com/switchboard-matrix/switchboard/registration"
)

// Appservice is one Switchboard registration for a test homeserver.
type Appservice struct {
	// ID is the registration's id.
	ID string
	// Ephemeral asks the homeserver for ephemeral events.
	Ephemeral bool
	// Namespaces are the modules' namespaces by module ID (the management bot's included).
	Namespaces map[string]registration.Namespaces
}

// Homeserver is a Dendrite with one appservice registered.
type Homeserver struct {
	*Server
	Registration     *mas.Registration
	RegistrationPath string
	// ASPort is the free port of 127.0.0.1 the registration points the homeserver to.
	ASPort int
}

// StartWithAppservice builds the registration of as (bot localpart "switchboard", server
// name "localhost") on a free appservice port, saves it in dir and starts Dendrite with it
// in dir/dendrite.
func StartWithAppservice(ctx context.Context, dir string, as Appservice) (*Homeserver, error) {
	port, err := peerproc.FreePort()
	if err != nil {
		return nil, err
	}
	reg, err := registration.Build(registration.BuildConfig{
		ID: as.ID, URL: fmt.Sprintf("http://127.0.0.1:%d", port), BotLocalpart: "switchboard",
		Domain: "localhost", Ephemeral: as.Ephemeral,
	}, as.Namespaces, nil)
	if err != nil {
		return nil, fmt.Errorf("dendrite: registration: %w", err)
	}
	regPath := filepath.Join(dir, "registration.yaml")
	if err := registration.Save(regPath, reg); err != nil {
		return nil, fmt.Errorf("dendrite: registration: %w", err)
	}
	s, err := Start(ctx, Options{ServerName: "localhost", RegistrationFiles: []string{regPath}, Dir: filepath.Join(dir, "dendrite")})
	if err != nil {
		return nil, err
	}
	return &Homeserver{Server: s, Registration: reg, RegistrationPath: regPath, ASPort: port}, nil
}
