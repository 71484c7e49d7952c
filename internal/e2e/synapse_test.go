package e2e

import (
	"testing"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// The tests on Synapse, each the same body as its Dendrite counterpart. `go test
// ./internal/e2e -run Synapse` runs exactly these. This file sorts last in the package, so
// they run after every Dendrite test and Synapse starts once, at the first of them (see
// homeservers_test.go).

// synapseCrashLoad is the load of TestCrashKill9Synapse: the same kills as on Dendrite
// with fewer messages, as Synapse takes a client's messages slower (on the shared 2-core
// test machine 1000 took about 100 s, 300 took 24 to 44 s), and the package must stay well
// under 5 minutes; all four kills still fall while messages flow both ways. The other
// Synapse tests are the ones that show what Dendrite cannot (ping, ephemeral events, the
// retry and backlog of Synapse's recoverer) and the core's main paths; the access control
// test passes on Synapse too (testAccessControl) but is left to Dendrite for time.
var synapseCrashLoad = crashLoad{events: 200, remote: 200, kills: 4}

// TestAppservicePingSynapse: Synapse answers the core's POST
// /_matrix/client/v1/appservice/{id}/ping by calling the core's POST /_matrix/app/v1/ping
// with the core's transaction ID; the core reports the homeserver reached it.
func TestAppservicePingSynapse(t *testing.T) {
	h := onHS(t, homeserver.Synapse)
	t.Run("reached", func(t *testing.T) { testAppservicePing(t, h) })
	t.Run("refused", func(t *testing.T) { testAppservicePingRefused(t, h) })
}

// TestManagementBotStatusSynapse: a DM with the management bot and its status answer.
func TestManagementBotStatusSynapse(t *testing.T) {
	testManagementBotStatus(t, onHS(t, homeserver.Synapse))
}

// TestEphemeralRoutingSynapse: typing, a read receipt and presence reach the test module
// through the core.
func TestEphemeralRoutingSynapse(t *testing.T) {
	testEphemeralRouting(t, onHS(t, homeserver.Synapse))
}

// TestAuthenticatedMediaSynapse: upload through the Intent, download through
// /_matrix/client/v1/media with a token.
func TestAuthenticatedMediaSynapse(t *testing.T) {
	testAuthenticatedMedia(t, onHS(t, homeserver.Synapse))
}

// TestTransactionRetrySynapse: after the core answers 500, Synapse retries the same
// transaction ID and every event arrives exactly once.
func TestTransactionRetrySynapse(t *testing.T) {
	testTransactionRetry(t, onHS(t, homeserver.Synapse))
}

// TestBacklogAfterRestartSynapse: Synapse backed off while Switchboard was down; the
// ping at start makes it deliver the backlog at once.
func TestBacklogAfterRestartSynapse(t *testing.T) {
	testBacklogAfterRestart(t, onHS(t, homeserver.Synapse))
}

// TestLostMessageNoticeSynapse: an event over 64 KiB, which Synapse refuses with 413
// M_TOO_LARGE (Dendrite: 413 M_BAD_JSON), gets the lost-message notice.
func TestLostMessageNoticeSynapse(t *testing.T) {
	testLostMessageNotice(t, onHS(t, homeserver.Synapse))
}

// TestGhostsAndExactlyOnceSendSynapse: ghost profiles, a DM, and the resend after a crash
// deduplicated by Synapse's transaction IDs or found in the room.
func TestGhostsAndExactlyOnceSendSynapse(t *testing.T) {
	testGhostsAndExactlyOnceSend(t, onHS(t, homeserver.Synapse))
}

// TestMatrixSideForModulesSynapse: what a bridge does as its ghost, on Synapse.
func TestMatrixSideForModulesSynapse(t *testing.T) {
	testMatrixSideForModules(t, onHS(t, homeserver.Synapse))
}

// TestCrashKill9Synapse: the kill -9 test on Synapse, on SQLite and PostgreSQL.
func TestCrashKill9Synapse(t *testing.T) {
	testCrashKill9(t, onHS(t, homeserver.Synapse), synapseCrashLoad)
}

// TestProvisioningBinarySynapse: the provisioning API of the real binary with a Synapse
// user's OpenID token.
func TestProvisioningBinarySynapse(t *testing.T) {
	testProvisioningBinary(t, onHS(t, homeserver.Synapse))
}
