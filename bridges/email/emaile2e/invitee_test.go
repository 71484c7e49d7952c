package emaile2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

// TestUnknownInvitee: a mailbox whose invite list names a user of the homeserver who does
// not exist (a typo) does not start; its status names the user and no room is made.
// Dendrite refuses such a room by itself; Synapse would make it and invite the user
// without a word, so the bridge looks the user up first.
func TestUnknownInvitee(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	nobody := "@" + unique("nobody-") + ":" + domain
	box.Invite = append(box.Invite, nobody)
	bridge, err := email.New(email.Config{Mailboxes: []email.MailboxConfig{box}})
	if err != nil {
		t.Fatal(err)
	}
	_, ctx := sbcore.Start(t, sbcore.Options{
		Registration: onHS.Reg, HomeserverURL: onHS.URL, Domain: domain, ASPort: onHS.ASPort,
		Store: storetest.Open(t, store.SQLite), Modules: []appservice.Module{bridge}, Version: "emaile2e", LogLevel: zerolog.InfoLevel,
	})
	matrixtest.WaitFor(t, 20*time.Second, "the mailbox's status to name the unknown user", func() (bool, error) {
		return strings.Contains(bridge.Status(ctx).State, nobody), nil
	})
	resp, err := matrixtest.InitialSync(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.Rooms.Invite) + len(resp.Rooms.Join); n != 0 {
		t.Errorf("alice is in or invited to %d rooms, want none: no room without every invitee", n)
	}
}

// TestUnknownInviteeSynapse is TestUnknownInvitee against Synapse.
func TestUnknownInviteeSynapse(t *testing.T) { onSynapse(t, TestUnknownInvitee) }
