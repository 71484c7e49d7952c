package emaile2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/clamd/clamdscan"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
)

// The scanning tests run the bridge with a real clamd (internal/testpeer/clamd), whose one
// signature is the EICAR test file. Their assertions and failures name files by name and
// size, never by content.

// scanningOf is the core's scanning with srv over TCP, fail closed, Matrix files going out
// scanned too, and a hold longer than any test.
func scanningOf(srv *clamd.Server) appservice.Scanning {
	return appservice.Scanning{Scanner: clamdscan.Scanner(srv), Outbound: true, Hold: time.Hour}
}

// startScanningBridge starts the in-process core with scanning by srv and the email bridge
// for box, and serves its operator endpoints; it returns their base URL.
func startScanningBridge(t *testing.T, srv *clamd.Server, cfg email.Config) string {
	t.Helper()
	core := startBridgeOpts(t, nil, cfg, sbcore.Options{Scanning: scanningOf(srv)})
	return sbcore.ServeOps(t, core)
}

// mailFile is a file of a test mail: an attachment, or an inline image that the mail's
// HTML shows when cid is set.
type mailFile struct {
	name, contentType string
	data              []byte
	cid               string
}

// fileMail is a mail from bob@ext.test with text and files, base64-encoded. With an inline
// image its text is HTML (multipart/related) that shows the image.
func fileMail(to, msgID, subject, text string, files ...mailFile) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Bob <bob@ext.test>\nTo: %s\nSubject: %s\nMessage-ID: <%s>\nDate: Sun, 29 Nov 2026 10:00:00 +0100\n", to, subject, msgID)
	b.WriteString("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"M\"\n\n--M\n")
	var inline, attached []mailFile
	for _, f := range files {
		if f.cid != "" {
			inline = append(inline, f)
		} else {
			attached = append(attached, f)
		}
	}
	if len(inline) == 0 {
		b.WriteString("Content-Type: text/plain; charset=utf-8\n\n" + text + "\n")
	} else {
		b.WriteString("Content-Type: multipart/related; boundary=\"R\"\n\n--R\nContent-Type: text/html; charset=utf-8\n\n<p>" + text)
		for _, f := range inline {
			fmt.Fprintf(&b, `<img src="cid:%s" alt="%s">`, f.cid, f.name)
		}
		b.WriteString("</p>\n")
		for _, f := range inline {
			fmt.Fprintf(&b, "--R\nContent-Type: %s\nContent-ID: <%s>\nContent-Disposition: inline; filename=%s\nContent-Transfer-Encoding: base64\n\n%s", f.contentType, f.cid, f.name, base64Lines(f.data))
		}
		b.WriteString("--R--\n")
	}
	for _, f := range attached {
		fmt.Fprintf(&b, "--M\nContent-Type: %s; name=%s\nContent-Disposition: attachment; filename=%s\nContent-Transfer-Encoding: base64\n\n%s", f.contentType, f.name, f.name, base64Lines(f.data))
	}
	b.WriteString("--M--\n")
	return crlf(b.String())
}

// base64Lines is data in base64 in lines of 76 characters, each ending in a newline.
func base64Lines(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\n")
	return b.String()
}

// randomBytes is n random bytes: a file that no scanner knows and no other test sends.
func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// sendFile uploads data as the Matrix user and sends it as a file named name in the thread
// of root.
func sendFile(t *testing.T, cli *mautrix.Client, room id.RoomID, root id.EventID, name string, data []byte) id.EventID {
	t.Helper()
	ctx := context.Background()
	up, err := cli.UploadBytes(ctx, data, "application/octet-stream")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.SendMessageEvent(ctx, room, event.EventMessage, &event.MessageEventContent{
		MsgType: event.MsgFile, Body: name, FileName: name, URL: up.ContentURI.CUString(),
		Info: &event.FileInfo{MimeType: "application/octet-stream", Size: len(data)}, RelatesTo: inThread(root),
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID
}

// infectedNotice is the bot's notice of an attachment refused for malware.
func infectedNotice(name, from string) string {
	return fmt.Sprintf("🛡️ The attachment %q from %s was not bridged: the virus scanner found %s in the file %q.", name, from, clamd.Signature, name)
}

// infectedImageNotice is the bot's notice for an inline image the scanner refused.
func infectedImageNotice(name, from string) string {
	return fmt.Sprintf("🛡️ The image %q from %s was not bridged: the virus scanner found %s in the file %q.", name, from, clamd.Signature, name)
}

// noEventCarries fails t if an event of the room that the Matrix user did not send holds
// data: in its content (raw or in base64), or in a file it links to.
func noEventCarries(t *testing.T, cli *mautrix.Client, room id.RoomID, data []byte) {
	t.Helper()
	ctx := context.Background()
	evts, err := matrixtest.RoomEvents(ctx, cli, room)
	if err != nil {
		t.Fatal(err)
	}
	b64 := []byte(base64.StdEncoding.EncodeToString(data))
	files := 0
	for _, e := range evts {
		if e.Sender == cli.UserID {
			continue
		}
		if bytes.Contains(e.Content.VeryRaw, data) || bytes.Contains(e.Content.VeryRaw, b64) {
			t.Errorf("event %s (%s from %s) holds the file", e.ID, e.Type.Type, e.Sender)
		}
		if e.Type != event.EventMessage {
			continue
		}
		c := e.Content.AsMessage()
		if c.URL == "" {
			continue
		}
		uri, err := c.URL.Parse()
		if err != nil {
			continue
		}
		got, err := cli.DownloadBytes(ctx, uri)
		if err != nil {
			t.Errorf("download the file %q of event %s: %v", c.Body, e.ID, err)
			continue
		}
		files++
		if bytes.Contains(got, data) {
			t.Errorf("the file %q (%d bytes) of event %s holds the refused file", c.Body, len(got), e.ID)
		}
	}
	t.Logf("%d events checked, %d of their files downloaded: none holds the refused file", len(evts), files)
}

// waitHeld waits until the core at ops holds n files for the scanner (none: the scanner
// answers and holds nothing).
func waitHeld(t *testing.T, ops string, n int) {
	t.Helper()
	want := fmt.Sprintf("; %d file(s) held", n)
	var last string
	matrixtest.WaitFor(t, 30*time.Second, fmt.Sprintf("the core to hold %d file(s)", n), func() (bool, error) {
		state, err := sbcore.ScannerState(ops)
		last = state
		if n == 0 {
			return strings.HasPrefix(state, "ok") && !strings.Contains(state, "held"), err
		}
		return strings.HasPrefix(state, "unreachable"+want), err
	})
	t.Logf("scanner: %s", strings.SplitN(last, ":", 2)[0])
}

// TestScanInboundEICAR: a mail with a text, a clean attachment and the EICAR test file as
// an attachment reaches the room with its text and the clean file byte for byte; in place of
// the EICAR file the bot's notice names the sender's address, the file and the signature.
// An EICAR inline image is not shown and gets the same notice; the raw file of an oversize
// mail that carries EICAR is not attached. No event, nor a file an event links to, holds
// the EICAR file.
func TestScanInboundEICAR(t *testing.T) {
	ctx := context.Background()
	srv := clamd.StartTest(t, clamd.Options{})
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	startScanningBridge(t, srv, email.Config{Mailboxes: []email.MailboxConfig{box}, MaxMailBytes: 100_000})
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")
	bot := id.NewUserID(onHS.Reg.SenderLocalpart, domain)
	eicar := clamd.EICAR()

	t.Run("attachments", func(t *testing.T) {
		clean := randomBytes(t, 40_000)
		raw := fileMail(box.Address, "scan1."+box.Name+"@ext.test", "Rechnung mit Anhang", "Anbei die Rechnung und das Formular.",
			mailFile{name: "formular.bin", contentType: "application/octet-stream", data: clean},
			mailFile{name: "rechnung.com", contentType: "application/octet-stream", data: eicar})
		if err := dc.Deliver(ctx, box.Address, raw); err != nil {
			t.Fatal(err)
		}
		root := waitEvent(t, alice, room, "the mail", func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Rechnung mit Anhang")
		})
		if !strings.Contains(root.Content.AsMessage().Body, "Anbei die Rechnung und das Formular.") {
			t.Error("the mail's event lacks its text")
		}
		if got := fileIn(t, alice, room, root.ID, "formular.bin", bob); !bytes.Equal(got, clean) {
			t.Errorf("formular.bin: %d bytes in the room are not the %d bytes of the attachment", len(got), len(clean))
		}
		want := infectedNotice("rechnung.com", "Bob <bob@ext.test>")
		notice := waitEvent(t, alice, room, "the notice of the infected attachment", func(e *event.Event) bool {
			return isNotice(e) && e.Content.AsMessage().Body == want
		})
		if notice.Sender != bot || threadRoot(notice) != root.ID {
			t.Errorf("the notice is from %s in thread %q, want from %s in the mail's thread %s", notice.Sender, threadRoot(notice), bot, root.ID)
		}
		if n := countEvents(t, alice, room, func(e *event.Event) bool { return e.Content.AsMessage().Body == "rechnung.com" }); n != 0 {
			t.Errorf("rechnung.com is in the room %d times, want never", n)
		}
	})
	t.Run("inline image", func(t *testing.T) {
		raw := fileMail(box.Address, "scan2."+box.Name+"@ext.test", "Bild im Text", "Siehe Bild:",
			mailFile{name: "bild.png", contentType: "image/png", data: eicar, cid: "bild@ext.test"})
		if err := dc.Deliver(ctx, box.Address, raw); err != nil {
			t.Fatal(err)
		}
		root := waitEvent(t, alice, room, "the mail", func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Bild im Text")
		})
		if html := root.Content.AsMessage().FormattedBody; strings.Contains(html, "mxc://") || strings.Contains(html, "cid:") {
			t.Error("the mail's HTML still shows the infected image (mxc: or cid: source)")
		}
		want := infectedImageNotice("bild.png", "Bob <bob@ext.test>")
		notice := waitEvent(t, alice, room, "the notice of the infected inline image", func(e *event.Event) bool {
			return isNotice(e) && e.Content.AsMessage().Body == want
		})
		if threadRoot(notice) != root.ID {
			t.Errorf("the notice is in thread %q, want the mail's %s", threadRoot(notice), root.ID)
		}
	})
	t.Run("raw file of an oversize mail", func(t *testing.T) {
		// clamd reads the mail and finds the attachment; the raw mail carries it in base64.
		raw := fileMail(box.Address, "scan3."+box.Name+"@ext.test", "Grosse Post", strings.Repeat("Seite um Seite.\n", 8000),
			mailFile{name: "beilage.com", contentType: "application/octet-stream", data: eicar})
		if len(raw) <= 100_000 {
			t.Fatalf("the mail has %d bytes, want more than max_mail_bytes", len(raw))
		}
		if err := dc.Deliver(ctx, box.Address, raw); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("🛡️ The mail was not attached as a file: the virus scanner found %s in the file \"mail.eml\".", clamd.Signature)
		waitEvent(t, alice, room, "the notice that mail.eml was refused", func(e *event.Event) bool {
			return isNotice(e) && e.Sender == bot && e.Content.AsMessage().Body == want
		})
		if n := countEvents(t, alice, room, func(e *event.Event) bool { return e.Content.AsMessage().Body == "mail.eml" }); n != 0 {
			t.Errorf("mail.eml is in the room %d times, want never", n)
		}
	})
	noEventCarries(t, alice, room, eicar)
}

// TestScanOutboundEICAR: the EICAR test file sent from Matrix into a mail's thread sends no
// mail; the Matrix sender gets a failure status on the event and a notice naming the file
// and the signature. The clean text sent after it goes out as a mail, and a clean 1 MiB file
// arrives as an attachment byte for byte.
func TestScanOutboundEICAR(t *testing.T) {
	ctx := context.Background()
	srv := clamd.StartTest(t, clamd.Options{})
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	startScanningBridge(t, srv, email.Config{Mailboxes: []email.MailboxConfig{box}})
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")

	raw := "From: Bob <bob@ext.test>\nTo: " + box.Address + "\nSubject: Unterlagen\nMessage-ID: <out1." + box.Name + "@ext.test>\n\nBitte die Unterlagen schicken.\n"
	if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
		t.Fatal(err)
	}
	root := waitEvent(t, alice, room, "the mail", func(e *event.Event) bool {
		return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Unterlagen")
	})

	eicarEvt := sendFile(t, alice, room, root.ID, "unterlagen.com", clamd.EICAR())
	textEvt := reply(t, alice, room, root.ID, "Die Unterlagen folgen gesondert.")
	sentWith(t, "X-Switchboard-Event: "+textEvt.String())

	want := fmt.Sprintf("⚠️ Your message was not delivered: the virus scanner found %s in the file \"unterlagen.com\".", clamd.Signature)
	waitEvent(t, alice, room, "the failure notice", func(e *event.Event) bool {
		c := e.Content.AsMessage()
		return isNotice(e) && c.Body == want && c.RelatesTo != nil && c.RelatesTo.InReplyTo != nil && c.RelatesTo.InReplyTo.EventID == eicarEvt
	})
	status := waitEvent(t, alice, room, "the failure status", func(e *event.Event) bool {
		rel, _ := e.Content.Raw["m.relates_to"].(map[string]any)
		return e.Type == event.BeeperMessageStatus && rel != nil && rel["event_id"] == eicarEvt.String()
	})
	if s, reason := status.Content.Raw["status"], fmt.Sprint(status.Content.Raw["error"]); s != "FAIL_PERMANENT" || !strings.Contains(reason, clamd.Signature) {
		t.Errorf("status %v with error %q, want FAIL_PERMANENT naming %s", s, reason, clamd.Signature)
	}
	if n := len(mailsWith(t, "X-Switchboard-Event: "+eicarEvt.String())); n != 0 {
		t.Errorf("the EICAR file's event reached the SMTP server as %d mail(s), want none", n)
	}

	big := randomBytes(t, 1<<20)
	fileEvt := sendFile(t, alice, room, root.ID, "daten.bin", big)
	p := parseSent(t, sentWith(t, "X-Switchboard-Event: "+fileEvt.String()))
	if len(p.Attachments) != 1 {
		t.Fatalf("the file's mail has %d attachments, want 1", len(p.Attachments))
	}
	if a := p.Attachments[0]; a.FileName != "daten.bin" || !bytes.Equal(a.Data, big) {
		t.Errorf("attachment %q of %d bytes, want daten.bin with the %d bytes sent", a.FileName, len(a.Data), len(big))
	}

	// No mail of the mailbox carries the EICAR file, in any of its events.
	mails, err := smtpd.Received()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mails {
		if m.From != box.Address {
			continue
		}
		for _, a := range parseSent(t, m).Attachments {
			if bytes.Contains(a.Data, clamd.EICAR()) {
				t.Errorf("the mail %s carries the EICAR file as %q", m.MessageID, a.FileName)
			}
		}
	}
}

// TestScanHeldUntilClamdReturns: while clamd is down (fail closed) a mail's attachment and a
// Matrix file going out are held, not refused: the mail's text is in the room at once, the
// attachment is not, and no mail is sent for the Matrix file. Once clamd is back, both are
// bridged once and byte for byte, without a restart of the bridge.
func TestScanHeldUntilClamdReturns(t *testing.T) {
	ctx := context.Background()
	srv := clamd.StartTest(t, clamd.Options{})
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	ops := startScanningBridge(t, srv, email.Config{Mailboxes: []email.MailboxConfig{box}})
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")

	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	inbound := randomBytes(t, 30_000)
	raw := fileMail(box.Address, "held1."+box.Name+"@ext.test", "Befund in Wartestellung", "Der Befund liegt bei.",
		mailFile{name: "befund.bin", contentType: "application/octet-stream", data: inbound})
	if err := dc.Deliver(ctx, box.Address, raw); err != nil {
		t.Fatal(err)
	}
	isMail := func(e *event.Event) bool {
		return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Befund in Wartestellung")
	}
	// The mail's event is queued before its files are scanned: it does not wait for clamd.
	root := waitEvent(t, alice, room, "the mail's text while clamd is down", isMail)
	waitHeld(t, ops, 1)
	outbound := randomBytes(t, 20_000)
	fileEvt := sendFile(t, alice, room, root.ID, "antwort.bin", outbound)
	waitHeld(t, ops, 2)
	isFile := func(e *event.Event) bool { return e.Content.AsMessage().Body == "befund.bin" }
	if n := countEvents(t, alice, room, isFile); n != 0 {
		t.Fatalf("befund.bin is in the room %d times while clamd is down, want not yet", n)
	}
	if n := len(mailsWith(t, "X-Switchboard-Event: "+fileEvt.String())); n != 0 {
		t.Fatalf("the Matrix file went out as %d mail(s) while clamd is down, want not yet", n)
	}

	begin := time.Now()
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fileIn(t, alice, room, root.ID, "befund.bin", bob); !bytes.Equal(got, inbound) {
		t.Errorf("befund.bin: %d bytes in the room are not the %d bytes of the attachment", len(got), len(inbound))
	}
	p := parseSent(t, sentWith(t, "X-Switchboard-Event: "+fileEvt.String()))
	if len(p.Attachments) != 1 || p.Attachments[0].FileName != "antwort.bin" || !bytes.Equal(p.Attachments[0].Data, outbound) {
		t.Errorf("the Matrix file's mail has %d attachment(s), want antwort.bin with the %d bytes sent", len(p.Attachments), len(outbound))
	}
	t.Logf("both files bridged %s after clamd came back", time.Since(begin).Round(100*time.Millisecond))
	waitHeld(t, ops, 0)
	if n := countEvents(t, alice, room, isMail); n != 1 {
		t.Errorf("the mail is in the room %d times, want 1", n)
	}
	if n := countEvents(t, alice, room, isFile); n != 1 {
		t.Errorf("befund.bin is in the room %d times, want 1", n)
	}
	if n := len(mailsWith(t, "X-Switchboard-Event: "+fileEvt.String())); n != 1 {
		t.Errorf("the Matrix file went out as %d mails, want 1", n)
	}
}
