package emaile2e

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestMailMinorFixes covers the minor items of issue 10 item 9, each reproduced:
// a DSN-shaped mail that is about no mail the room sent was shown by the bot as a bounce
// with its sender hidden (now an ordinary mail from its sender); a file name with a
// right-to-left override kept it; the Date header set the event time without a word in
// the docs (now documented, and date_as_event_time: false turns it off, see
// TestMailDateOff); SMTP with a private CA needed insecure_skip_verify (now ca_file); an
// inline image shown in the HTML is not posted again as a file, as the docs now say.
func TestMailMinorFixes(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, smtpd.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	box.SMTP.InsecureSkipVerify, box.SMTP.CAFile = false, caFile // the peer's certificate is valid for 127.0.0.1
	startBridge(t, nil, box)
	room := acceptInvite(t, alice)
	daemon := ghostOf(t, "MAILER-DAEMON@evil.test")
	bob := ghostOf(t, "bob@ext.test")
	bot := id.NewUserID("switchboard", domain)

	t.Run("a DSN about no mail of the room is an ordinary mail with its sender", func(t *testing.T) {
		dsn := "From: MAILER-DAEMON@evil.test\nTo: " + box.Address + "\nSubject: Undelivered Mail\nMessage-ID: <fake-dsn." + box.Name + "@evil.test>\n" +
			"MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n--B\nContent-Type: text/plain\n\n" +
			"Your mail bounced. Log in at https://evil.test/login to see why.\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; evil.test\n\n" +
			"Final-Recipient: rfc822; someone@ext.test\nAction: failed\nStatus: 5.1.1\n\n--B\nContent-Type: text/rfc822-headers\n\nMessage-ID: <never-sent@box.test>\n\n--B--\n"
		if err := dc.Deliver(ctx, box.Address, crlf(dsn)); err != nil {
			t.Fatal(err)
		}
		e := waitEvent(t, alice, room, "the fake report as a mail from its sender", func(e *event.Event) bool {
			return strings.Contains(e.Content.AsMessage().Body, "Log in at https://evil.test/login")
		})
		if e.Sender != daemon || isNotice(e) || !strings.HasPrefix(e.Content.AsMessage().Body, "[automatic mail] Undelivered Mail") {
			t.Errorf("the fake report was posted by %s (notice %t) as %q; want a marked mail from its sender's ghost", e.Sender, isNotice(e), e.Content.AsMessage().Body)
		}
	})

	var htmlRoot *event.Event
	t.Run("attachment names lose bidi overrides; inline images are shown in place only", func(t *testing.T) {
		png := base64.StdEncoding.EncodeToString(tinyPNG)
		raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: Rechnung\nDate: Sun, 29 Nov 2026 10:00:00 +0100\nMessage-ID: <bidi1." + box.Name + "@ext.test>\n" +
			"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"M\"\n\n--M\n" +
			"Content-Type: multipart/related; boundary=\"R\"\n\n--R\nContent-Type: text/html; charset=utf-8\n\n<p>Logo: <img src=\"cid:logo@x\" alt=\"logo\"></p>\n" +
			"--R\nContent-Type: image/png\nContent-ID: <logo@x>\nContent-Transfer-Encoding: base64\n\n" + png + "\n--R--\n" +
			"--M\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename*=UTF-8''Rechnung%E2%80%AEfdp.exe\n" +
			"Content-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA\n--M--\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		htmlRoot = waitEvent(t, alice, room, "the mail", func(e *event.Event) bool {
			return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Rechnung")
		})
		if want := time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC).UnixMilli(); htmlRoot.Timestamp != want {
			t.Errorf("event time %d, want the Date header's %d", htmlRoot.Timestamp, want)
		}
		if !strings.Contains(htmlRoot.Content.AsMessage().FormattedBody, `src="mxc://`) {
			t.Errorf("the inline image is not shown in place: %q", htmlRoot.Content.AsMessage().FormattedBody)
		}
		file := waitEvent(t, alice, room, "the attachment", func(e *event.Event) bool {
			return e.Sender == bob && threadRoot(e) == htmlRoot.ID && e.Content.AsMessage().URL != ""
		})
		if name := file.Content.AsMessage().Body; name != "Rechnungfdp.exe" {
			t.Errorf("attachment name %q, want %q without U+202E", name, "Rechnungfdp.exe")
		}
		time.Sleep(2 * time.Second) // a file for the inline image would follow the attachment at once
		evts, err := matrixtest.RoomMessages(ctx, alice, room)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evts {
			if threadRoot(e) == htmlRoot.ID && e.Content.AsMessage().MsgType == event.MsgImage {
				t.Errorf("the inline image shown in the HTML was posted again as a file: %s", e.ID)
			}
		}
	})

	t.Run("SMTP over STARTTLS verified with ca_file, 550 with its enhanced code", func(t *testing.T) {
		ok := reply(t, alice, room, htmlRoot.ID, "Danke.")
		if sent := sentWith(t, "X-Switchboard-Event: "+ok.String()); !sent.TLS {
			t.Error("the reply was not sent over TLS")
		}
		if err := smtpd.RejectRecipients("bob@ext.test"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = smtpd.RejectRecipients("") }()
		refused := reply(t, alice, room, htmlRoot.ID, "Und noch etwas.")
		waitEvent(t, alice, room, "the failure notice with 550 5.1.1", func(e *event.Event) bool {
			c := e.Content.AsMessage()
			return isNotice(e) && e.Sender == bot && c.RelatesTo != nil && c.RelatesTo.InReplyTo != nil && c.RelatesTo.InReplyTo.EventID == refused &&
				strings.Contains(c.Body, "the mail server refused it (550 5.1.1 ")
		})
	})
}

// TestMailDateOff: with date_as_event_time: false, an event's time is when the mail was
// bridged, not its Date header.
func TestMailDateOff(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	off := false
	box.DateAsEventTime = &off
	startBridge(t, nil, box)
	room := acceptInvite(t, alice)
	raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: Old\nDate: Mon, 1 Jan 2001 10:00:00 +0000\nMessage-ID: <old1." + box.Name + "@ext.test>\n\nold\n"
	if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, alice, room, "the mail", func(e *event.Event) bool {
		return e.Sender == ghostOf(t, "bob@ext.test") && strings.HasPrefix(e.Content.AsMessage().Body, "Old")
	})
	if age := time.Since(time.UnixMilli(e.Timestamp)); age > time.Hour || age < -time.Hour {
		t.Errorf("event time %s, want about now", time.UnixMilli(e.Timestamp))
	}
}
