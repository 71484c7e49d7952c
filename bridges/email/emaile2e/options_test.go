package emaile2e

import (
	"context"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
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
