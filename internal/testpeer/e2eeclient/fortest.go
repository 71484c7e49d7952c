package e2eeclient

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
)

// ForTest is New for a test: the client logs warnings to t, t fails when it cannot be set
// up, and it is closed when t ends.
func ForTest(t testing.TB, cli *mautrix.Client, password string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	c, err := New(ctx, cli, password, Options{Log: &log})
	if err != nil {
		t.Fatalf("encrypting client for %s: %v", cli.UserID, err)
	}
	t.Cleanup(c.Close)
	return c
}

// Registrar is a homeserver harness that registers users with a password (Synapse's and
// Dendrite's test peers).
type Registrar interface {
	RegisterUser(ctx context.Context, localpart, password string) (*mautrix.Client, error)
}

// RegisterForTest registers localpart on hs, sets its display name when one is given and
// returns its encrypting client (ForTest).
func RegisterForTest(t testing.TB, hs Registrar, localpart, displayName string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	password := "pw-" + localpart
	cli, err := hs.RegisterUser(ctx, localpart, password)
	if err != nil {
		t.Fatal(err)
	}
	if displayName != "" {
		if err := cli.SetDisplayName(ctx, displayName); err != nil {
			t.Fatal(err)
		}
	}
	return ForTest(t, cli, password)
}
