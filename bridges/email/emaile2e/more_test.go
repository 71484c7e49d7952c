package emaile2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestMailEdges covers a malformed mail (a notice with its raw header), a Matrix file sent
// as an attachment, an attachment over the size limit (a notice instead of the file), and
// a UIDVALIDITY change (the mailbox is read again without posting anything twice).
func TestMailEdges(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	st := storetest.Open(t, store.SQLite)
	core := startBridgeWith(t, st, email.Config{Mailboxes: []email.MailboxConfig{box}, MaxAttachmentBytes: 1024})
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")

	t.Run("malformed mail becomes a notice with its header", func(t *testing.T) {
		raw := "Subject: no sender here\nX-Trace: abc123\n\nbody\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, alice, room, "the notice", func(e *event.Event) bool {
			b := e.Content.AsMessage().Body
			return isNotice(e) && strings.Contains(b, "could not be read") && strings.Contains(b, "X-Trace: abc123")
		})
	})
	var root *event.Event
	t.Run("attachment over the limit becomes a notice", func(t *testing.T) {
		big := strings.Repeat("QUJD", 1000) // 3000 bytes once decoded
		raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: Big\nMessage-ID: <big1." + box.Name + "@ext.test>\nMIME-Version: 1.0\n" +
			"Content-Type: multipart/mixed; boundary=\"M\"\n\n--M\nContent-Type: text/plain\n\nsee attachment\n" +
			"--M\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=big.bin\nContent-Transfer-Encoding: base64\n\n" + big + "\n--M--\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		root = waitEvent(t, alice, room, "the mail", func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Big")
		})
		waitEvent(t, alice, room, "the size notice", func(e *event.Event) bool {
			return isNotice(e) && strings.Contains(e.Content.AsMessage().Body, `"big.bin" is larger than the bridge's limit`)
		})
	})
	t.Run("a Matrix file becomes an attachment", func(t *testing.T) {
		up, err := alice.UploadBytes(ctx, []byte("hello attachment"), "text/plain")
		if err != nil {
			t.Fatal(err)
		}
		content := &event.MessageEventContent{MsgType: event.MsgFile, Body: "notes.txt", FileName: "notes.txt", URL: up.ContentURI.CUString(),
			Info:      &event.FileInfo{MimeType: "text/plain", Size: 16},
			RelatesTo: &event.RelatesTo{Type: event.RelThread, EventID: root.ID, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: root.ID}}}
		resp, err := alice.SendMessageEvent(ctx, room, event.EventMessage, content)
		if err != nil {
			t.Fatal(err)
		}
		sent := sentWith(t, "X-Switchboard-Event: "+resp.EventID.String())
		if !bytes.Contains(sent.Raw, []byte("notes.txt")) || !bytes.Contains(sent.Raw, []byte("aGVsbG8gYXR0YWNobWVudA")) {
			t.Errorf("the mail has no notes.txt attachment with the file's content:\n%s", sent.Raw)
		}
	})
	t.Run("UIDVALIDITY change", func(t *testing.T) {
		stopCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := core.Stop(stopCtx); err != nil {
			t.Fatal(err)
		}
		if err := dc.SetUIDValidity(ctx, box.Address, "INBOX", 4242); err != nil {
			t.Fatal(err)
		}
		raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: After\nMessage-ID: <after1." + box.Name + "@ext.test>\n\nafter the change\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		startBridgeWith(t, st, email.Config{Mailboxes: []email.MailboxConfig{box}, MaxAttachmentBytes: 1024})
		waitEvent(t, alice, room, "the mail after the change", func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "After")
		})
		evts, err := matrixtest.RoomMessages(ctx, alice, room)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evts {
			if e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Big") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("the mail from before the change is in the room %d times, want 1", n)
		}
	})
}
