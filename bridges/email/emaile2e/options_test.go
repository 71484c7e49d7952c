package emaile2e

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// TestMailboxOptions covers a mailbox with quoted history stripped and SMTP over implicit
// TLS.
func TestMailboxOptions(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	box.StripQuoted = true
	box.SMTP.Address, box.SMTP.TLS = smtpd.TLSAddr, "implicit"
	startBridge(t, nil, box)
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")

	raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: Re: Plan\nMessage-ID: <q1." + box.Name + "@ext.test>\n\n" +
		"Sounds good.\n\nOn Sun, 29 Nov 2026 at 10:00, Box wrote:\n> The plan is ready.\n> Any comments?\n"
	if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
		t.Fatal(err)
	}
	root := waitEvent(t, alice, room, "the mail", func(e *event.Event) bool {
		return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Re: Plan")
	})
	if body := root.Content.AsMessage().Body; !strings.Contains(body, "Sounds good.") || strings.Contains(body, "The plan is ready") || strings.Contains(body, "wrote:") {
		t.Errorf("body %q: want the quoted history stripped", body)
	}
	sent := reply(t, alice, room, root.ID, "Thanks.")
	mail := sentWith(t, "X-Switchboard-Event: "+sent.String())
	if !mail.TLS {
		t.Error("the reply was not sent over TLS")
	}
}

// TestDovecotRestart: the bridge reconnects with backoff when the IMAP server goes away and
// bridges what arrived meanwhile, once.
func TestDovecotRestart(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	startBridge(t, nil, box)
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")
	deliver := func(n string) {
		t.Helper()
		raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: Restart " + n + "\nMessage-ID: <r" + n + "." + box.Name + "@ext.test>\n\nmail " + n + "\n"
		if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
			t.Fatal(err)
		}
	}
	deliver("1")
	waitEvent(t, alice, room, "the first mail", func(e *event.Event) bool {
		return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Restart 1")
	})
	if err := dc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	deliver("2")
	waitEvent(t, alice, room, "the mail after the restart", func(e *event.Event) bool {
		return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Restart 2")
	})
	evts, err := matrixtest.RoomMessages(ctx, alice, room)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evts {
		if e.Sender == bob {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d mails in the room, want 2", n)
	}
}
