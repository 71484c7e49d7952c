package emaile2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/crypto/attachment"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/e2eeclient"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/smtppeer"
)

// The encrypted tests run on Synapse only: Dendrite lacks MSC4190 (devices for appservice
// users), so there the core runs with encryption off. The Matrix user is an encrypting
// client (e2eeclient) with its own cross-signed device; the core runs with
// encryption.enabled and encryption.default, so the mailbox room the bridge creates is
// encrypted from its first event.

// encryptionOn is the encryption the encrypted tests run the core with.
var encryptionOn = appservice.Encryption{Enabled: true, Default: true, DecryptTimeout: time.Minute}

// newCryptoUser registers a user on the package's Synapse with an encrypting client.
func newCryptoUser(t *testing.T, prefix string) *e2eeclient.Client {
	t.Helper()
	return e2eeclient.RegisterForTest(t, syn.Get(t), unique(prefix), "")
}

// encryptedMailbox makes a mailbox for user, starts the bridge with encryption on, joins
// the mailbox room the bridge creates and checks that it is encrypted.
func encryptedMailbox(t *testing.T, user *e2eeclient.Client) (email.MailboxConfig, id.RoomID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	box := newMailbox(t, user.UserID())
	startBridgeEnc(t, nil, email.Config{Mailboxes: []email.MailboxConfig{box}}, encryptionOn)
	room, err := user.AcceptInvite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var enc event.EncryptionEventContent
	if err := user.Mautrix().StateEvent(ctx, room, event.StateEncryption, "", &enc); err != nil {
		t.Fatalf("the mailbox room %s has no m.room.encryption (encryption.default): %v", room, err)
	}
	if enc.Algorithm != id.AlgorithmMegolmV1 {
		t.Errorf("the mailbox room's encryption algorithm is %q", enc.Algorithm)
	}
	return box, room
}

// waitDecrypted waits for a message of room from sender that the client decrypted and
// that match accepts, and checks that it came encrypted from a device of sender
// cross-signed by sender.
func waitDecrypted(t *testing.T, user *e2eeclient.Client, room id.RoomID, sender id.UserID, what string, match func(*event.Event) bool) e2eeclient.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := user.WaitMessage(ctx, room, func(m e2eeclient.Message) bool {
		return m.Event.Sender == sender && m.DecryptError == nil && m.Event.Type == event.EventMessage && match(m.Event)
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	if !m.Encrypted {
		t.Errorf("%s arrived unencrypted", what)
	}
	if m.SenderDevice == nil || m.SenderDevice.UserID != sender {
		t.Errorf("%s: sender device %+v, want one of %s", what, m.SenderDevice, sender)
	}
	if m.Trust < id.TrustStateCrossSignedTOFU {
		t.Errorf("%s: sender device trust %s, want cross-signed by its user", what, m.Trust)
	}
	return m
}

// checkDecryptedOnce checks that every event the client received in room was decrypted
// (an event first lacking its key must have been decrypted later) and that each event
// from sender whose body contains one of texts came exactly once.
func checkDecryptedOnce(t *testing.T, user *e2eeclient.Client, room id.RoomID, sender id.UserID, texts ...string) {
	t.Helper()
	decrypted := map[id.EventID]bool{}
	count := map[string]int{}
	msgs := user.Received(room)
	for _, m := range msgs {
		if m.DecryptError != nil {
			continue
		}
		decrypted[m.Event.ID] = true
		if m.Event.Sender != sender {
			continue
		}
		for _, p := range texts {
			if strings.Contains(m.Event.Content.AsMessage().Body, p) {
				count[p]++
			}
		}
	}
	for _, m := range msgs {
		if m.DecryptError != nil && !decrypted[m.Event.ID] {
			t.Errorf("event %s from %s could not be decrypted: %v", m.Event.ID, m.Event.Sender, m.DecryptError)
		}
	}
	for _, p := range texts {
		if count[p] != 1 {
			t.Errorf("the mail %q appeared %d times in Matrix, want once", p, count[p])
		}
	}
}

// mailsWith returns the mails at the SMTP server whose raw text contains marker.
func mailsWith(t *testing.T, marker string) []smtppeer.Mail {
	t.Helper()
	mails, err := smtpd.Received()
	if err != nil {
		t.Fatal(err)
	}
	var out []smtppeer.Mail
	for _, m := range mails {
		if bytes.Contains(m.Raw, []byte(marker)) {
			out = append(out, m)
		}
	}
	return out
}

// parseSent parses a mail the bridge sent.
func parseSent(t *testing.T, m smtppeer.Mail) *mailparse.Mail {
	t.Helper()
	p, err := mailparse.Parse(m.Raw, mailparse.Options{})
	if err != nil {
		t.Fatalf("the sent mail %s does not parse: %v", m.MessageID, err)
	}
	return p
}

// inThread is a threaded reply to root.
func inThread(root id.EventID) *event.RelatesTo {
	return &event.RelatesTo{Type: event.RelThread, EventID: root, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: root}}
}

// TestEncryptedConversationSynapse: with encryption on, the mailbox room the bridge
// creates is encrypted; incoming mails appear in it encrypted, decryptable by the user's
// client, from the sending ghost's cross-signed device, once each; the user's encrypted
// replies in a thread reach the SMTP server decrypted, once each, with the threading
// headers; a new mail by "!mail" works the same, and the answer to it lands encrypted in
// its thread.
func TestEncryptedConversationSynapse(t *testing.T) {
	onSynapse(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		alice := newCryptoUser(t, "alice")
		box, room := encryptedMailbox(t, alice)
		juergen := ghostOf(t, "juergen@ext.test")
		carol := ghostOf(t, "carol@ext.test")

		first := "From: =?ISO-8859-1?Q?J=FCrgen_M=FCller?= <juergen@ext.test>\n" +
			"To: " + box.Address + "\nSubject: =?ISO-8859-1?Q?Anfrage_zur_Gr=FC=DFe?=\n" +
			"Message-ID: <e1." + box.Name + "@ext.test>\nDate: Sun, 29 Nov 2026 10:00:00 +0100\nMIME-Version: 1.0\n" +
			"Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n" +
			"Gr=FC=DF Gott, wie gro=DF ist die Stra=DFe?\n"
		if err := dc.Deliver(ctx, box.Address, crlf(first)); err != nil {
			t.Fatal(err)
		}
		rootMsg := waitDecrypted(t, alice, room, juergen, "the first mail", func(e *event.Event) bool {
			return strings.HasPrefix(e.Content.AsMessage().Body, "Anfrage zur Grüße")
		})
		root := rootMsg.Event
		t.Logf("the first mail from device %s of %s: trust %s", rootMsg.SenderDevice.DeviceID, juergen, rootMsg.Trust)
		if body := root.Content.AsMessage().Body; !strings.Contains(body, "Grüß Gott, wie groß ist die Straße?") {
			t.Errorf("root body %q", body)
		}

		const replyText = "Danke, wir melden uns. Vertraulich: Befund folgt."
		replyID, err := alice.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: replyText, RelatesTo: inThread(root.ID)})
		if err != nil {
			t.Fatal(err)
		}
		sent := sentWith(t, "X-Switchboard-Event: "+replyID.String())
		p := parseSent(t, sent)
		if p.Text != replyText {
			t.Errorf("reply text %q, want %q", p.Text, replyText)
		}
		if p.InReplyTo != "e1."+box.Name+"@ext.test" || len(p.References) == 0 || p.References[len(p.References)-1] != "e1."+box.Name+"@ext.test" {
			t.Errorf("reply In-Reply-To %q References %v, want the first mail's id", p.InReplyTo, p.References)
		}
		if sent.Subject != "Re: Anfrage zur Grüße" || len(sent.To) != 1 || sent.To[0] != "juergen@ext.test" || sent.From != box.Address {
			t.Errorf("reply: subject %q to %v from %s", sent.Subject, sent.To, sent.From)
		}

		answer := "From: juergen@ext.test\nTo: " + box.Address + "\nSubject: Re: Re: Anfrage\n" +
			"Message-ID: <e3." + box.Name + "@ext.test>\nIn-Reply-To: " + sent.MessageID + "\n" +
			"References: <e1." + box.Name + "@ext.test> " + sent.MessageID + "\n\nPrima, danke.\n"
		if err := dc.Deliver(ctx, box.Address, crlf(answer)); err != nil {
			t.Fatal(err)
		}
		third := waitDecrypted(t, alice, room, juergen, "the answer in the thread", func(e *event.Event) bool {
			return strings.Contains(e.Content.AsMessage().Body, "Prima, danke.")
		})
		if threadRoot(third.Event) != root.ID {
			t.Errorf("the answer is in thread %q, want %s", threadRoot(third.Event), root.ID)
		}

		const secondReply = "Zweite Antwort im Thread."
		secondID, err := alice.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: secondReply, RelatesTo: inThread(root.ID)})
		if err != nil {
			t.Fatal(err)
		}
		second := sentWith(t, "X-Switchboard-Event: "+secondID.String())
		if p := parseSent(t, second); p.Text != secondReply || p.InReplyTo != "e3."+box.Name+"@ext.test" {
			t.Errorf("second reply: text %q In-Reply-To %q, want %q answering e3", p.Text, p.InReplyTo, secondReply)
		}

		// A new mail from Matrix, and the answer to it in its thread.
		cmdID, err := alice.Send(ctx, room, event.EventMessage, &event.MessageEventContent{MsgType: event.MsgText, Body: "!mail to=carol@ext.test subject=Termin\nPasst Dienstag?"})
		if err != nil {
			t.Fatal(err)
		}
		newMail := sentWith(t, "X-Switchboard-Event: "+cmdID.String())
		if p := parseSent(t, newMail); newMail.Subject != "Termin" || p.Text != "Passt Dienstag?" || len(newMail.To) != 1 || newMail.To[0] != "carol@ext.test" {
			t.Errorf("new mail: subject %q text %q to %v", newMail.Subject, p.Text, newMail.To)
		}
		carolAnswer := "From: carol@ext.test\nTo: " + box.Address + "\nSubject: Re: Termin\nMessage-ID: <e4." + box.Name + "@ext.test>\n" +
			"In-Reply-To: " + newMail.MessageID + "\nReferences: " + newMail.MessageID + "\n\nDienstag passt.\n"
		if err := dc.Deliver(ctx, box.Address, crlf(carolAnswer)); err != nil {
			t.Fatal(err)
		}
		ca := waitDecrypted(t, alice, room, carol, "carol's answer", func(e *event.Event) bool {
			return strings.Contains(e.Content.AsMessage().Body, "Dienstag passt.")
		})
		if threadRoot(ca.Event) != cmdID {
			t.Errorf("carol's answer is in thread %q, want the new mail's %s", threadRoot(ca.Event), cmdID)
		}

		// Exactly once both ways: by now every send has long been done.
		time.Sleep(3 * time.Second)
		for _, id := range []id.EventID{replyID, secondID, cmdID} {
			if n := len(mailsWith(t, "X-Switchboard-Event: "+id.String())); n != 1 {
				t.Errorf("the mail of %s reached the SMTP server %d times, want once", id, n)
			}
		}
		checkDecryptedOnce(t, alice, room, juergen, "Grüß Gott", "Prima, danke.")
		checkDecryptedOnce(t, alice, room, carol, "Dienstag passt.")
	})
}

// TestEncryptedAttachmentSynapse: a file the user sends in an encrypted mailbox room (an
// encrypted attachment: only ciphertext on the media repository) reaches the SMTP server
// as a mail attachment holding the plaintext.
func TestEncryptedAttachmentSynapse(t *testing.T) {
	onSynapse(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		alice := newCryptoUser(t, "alice")
		box, room := encryptedMailbox(t, alice)
		bob := ghostOf(t, "bob@ext.test")

		raw := "From: Bob <bob@ext.test>\nTo: " + box.Address + "\nSubject: Befund\nMessage-ID: <a1." + box.Name + "@ext.test>\n\nBitte den Befund schicken.\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
		root := waitDecrypted(t, alice, room, bob, "the mail", func(e *event.Event) bool {
			return strings.HasPrefix(e.Content.AsMessage().Body, "Befund")
		}).Event

		plain := append([]byte("%PDF-1.4 vertraulicher Befund\n"), bytes.Repeat([]byte{0, 1, 2, 0xff, '\n'}, 2000)...)
		data := bytes.Clone(plain)
		ef := attachment.NewEncryptedFile()
		ef.EncryptInPlace(data)
		up, err := alice.Mautrix().UploadMedia(ctx, mautrix.ReqUploadMedia{ContentBytes: data, ContentType: "application/octet-stream"})
		if err != nil {
			t.Fatal(err)
		}
		fileID, err := alice.Send(ctx, room, event.EventMessage, &event.MessageEventContent{
			MsgType: event.MsgFile, Body: "befund.pdf", FileName: "befund.pdf",
			Info: &event.FileInfo{MimeType: "application/pdf", Size: len(plain)},
			File: &event.EncryptedFileInfo{EncryptedFile: *ef, URL: up.ContentURI.CUString()}, RelatesTo: inThread(root.ID),
		})
		if err != nil {
			t.Fatal(err)
		}
		sent := sentWith(t, "X-Switchboard-Event: "+fileID.String())
		p := parseSent(t, sent)
		if len(p.Attachments) != 1 {
			t.Fatalf("the mail has %d attachments, want 1", len(p.Attachments))
		}
		a := p.Attachments[0]
		if a.FileName != "befund.pdf" || a.ContentType != "application/pdf" {
			t.Errorf("attachment %q of type %q, want befund.pdf, application/pdf", a.FileName, a.ContentType)
		}
		if !bytes.Equal(a.Data, plain) {
			t.Errorf("the attachment's %d bytes are not the %d plaintext bytes (ciphertext: %v)", len(a.Data), len(plain), bytes.Equal(a.Data, data))
		}
		if p.InReplyTo != "a1."+box.Name+"@ext.test" {
			t.Errorf("In-Reply-To %q, want the mail's id", p.InReplyTo)
		}
		time.Sleep(3 * time.Second)
		if n := len(mailsWith(t, "X-Switchboard-Event: "+fileID.String())); n != 1 {
			t.Errorf("the file's mail reached the SMTP server %d times, want once", n)
		}
	})
}
