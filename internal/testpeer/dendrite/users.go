package dendrite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"maunium.net/go/mautrix"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// RegisterUser registers a normal user through open registration (/register with the
// m.login.dummy flow) and returns a client logged in as that user.
func (s *Server) RegisterUser(ctx context.Context, localpart, password string) (*mautrix.Client, error) {
	cli, err := mautrix.NewClient(s.URL, "", "")
	if err != nil {
		return nil, fmt.Errorf("dendrite: failed to create client: %w", err)
	}
	resp, err := cli.RegisterDummy(ctx, &mautrix.ReqRegister[any]{
		Username:                 localpart,
		Password:                 password,
		InitialDeviceDisplayName: "switchboard test",
	})
	if err != nil {
		return nil, fmt.Errorf("dendrite: failed to register %q: %w", localpart, err)
	}
	cli.UserID, cli.AccessToken, cli.DeviceID = resp.UserID, resp.AccessToken, resp.DeviceID
	return cli, nil
}

// RegisterAdmin registers a server admin through the shared-secret registration API
// (/_synapse/admin/v1/register) and returns a client logged in as that user.
func (s *Server) RegisterAdmin(ctx context.Context, localpart, password string) (*mautrix.Client, error) {
	cli, err := matrixtest.RegisterWithSecret(ctx, s.URL, s.RegistrationSharedSecret, localpart, password, true)
	if err != nil {
		return nil, fmt.Errorf("dendrite: %w", err)
	}
	return cli, nil
}

var uniqueCounter atomic.Int64

// Unique returns prefix with a suffix unique in the test run (users and rooms outlive
// single tests on a shared homeserver).
func Unique(prefix string) string {
	return fmt.Sprintf("%s%d%d", prefix, time.Now().UnixNano()%1e6, uniqueCounter.Add(1))
}

// NewUser registers a new user whose localpart starts with prefix and returns its client;
// it fails t when that does not work.
func (s *Server) NewUser(t testing.TB, prefix string) *mautrix.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := Unique(prefix)
	cli, err := s.RegisterUser(ctx, name, "password-"+name)
	if err != nil {
		t.Fatal(err)
	}
	return cli
}
