package synapse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"maunium.net/go/mautrix"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// RegisterUser registers a normal user through the shared-secret registration API
// (/_synapse/admin/v1/register; open registration is off) and returns a client logged in
// as that user.
func (s *Server) RegisterUser(ctx context.Context, localpart, password string) (*mautrix.Client, error) {
	return RegisterWithSecret(ctx, s.URL, s.RegistrationSharedSecret, localpart, password, false)
}

// RegisterAdmin registers a server admin through the shared-secret registration API and
// returns a client logged in as that user.
func (s *Server) RegisterAdmin(ctx context.Context, localpart, password string) (*mautrix.Client, error) {
	return RegisterWithSecret(ctx, s.URL, s.RegistrationSharedSecret, localpart, password, true)
}

// RegisterWithSecret registers a user at the Synapse at baseURL through the shared-secret
// registration API with secret and returns a client logged in as that user. An existing
// user gives an error wrapping mautrix.MUserInUse.
func RegisterWithSecret(ctx context.Context, baseURL, secret, localpart, password string, admin bool) (*mautrix.Client, error) {
	cli, err := matrixtest.RegisterWithSecret(ctx, baseURL, secret, localpart, password, admin)
	if err != nil {
		return nil, fmt.Errorf("synapse: %w", err)
	}
	return cli, nil
}

// NewUser registers a new user whose localpart starts with prefix (made unique with
// dendrite.Unique) and returns its client; it fails t when that does not work.
func (s *Server) NewUser(t testing.TB, prefix string) *mautrix.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := dendrite.Unique(prefix)
	cli, err := s.RegisterUser(ctx, name, "password-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return cli
}
