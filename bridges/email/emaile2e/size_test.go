package emaile2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
)

// longMail is a multipart/alternative mail with about n bytes of text and as much HTML;
// its text ends with the marker "END-<tag>" and its HTML with "HTML-END-<tag>".
func longMail(from, to, msgID, subject, tag string, n int) []byte {
	var text, html strings.Builder
	for i := 0; text.Len() < n; i++ {
		fmt.Fprintf(&text, "Zeile %05d: Sehr geehrte Damen und Herren, anbei die Unterlagen zum Vorgang.\n", i)
		fmt.Fprintf(&html, "<p>Zeile <b>%05d</b>: Sehr geehrte Damen und Herren, anbei die Unterlagen zum Vorgang.</p>\n", i)
	}
	text.WriteString("END-" + tag + "\n")
	html.WriteString("<p>HTML-END-" + tag + "</p>\n")
	return crlf("From: " + from + "\nTo: " + to + "\nSubject: " + subject + "\nMessage-ID: <" + msgID + ">\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/alternative; boundary=\"A\"\n\n--A\nContent-Type: text/plain; charset=utf-8\n\n" + text.String() +
		"--A\nContent-Type: text/html; charset=utf-8\n\n" + html.String() + "--A--\n")
}

// fileIn waits for a file event named name in the thread of root and returns its content.
func fileIn(t *testing.T, cli *mautrix.Client, room id.RoomID, root id.EventID, name string, sender id.UserID) []byte {
	t.Helper()
	var uri id.ContentURI
	waitEvent(t, cli, room, "the file "+name+" in the thread", func(e *event.Event) bool {
		c := e.Content.AsMessage()
		if e.Sender != sender || threadRoot(e) != root || c.URL == "" || c.Body != name {
			return false
		}
		u, err := c.URL.Parse()
		uri = u
		return err == nil
	})
	data, err := cli.DownloadBytes(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestLongMailFitsEvent reproduces issue 10 item 6 with the real binary: a mail of about
// 200 KB of text and HTML made an event over Matrix's 64 KiB limit, which the outbox gave
// up on after the cursor had moved past the mail: the mail was lost without a trace. Now
// the thread root shows the shortened text with a note, and the whole text and HTML follow
// in its thread as files.
func TestLongMailFitsEvent(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	sb := startProcess(t, storetest.NewDatabaseURI(t, store.SQLite), box)
	defer sb.Stop()
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")

	raw := longMail("Bob <bob@ext.test>", box.Address, "long1."+box.Name+"@ext.test", "Lange Unterlagen", "long1", 100_000)
	if len(raw) < 190_000 {
		t.Fatalf("the test mail has %d bytes, want about 200 KB", len(raw))
	}
	if err := dc.Deliver(context.Background(), box.Address, raw); err != nil {
		t.Fatal(err)
	}
	root := waitEvent(t, alice, room, "the long mail", func(e *event.Event) bool {
		return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Lange Unterlagen")
	})
	body := root.Content.AsMessage().Body
	if !strings.Contains(body, "Zeile 00000") || !strings.Contains(body, "shortened here") || strings.Contains(body, "END-long1") {
		t.Errorf("root body: want the beginning and the note, not the end; it ends %q", body[max(0, len(body)-300):])
	}
	if text := fileIn(t, alice, room, root.ID, "mail.txt", bob); !strings.Contains(string(text), "END-long1") || !strings.HasPrefix(string(text), "Lange Unterlagen") {
		t.Errorf("mail.txt (%d bytes) does not hold the whole text", len(text))
	}
	if html := fileIn(t, alice, room, root.ID, "mail.html", bob); !strings.Contains(string(html), "HTML-END-long1") {
		t.Errorf("mail.html (%d bytes) does not hold the whole HTML", len(html))
	}
}

// TestOversizeMail reproduces issue 10 item 8 with the real binary: any mail was fetched
// whole and parsed (an HTML mail costing about 60 times its size). A mail over
// max_mail_bytes (by its RFC822.SIZE, before it is fetched) is not parsed: the bot shows
// its sender, subject and header, and attaches the raw mail when it is within
// max_attachment_bytes; a mail over both limits gets the notice alone. A mail within the
// limits after them is bridged as usual.
func TestOversizeMail(t *testing.T) {
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	sb := startProcessWith(t, storetest.NewDatabaseURI(t, store.SQLite), box, "    max_mail_bytes: 100000\n    max_attachment_bytes: 1000000\n")
	defer sb.Stop()
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")
	bot := id.NewUserID("switchboard", domain)
	ctx := context.Background()

	for _, m := range [][]byte{
		longMail("Bob <bob@ext.test>", box.Address, "big1."+box.Name+"@ext.test", "Big one", "big1", 150_000),
		longMail("Bob <bob@ext.test>", box.Address, "huge1."+box.Name+"@ext.test", "Huge one", "huge1", 600_000),
		crlf("From: bob@ext.test\nTo: " + box.Address + "\nSubject: Small one\nMessage-ID: <small1." + box.Name + "@ext.test>\n\nsmall\n"),
	} {
		if err := dc.Deliver(ctx, box.Address, m); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, alice, room, "the notice of the big mail", func(e *event.Event) bool {
		b := e.Content.AsMessage().Body
		return isNotice(e) && e.Sender == bot && strings.Contains(b, "from Bob <bob@ext.test>") && strings.Contains(b, `(subject "Big one") is larger than the bridge's limit of 100000 bytes`) &&
			strings.Contains(b, "mail.eml") && strings.Contains(b, "Message-ID: <big1.")
	})
	eml := fileIn(t, alice, room, "", "mail.eml", bot)
	if !strings.Contains(string(eml), "END-big1") {
		t.Errorf("mail.eml (%d bytes) is not the whole mail", len(eml))
	}
	waitEvent(t, alice, room, "the notice of the huge mail", func(e *event.Event) bool {
		b := e.Content.AsMessage().Body
		return isNotice(e) && strings.Contains(b, `(subject "Huge one")`) && strings.Contains(b, "too large to be attached")
	})
	waitEvent(t, alice, room, "the small mail after them", func(e *event.Event) bool {
		return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Small one")
	})
}
