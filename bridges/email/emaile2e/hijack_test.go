package emaile2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// TestReplyHijack reproduces issue 10 item 7: a reply went to the Reply-To or From of the
// thread's latest mail, so anyone who knew a Message-ID (every recipient does) could write
// into a conversation and receive the staff's next answer. Now the newcomer's mail is
// shown with a notice by the bot that names the new address, replies still go to the
// conversation's correspondent only, and "!email add" makes the newcomer a recipient.
func TestReplyHijack(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	startBridge(t, nil, box)
	room := acceptInvite(t, alice)
	juergen, mallory := ghostOf(t, "juergen@ext.test"), ghostOf(t, "mallory@evil.test")
	bot := id.NewUserID("switchboard", domain)

	rootID := "hj1." + box.Name + "@ext.test"
	first := "From: juergen@ext.test\nTo: " + box.Address + "\nSubject: Befund\nMessage-ID: <" + rootID + ">\n\nMein Befund, bitte.\n"
	if err := dc.Deliver(ctx, box.Address, crlf(first)); err != nil {
		t.Fatal(err)
	}
	root := waitEvent(t, alice, room, "the first mail", func(e *event.Event) bool {
		return e.Sender == juergen && strings.HasPrefix(e.Content.AsMessage().Body, "Befund")
	})
	intruder := "From: mallory@evil.test\nReply-To: drop@evil.test\nTo: " + box.Address + "\nSubject: Re: Befund\nMessage-ID: <hj2." + box.Name + "@evil.test>\n" +
		"In-Reply-To: <" + rootID + ">\nReferences: <" + rootID + ">\n\nBitte an mich schicken.\n"
	if err := dc.Deliver(ctx, box.Address, crlf(intruder)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, alice, room, "the intruder's mail in the thread", func(e *event.Event) bool {
		return e.Sender == mallory && threadRoot(e) == root.ID
	})
	waitEvent(t, alice, room, "the bot's newcomer notice", func(e *event.Event) bool {
		b := e.Content.AsMessage().Body
		return e.Sender == bot && isNotice(e) && threadRoot(e) == root.ID && strings.Contains(b, "New in this conversation: mallory@evil.test, drop@evil.test") &&
			strings.Contains(b, "only to juergen@ext.test") && strings.Contains(b, "!email add")
	})

	answer := reply(t, alice, room, root.ID, "Ihr Befund ist unauffällig.")
	if sent := sentWith(t, "X-Switchboard-Event: "+answer.String()); !slices.Equal(sent.To, []string{"juergen@ext.test"}) {
		t.Fatalf("the answer went to %v, want only juergen@ext.test", sent.To)
	}

	cmd := reply(t, alice, room, root.ID, "!email add mallory@evil.test")
	waitEvent(t, alice, room, "the command's answer", func(e *event.Event) bool {
		c := e.Content.AsMessage()
		return e.Sender == bot && isNotice(e) && c.RelatesTo != nil && c.RelatesTo.InReplyTo != nil && c.RelatesTo.InReplyTo.EventID == cmd &&
			strings.Contains(c.Body, "juergen@ext.test, mallory@evil.test")
	})
	next := reply(t, alice, room, root.ID, "Nachtrag an beide.")
	sent := sentWith(t, "X-Switchboard-Event: "+next.String())
	slices.Sort(sent.To)
	if !slices.Equal(sent.To, []string{"juergen@ext.test", "mallory@evil.test"}) {
		t.Errorf("after !email add the reply went to %v, want juergen and mallory", sent.To)
	}
	if n := deliveries(t, "X-Switchboard-Event: "+cmd.String()); n != 0 {
		t.Errorf("the command was mailed %d times", n)
	}
}
