package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/testmodule"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/homeserver"
)

// TestLostMessageNoticeOnDendrite (issue 10, item 6): a module's message over Matrix's
// 64 KiB event limit, which Dendrite refuses (413 M_BAD_JSON), is not lost in silence: the room gets a notice
// from the sending ghost that names the kind and size of what is missing and the error
// code, never the body. TestLostMessageNoticeSynapse is the same test on Synapse.
func TestLostMessageNoticeOnDendrite(t *testing.T) {
	testLostMessageNotice(t, onHS(t, homeserver.Dendrite))
}

// tooLargeCode is the error code each homeserver gives an event over 64 KiB, with status
// 413 on both; the core's notice calls a 413 "too large" whatever the code (lost.go).
var tooLargeCode = map[homeserver.Kind]string{homeserver.Dendrite: "M_BAD_JSON", homeserver.Synapse: "M_TOO_LARGE"}

func testLostMessageNotice(t *testing.T, h homeserver.HS) {
	forDialects(t, func(t *testing.T, dialect store.Dialect) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		st := openStore(t, dialect)
		p := startInProcess(t, h, st, testmodule.Config{})
		host := p.tm.Host()
		carol, err := host.Ghost(testmodule.GhostPrefix + "carol_" + string(dialect))
		if err != nil {
			t.Fatal(err)
		}
		alice := newUser(t, h, "alice")
		room, err := carol.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{alice.UserID}, IsDirect: true, Preset: "trusted_private_chat"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.JoinRoomByID(ctx, room); err != nil {
			t.Fatal(err)
		}
		secret := "PATIENT-DATA " + strings.Repeat("lorem ipsum ", 7000) // ~82 KiB
		_, err = host.Send(ctx, appservice.Message{RoomID: room, Sender: carol.UserID(), RemoteID: "too-big",
			Content: &event.MessageEventContent{MsgType: event.MsgText, Body: secret}})
		if !errors.Is(err, appservice.ErrSendFailed) {
			t.Fatalf("Send of an 82 KiB event = %v, want ErrSendFailed", err)
		}
		var notice string
		waitFor(t, 30*time.Second, "the notice about the lost message", func() (bool, error) {
			msgs, err := roomMessages(ctx, alice, room)
			if err != nil {
				return false, err
			}
			for _, b := range bodies(msgs, carol.UserID()) {
				if strings.Contains(b, "could not be posted") {
					notice = b
					return true, nil
				}
			}
			return false, nil
		})
		for _, want := range []string{"A message (" + testmodule.ID + ", ", "KiB", "the homeserver refuses events this large (" + tooLargeCode[h.Kind()] + ")"} {
			if !strings.Contains(notice, want) {
				t.Errorf("notice %q lacks %q", notice, want)
			}
		}
		t.Logf("%s: the notice says %q", h.Kind(), notice)
		if strings.Contains(notice, "PATIENT") || strings.Contains(notice, "lorem") {
			t.Errorf("the notice shows the lost body: %q", notice)
		}
	})
}
