package e2e

import (
	"context"
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

// TestMatrixSideForModules exercises what a bridge does as its ghost against Dendrite:
// replies, edits, reactions and redactions through the outbox, typing and read receipts,
// and a media upload and download (authenticated media, or the legacy API where the
// homeserver lacks it), checked from a real user's point of view.
// TestMatrixSideForModulesSynapse runs it on Synapse.
func TestMatrixSideForModules(t *testing.T) {
	testMatrixSideForModules(t, onHS(t, homeserver.Dendrite))
}

func testMatrixSideForModules(t *testing.T, h homeserver.HS) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := openStore(t, store.SQLite)
	p := startInProcess(t, h, st, testmodule.Config{})
	host := p.tm.Host()
	bob, err := host.Ghost(testmodule.GhostPrefix + "carol")
	if err != nil {
		t.Fatal(err)
	}
	alice := newUser(t, h, "alice")
	room, err := bob.CreateRoom(ctx, &mautrix.ReqCreateRoom{Invite: []id.UserID{alice.UserID}, IsDirect: true, Preset: "trusted_private_chat"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.JoinRoomByID(ctx, room); err != nil {
		t.Fatal(err)
	}
	send := func(remoteID string, typ event.Type, content any) id.EventID {
		t.Helper()
		eid, err := host.Send(ctx, appservice.Message{RoomID: room, Sender: bob.UserID(), RemoteID: remoteID, Type: typ, Content: content})
		if err != nil {
			t.Fatalf("send %s: %v", remoteID, err)
		}
		return eid
	}
	original := send("m1", event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "original"})

	reply := &event.MessageEventContent{MsgType: event.MsgText, Body: "a reply"}
	reply.RelatesTo = (&event.RelatesTo{}).SetReplyTo(original)
	replyID := send("m2", event.EventMessage, reply)

	edit := &event.MessageEventContent{MsgType: event.MsgText, Body: "edited"}
	edit.SetEdit(original) // the body becomes the "* edited" fallback, m.new_content the edit
	editID := send("m1-edit-1", event.EventMessage, edit)

	reactionID := send("m1-reaction-alice", event.EventReaction, &event.ReactionEventContent{
		RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: original, Key: "👍"}})

	if err := bob.Redact(ctx, room, replyID, "deleted on the remote side", appservice.TxnIDFor(testmodule.ID, "delete-m2")); err != nil {
		t.Fatalf("redact: %v", err)
	}
	if err := bob.Typing(ctx, room, true, 5*time.Second); err != nil {
		t.Errorf("typing: %v", err)
	}
	if err := bob.MarkRead(ctx, room, original); err != nil {
		t.Errorf("read receipt: %v", err)
	}
	if err := bob.SetPresence(ctx, event.PresenceOnline, "bridged"); err != nil {
		t.Logf("presence not accepted by this homeserver (degraded gracefully): %v", err)
	}

	get := func(eid id.EventID) *event.Event {
		t.Helper()
		evt, err := alice.GetEvent(ctx, room, eid)
		if err != nil {
			t.Fatalf("get %s: %v", eid, err)
		}
		_ = evt.Content.ParseRaw(evt.Type)
		return evt
	}
	if got := get(editID).Content.AsMessage(); got.RelatesTo.GetReplaceID() != original || got.NewContent.Body != "edited" {
		t.Errorf("edit relates to %q with new body %q", got.RelatesTo.GetReplaceID(), got.NewContent.Body)
	}
	if got := get(reactionID); got.Type != event.EventReaction || got.Content.AsReaction().RelatesTo.Key != "👍" {
		t.Errorf("reaction = %s %+v", got.Type, got.Content.AsReaction().RelatesTo)
	}
	waitFor(t, 10*time.Second, "the redaction", func() (bool, error) {
		evt, err := alice.GetEvent(ctx, room, replyID)
		if err != nil {
			return false, err
		}
		return len(evt.Content.VeryRaw) <= 2 || evt.Unsigned.RedactedBecause != nil, nil
	})

	data := []byte("a file sent from the remote network")
	mxc, err := bob.UploadMedia(ctx, data, "text/plain", "remote.txt")
	if err != nil {
		t.Fatal(err)
	}
	got, err := bob.DownloadMedia(ctx, mxc, 1<<20)
	if err != nil || string(got) != string(data) {
		t.Fatalf("download = %q, %v", got, err)
	}
	if _, err := bob.DownloadMedia(ctx, mxc, 4); err == nil {
		t.Error("a download over the size limit was accepted")
	}
}
