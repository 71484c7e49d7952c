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
