package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// The core's log lines about the ping at start (appservice/core.go).
const (
	logPingReceived    = "Ping from the homeserver"
	logPingOK          = "Homeserver reached us through the ping endpoint"
	logPingUnsupported = "Homeserver does not support the appservice ping"
	logPingFailed      = "The homeserver could not reach Switchboard"
	logPingRefused     = "which refused its token: the homeserver and Switchboard hold different hs_token"
)

// TestAppservicePingDendrite: Dendrite v0.13.8 has no POST
// /_matrix/client/v1/appservice/{id}/ping (404 M_UNRECOGNIZED); the core says the check was
// skipped and starts. TestAppservicePingSynapse is the same test on Synapse.
func TestAppservicePingDendrite(t *testing.T) {
	testAppservicePing(t, onHS(t, homeserver.Dendrite))
}

// testAppservicePing starts the core, which asks the homeserver to ping it (spec v1.7), and
// checks what the core reports. Where the homeserver has the endpoint (Synapse) the ping
// must reach the core's POST /_matrix/app/v1/ping with the transaction ID the core chose,
// a ping the test asks for must too, and a ping the core refuses (a wrong homeserver token)
// must be reported as an error naming the registration's URL.
func testAppservicePing(t *testing.T, h homeserver.HS) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs logBuffer
	startCore(t, h, openStore(t, store.SQLite), coreOptions{log: &logs, debug: true})
	out := logs.String()
	cli, err := mautrix.NewClient(h.BaseURL(), id.NewUserID(h.Reg().SenderLocalpart, domain), h.Reg().AppToken)
	if err != nil {
		t.Fatal(err)
	}
	switch h.Kind() {
	case homeserver.Dendrite:
		t.Logf("%s: the core reports %q", h.Kind(), logPingUnsupported)
		if !strings.Contains(out, logPingUnsupported) {
			t.Errorf("the core's log does not say the ping is unsupported:\n%s", out)
		}
		_, err := cli.AppservicePing(ctx, h.Reg().ID, "e2e-ping")
		var httpErr mautrix.HTTPError
		if !errors.As(err, &httpErr) || httpErr.Response == nil || httpErr.Response.StatusCode != http.StatusNotFound {
			t.Errorf("Dendrite answered the ping with %v; the test expects 404 (no ping endpoint in v0.13.8)", err)
		}
		t.Log("Dendrite differs from Synapse: no appservice ping endpoint, so the core cannot check that the homeserver reaches it")
	default:
		for _, want := range []string{logPingReceived, `"ping_txn_id":"switchboard-startup"`, logPingOK, `"duration_ms"`} {
			if !strings.Contains(out, want) {
				t.Errorf("the core's log lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, logPingFailed) || strings.Contains(out, logPingRefused) || strings.Contains(out, logPingUnsupported) {
			t.Errorf("the core reports a failed or unsupported ping:\n%s", out)
		}
		resp, err := cli.AppservicePing(ctx, h.Reg().ID, "e2e-ping")
		if err != nil {
			t.Fatalf("ping through %s: %v", h.Kind(), err)
		}
		waitFor(t, 5*time.Second, "the test's ping in the core's log", func() (bool, error) {
			return strings.Contains(logs.String(), `"ping_txn_id":"e2e-ping"`), nil
		})
		t.Logf("%s pinged the core at start and again on request (%d ms)", h.Kind(), resp.DurationMS)
	}
}

// testAppservicePingRefused starts a core whose registration has another homeserver token:
// the core refuses the homeserver's ping (403), the homeserver answers the core's ping
// request with 502 M_BAD_STATUS and the status 403, and the core reports that the two
// sides hold different hs_token (before, it said only that the homeserver could not reach
// it).
func testAppservicePingRefused(t *testing.T, h homeserver.HS) {
	var logs logBuffer
	reg := *h.Reg()
	reg.ServerToken = "not-the-homeservers-token"
	startCore(t, h, openStore(t, store.SQLite), coreOptions{log: &logs, registration: &reg})
	out := logs.String()
	for _, want := range []string{logPingRefused, "Rejected request with a wrong homeserver token", reg.URL} {
		if !strings.Contains(out, want) {
			t.Errorf("the core's log lacks %q:\n%s", want, out)
		}
	}
}
