package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// testBacklogAfterRestart: Switchboard is down while a user writes; Synapse's transaction
// fails and its recoverer backs off (2 s, 4 s, 8 s ... up to 512 s). When Switchboard
// starts again, its ping at start (POST /_matrix/client/v1/appservice/{id}/ping) makes
// Synapse retry at once (synapse/rest/client/appservice_ping.py calls the recoverer's
// force_retry after a successful ping), so the backlog arrives within seconds, not at the
// end of the backoff. Dendrite has no ping endpoint; its own retry schedule applies there.
func testBacklogAfterRestart(t *testing.T, h homeserver.HS) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := openStore(t, store.SQLite)
	p := startInProcess(t, h, st, testmodule.Config{})
	alice := newUser(t, h, "backlog")
	ghost := id.NewUserID(testmodule.GhostPrefix+"backlog", domain)
	resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "public_chat", Invite: []id.UserID{ghost}})
	if err != nil {
		t.Fatal(err)
	}
	room := resp.RoomID
	waitFor(t, 30*time.Second, "the ghost to join", func() (bool, error) { return isJoined(ctx, alice, room, ghost) })
	p.stop(t)

	// Synapse logs each schedule of its recoverer; wait for one more 8 s schedule than the
	// log shows now: Synapse has failed twice and retries 8 s later.
	want := fmt.Sprintf("Scheduling retries on %s in 8.", h.Reg().ID)
	before := strings.Count(h.LogTail(2000), want)
	sent, err := alice.SendText(ctx, room, "written while Switchboard is down")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "Synapse's recoverer to back off to 8 s", func() (bool, error) {
		return strings.Count(h.LogTail(2000), want) > before, nil
	})
	start := time.Now()
	p2 := startInProcess(t, h, st, testmodule.Config{})
	var took time.Duration
	waitFor(t, 20*time.Second, "the message written while down at the module", func() (bool, error) {
		eff, err := testmodule.Effects(ctx, p2.st)
		took = time.Since(start)
		return eff[sent.EventID.String()] == 1, err
	})
	t.Logf("%s: the message written while Switchboard was down arrived %s after the restart (the recoverer's next retry was 8 s away)", h.Kind(), took.Round(10*time.Millisecond))
	if took > 5*time.Second {
		t.Errorf("the backlog took %s after the restart: the start's ping did not make Synapse retry at once", took)
	}
}
