package cryptoe2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestRequireEncryptionSynapse: with encryption.require, messages in an unencrypted
// bridged room are refused (a failure status each, one notice per room) and never reach
// the module; in an encrypted room they are bridged.
func TestRequireEncryptionSynapse(t *testing.T) {
	h := syn.Get(t)
	st := storetest.Open(t, store.SQLite)
	enc := encryptionOn(time.Minute)
	enc.Require = true
	startCore(t, h, st, testmodule.Config{}, enc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	alice := newCryptoUser(t, h, "alice")
	ghost := id.NewUserID(testmodule.GhostPrefix+"sink", domain)
	resp, err := alice.Mautrix().CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{ghost}})
	if err != nil {
		t.Fatal(err)
	}
	plain := resp.RoomID
	matrixtest.WaitFor(t, time.Minute, "the ghost joins the plaintext room", func() (bool, error) {
		return matrixtest.IsJoined(ctx, alice.Mautrix(), plain, ghost)
	})
	for _, body := range []string{"plain one", "plain two"} {
		if _, err := alice.Send(ctx, plain, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	var notices []string
	matrixtest.WaitFor(t, time.Minute, "a notice in the plaintext room", func() (bool, error) {
		evts, err := matrixtest.RoomEvents(ctx, alice.Mautrix(), plain, event.EventMessage)
		notices = matrixtest.Bodies(evts, ghost)
		return len(notices) > 0, err
	})
	encrypted := encryptedPortal(t, alice, "sink")
	if _, err := alice.Send(ctx, encrypted, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "secret"}); err != nil {
		t.Fatal(err)
	}
	matrixtest.WaitFor(t, time.Minute, "the encrypted message is bridged", func() (bool, error) {
		return bodiesHandled(t, st, encrypted)["secret"] == 1, nil
	})
	evts, err := matrixtest.RoomEvents(ctx, alice.Mautrix(), plain, event.EventMessage)
	if err != nil {
		t.Fatal(err)
	}
	notices = matrixtest.Bodies(evts, ghost)
	if len(notices) != 1 || !strings.Contains(notices[0], "only bridges encrypted rooms") {
		t.Errorf("notices in the plaintext room: %q, want one about encryption", notices)
	}
	if n := len(bodiesHandled(t, st, plain)); n != 0 {
		t.Errorf("the module got %d plaintext messages", n)
	}
	matrixtest.WaitFor(t, 30*time.Second, "a failure status on each plaintext message", func() (bool, error) {
		statuses, err := matrixtest.RoomEvents(ctx, alice.Mautrix(), plain, event.BeeperMessageStatus)
		return len(statuses) == 2, err
	})
}
