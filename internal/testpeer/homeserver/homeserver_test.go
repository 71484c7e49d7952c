package homeserver

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/registration"
)

// TestStart starts each homeserver with a registration and checks what HS reports, that a
// user can be registered and that a restart keeps the user.
func TestStart(t *testing.T) {
	for _, kind := range Kinds {
		t.Run(string(kind), func(t *testing.T) {
			RequireOrSkip(t, kind)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			hs, err := Start(ctx, kind, t.TempDir(), dendrite.Appservice{
				ID: "switchboard", Ephemeral: true,
				Namespaces: map[string]registration.Namespaces{
					"test": {Users: []registration.Pattern{{Localpart: "_test_.+", Exclusive: true}}},
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := hs.Stop(); err != nil {
					t.Error(err)
				}
			}()
			if hs.Kind() != kind || hs.Domain() != "localhost" || hs.BaseURL() == "" || hs.RegPath() == "" ||
				hs.AppservicePort() == 0 || hs.Reg() == nil || hs.Reg().ID != "switchboard" {
				t.Fatalf("kind %q domain %q url %q reg %q port %d", hs.Kind(), hs.Domain(), hs.BaseURL(), hs.RegPath(), hs.AppservicePort())
			}
			if got := hs.Reg().MSC3202 && hs.Reg().MSC4190; got != (kind == Synapse) {
				t.Errorf("MSC3202/MSC4190 in the registration = %v on %s", got, kind)
			}
			alice := hs.NewUser(t, "alice")
			if err := hs.Restart(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := alice.Whoami(ctx); err != nil {
				t.Fatalf("alice after restart: %v\n%s", err, hs.LogTail(20))
			}
		})
	}
}

// TestUnknownKind: an unknown kind is an error, not a panic or a default.
func TestUnknownKind(t *testing.T) {
	if err := Available("conduit"); err == nil {
		t.Error("Available(conduit) = nil")
	}
	if _, err := Start(context.Background(), "conduit", t.TempDir(), dendrite.Appservice{ID: "x"}); err == nil {
		t.Error("Start(conduit) = nil error")
	}
}
