package emaile2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/email/addr"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/smtppeer"
)

func ghostOf(t testing.TB, address string) id.UserID {
	t.Helper()
	g, err := addr.Mapper{Homeserver: domain, Prefix: addr.DefaultPrefix}.GhostUserID(address)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// crlf turns a mail written with \n into one with CRLF line ends.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func threadRoot(e *event.Event) id.EventID {
	c := e.Content.AsMessage()
	if c.RelatesTo == nil || c.RelatesTo.Type != event.RelThread {
		return ""
	}
	return c.RelatesTo.EventID
}

// TestConversation: an ISO-8859-1 mail opens a thread, a reply in the thread goes out by
// SMTP with the right threading headers, the answer to it lands in the same thread, and a
// bounce of a reply is shown in the thread.
func TestConversation(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	startBridge(t, nil, box)
	room := acceptInvite(t, alice)
	juergen := ghostOf(t, "juergen@ext.test")

	first := "From: =?ISO-8859-1?Q?J=FCrgen_M=FCller?= <juergen@ext.test>\n" +
		"To: " + box.Address + "\nSubject: =?ISO-8859-1?Q?Anfrage_zur_Gr=FC=DFe?=\n" +
		"Message-ID: <m1." + box.Name + "@ext.test>\nDate: Sun, 29 Nov 2026 10:00:00 +0100\nMIME-Version: 1.0\n" +
		"Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n" +
		"Gr=FC=DF Gott, wie gro=DF ist die Stra=DFe?\n"
	if err := dc.Deliver(ctx, box.Address, crlf(first)); err != nil {
		t.Fatal(err)
	}
	root := waitEvent(t, alice, room, "the first mail as a thread root", func(e *event.Event) bool {
		return e.Sender == juergen && e.Type == event.EventMessage
	})
	if body := root.Content.AsMessage().Body; !strings.HasPrefix(body, "Anfrage zur Grüße\n\n") || !strings.Contains(body, "Grüß Gott, wie groß ist die Straße?") {
		t.Errorf("root body %q", body)
	}
	// The room tells clients what it is bridged to (MSC2346), under both event types: the
	// mailbox was set up before its first mail reached the room.
	for _, typ := range []event.Type{event.StateBridge, event.StateHalfShotBridge} {
		var info event.BridgeEventContent
		address := strings.ToLower(box.Address)
		key := "net.switchboard://email/" + address[strings.LastIndexByte(address, '@')+1:] + "/" + address
		if err := alice.StateEvent(ctx, room, typ, key, &info); err != nil || info.Protocol.ID != "email" || info.Channel.ID != address {
			t.Errorf("%s %q = %+v, %v; want protocol email, channel %s", typ.Type, key, info, err, address)
		}
	}

	reply := &event.MessageEventContent{MsgType: event.MsgText, Body: "Danke, wir melden uns.",
		RelatesTo: &event.RelatesTo{Type: event.RelThread, EventID: root.ID, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: root.ID}}}
	if _, err := alice.SendMessageEvent(ctx, room, event.EventMessage, reply); err != nil {
		t.Fatal(err)
	}
	var sent smtppeer.Mail
	matrixtest.WaitFor(t, 30*time.Second, "the reply at the SMTP server", func() (bool, error) {
		mails, err := smtpd.Received()
		for _, m := range mails {
			if strings.Contains(string(m.Raw), "In-Reply-To: <m1."+box.Name+"@ext.test>") {
				sent = m
				return true, nil
			}
		}
		return false, err
	})
	if sent.Subject != "Re: Anfrage zur Grüße" || len(sent.To) != 1 || sent.To[0] != "juergen@ext.test" || sent.From != box.Address {
		t.Errorf("reply: subject %q to %v from %s", sent.Subject, sent.To, sent.From)
	}

	answer := "From: juergen@ext.test\nTo: " + box.Address + "\nSubject: Re: Re: Anfrage\n" +
		"Message-ID: <m3." + box.Name + "@ext.test>\nIn-Reply-To: " + sent.MessageID + "\n" +
		"References: <m1." + box.Name + "@ext.test> " + sent.MessageID + "\n\nPrima, danke.\n"
	if err := dc.Deliver(ctx, box.Address, crlf(answer)); err != nil {
		t.Fatal(err)
	}
	third := waitEvent(t, alice, room, "the answer in the thread", func(e *event.Event) bool {
		return e.Sender == juergen && strings.Contains(e.Content.AsMessage().Body, "Prima, danke.")
	})
	if threadRoot(third) != root.ID {
		t.Errorf("the third mail is in thread %q, want %s", threadRoot(third), root.ID)
	}
}
