package emaile2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/smtppeer"
)

// tinyPNG is a 1×1 PNG.
var tinyPNG = []byte{0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1,
	8, 6, 0, 0, 0, 0x1f, 0x15, 0xc4, 0x89, 0, 0, 0, 0x0a, 'I', 'D', 'A', 'T', 0x78, 0x9c, 0x63, 0, 1, 0, 0, 5, 0, 1,
	0x0d, 0x0a, 0x2d, 0xb4, 0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82}

// reply sends text in the thread of root.
func reply(t *testing.T, cli *mautrix.Client, room id.RoomID, root id.EventID, text string) id.EventID {
	t.Helper()
	resp, err := cli.SendMessageEvent(context.Background(), room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: text,
		RelatesTo: &event.RelatesTo{Type: event.RelThread, EventID: root, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: root}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.EventID
}

// sentWith waits for a mail at the SMTP server whose raw text contains marker.
func sentWith(t *testing.T, marker string) smtppeer.Mail {
	t.Helper()
	var found smtppeer.Mail
	matrixtest.WaitFor(t, 30*time.Second, "a mail with "+marker+" at the SMTP server", func() (bool, error) {
		mails, err := smtpd.Received()
		for _, m := range mails {
			if bytes.Contains(m.Raw, []byte(marker)) {
				found = m
				return true, nil
			}
		}
		return false, err
	})
	return found
}

func isNotice(e *event.Event) bool {
	return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgNotice
}

// TestMailFeatures covers an HTML mail with an inline image and an attachment, automatic
// mail, a new mail by command, SMTP 4xx (retried) and 5xx (failure status and notice), a
// bounce shown in its thread, and that the room's own mails are not bridged back.
func TestMailFeatures(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	startBridge(t, nil, box)
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")

	t.Run("html with inline image and attachment", func(t *testing.T) {
		png := base64.StdEncoding.EncodeToString(tinyPNG)
		pdf := base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 test"))
		raw := "From: Bob <bob@ext.test>\nTo: " + box.Address + "\nSubject: Report\nMessage-ID: <html1." + box.Name + "@ext.test>\n" +
			"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"M\"\n\n--M\n" +
			"Content-Type: multipart/related; boundary=\"R\"\n\n--R\nContent-Type: text/html; charset=utf-8\n\n" +
			"<p>See <b>the chart</b>:<img src=\"cid:chart@x\" alt=\"chart\"><script>alert(1)</script><img src=\"http://tracker.example/p.gif\"></p>\n" +
			"--R\nContent-Type: image/png\nContent-ID: <chart@x>\nContent-Transfer-Encoding: base64\n\n" + png + "\n--R--\n" +
			"--M\nContent-Type: application/pdf; name=report.pdf\nContent-Disposition: attachment; filename=report.pdf\nContent-Transfer-Encoding: base64\n\n" + pdf + "\n--M--\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		root := waitEvent(t, alice, room, "the HTML mail", func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Report")
		})
		html := root.Content.AsMessage().FormattedBody
		if !strings.Contains(html, "<b>the chart</b>") || strings.Contains(html, "<script") || strings.Contains(html, "tracker.example") {
			t.Errorf("formatted_body %q: want the bold text, no script, no remote image", html)
		}
		if !strings.Contains(html, `src="mxc://`) {
			t.Errorf("formatted_body %q: want the inline image as an mxc: URI", html)
		}
		for _, name := range []string{"report.pdf"} {
			waitEvent(t, alice, room, "the "+name+" file in the thread", func(e *event.Event) bool {
				c := e.Content.AsMessage()
				return e.Sender == bob && threadRoot(e) == root.ID && c.URL != "" && (c.Body == name || c.Info != nil && c.Info.MimeType == name)
			})
		}
	})
	t.Run("automatic mail is marked", func(t *testing.T) {
		raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: Out of office\nAuto-Submitted: auto-replied\nMessage-ID: <auto1." + box.Name + "@ext.test>\n\nI am away.\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, alice, room, "the marked auto-reply", func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "[automatic mail] Out of office")
		})
	})
	t.Run("a new mail by command, its bounce in its thread, and no echo", func(t *testing.T) {
		cmd, err := alice.SendText(ctx, room, "!mail to=carol@ext.test cc="+box.Address+" subject=Termin\nPasst Dienstag?")
		if err != nil {
			t.Fatal(err)
		}
		sent := sentWith(t, "X-Switchboard-Event: "+cmd.EventID.String())
		if sent.Subject != "Termin" || !strings.Contains(string(sent.Raw), "Passt Dienstag?") {
			t.Errorf("new mail: subject %q", sent.Subject)
		}
		// The SMTP server also delivered it to the mailbox (cc): it must not come back.
		dsn := "From: MAILER-DAEMON@ext.test\nTo: " + box.Address + "\nSubject: Undelivered Mail Returned to Sender\n" +
			"Message-ID: <dsn1." + box.Name + "@ext.test>\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\nThe mail could not be delivered.\n" +
			"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; ext.test\n\nFinal-Recipient: rfc822; carol@ext.test\nAction: failed\nStatus: 5.1.1\n" +
			"Diagnostic-Code: smtp; 550 5.1.1 no such user\n\n--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: " + sent.MessageID + "\nSubject: Termin\n\n--B--\n"
		if err := dc.Deliver(ctx, box.Address, crlf(dsn)); err != nil {
			t.Fatal(err)
		}
		notice := waitEvent(t, alice, room, "the bounce notice", func(e *event.Event) bool {
			return isNotice(e) && strings.Contains(e.Content.AsMessage().Body, "carol@ext.test: failed (5.1.1)")
		})
		if threadRoot(notice) != cmd.EventID {
			t.Errorf("the bounce notice is in thread %q, want the new mail's %s", threadRoot(notice), cmd.EventID)
		}
		evts, err := matrixtest.RoomMessages(ctx, alice, room)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evts {
			if e.Sender != alice.UserID && strings.Contains(e.Content.AsMessage().Body, "Passt Dienstag?") {
				t.Errorf("the room's own mail came back as %s from %s", e.ID, e.Sender)
			}
		}
	})
	t.Run("4xx is retried, 5xx fails the message", func(t *testing.T) {
		raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: Frage\nMessage-ID: <q1." + box.Name + "@ext.test>\n\nNoch da?\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		root := waitEvent(t, alice, room, "the question", func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Frage")
		})
		if err := smtpd.FailNext(1); err != nil {
			t.Fatal(err)
		}
		ok := reply(t, alice, room, root.ID, "Ja, noch da.")
		sentWith(t, "X-Switchboard-Event: "+ok.String())

		if err := smtpd.RejectRecipients("bob@ext.test"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = smtpd.RejectRecipients("") }()
		refused := reply(t, alice, room, root.ID, "Und noch etwas.")
		waitEvent(t, alice, room, "the failure notice", func(e *event.Event) bool {
			c := e.Content.AsMessage()
			return isNotice(e) && c.RelatesTo != nil && c.RelatesTo.InReplyTo != nil && c.RelatesTo.InReplyTo.EventID == refused &&
				strings.Contains(c.Body, "the mail server refused it (550")
		})
		waitEvent(t, alice, room, "the failure status", func(e *event.Event) bool {
			return e.Type == event.BeeperMessageStatus && e.Content.Raw["status"] == "FAIL_PERMANENT"
		})
	})
	t.Run("management: list, pause and resume a mailbox", func(t *testing.T) {
		mgmt := id.NewUserID(onHS.Reg.SenderLocalpart, domain)
		dm := matrixtest.BotDM(t, alice, mgmt)
		if got := matrixtest.BotCommand(t, alice, dm, mgmt, "help"); !strings.Contains(got, "email pause <mailbox>") {
			t.Errorf("help lacks the email commands:\n%s", got)
		}
		if got := matrixtest.BotCommand(t, alice, dm, mgmt, "email list"); !strings.Contains(got, box.Name+"** ("+box.Address+"): connected") {
			t.Errorf("email list: want %s connected:\n%s", box.Name, got)
		}
		if got := matrixtest.BotCommand(t, alice, dm, mgmt, "email pause "+box.Name); !strings.HasPrefix(got, "Paused "+box.Name) {
			t.Fatalf("email pause: %s", got)
		}
		raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: While paused\nMessage-ID: <paused1." + box.Name + "@ext.test>\n\nHello.\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		got := matrixtest.BotCommand(t, alice, dm, mgmt, "email status "+box.Name)
		if !strings.Contains(got, "State: paused") || strings.Contains(got, "pw-"+box.Name) || strings.Contains(got, smtpPass) {
			t.Errorf("email status: want paused and no password:\n%s", got)
		}
		if got := matrixtest.BotCommand(t, alice, dm, mgmt, "email resume "+box.Name); !strings.HasPrefix(got, "Resumed "+box.Name) {
			t.Fatalf("email resume: %s", got)
		}
		waitEvent(t, alice, room, "the mail that came while paused", func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "While paused")
		})
	})
}
