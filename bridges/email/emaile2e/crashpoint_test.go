package emaile2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// deliveries counts the mails at the SMTP server whose raw text contains marker.
func deliveries(t *testing.T, marker string) int {
	t.Helper()
	mails, err := smtpd.Received()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range mails {
		if bytes.Contains(m.Raw, []byte(marker)) {
			n++
		}
	}
	return n
}

// TestReplyRecordedBeforeQuit reproduces issue 10 item 17 at its crash point, with the
// real binary: the server has accepted a reply (250 after DATA) and Switchboard is killed
// before the server answers QUIT. The acceptance was recorded only after QUIT, so the
// restarted process sent the reply again (the soak's doubled Message-IDs). Now it is
// recorded the moment the server accepts, and the reply reaches the server once.
func TestReplyRecordedBeforeQuit(t *testing.T) {
	ctx := context.Background()
	alice := newMatrixUser(t, "alice")
	box := newMailbox(t, alice.UserID)
	sb := startProcess(t, storetest.NewDatabaseURI(t, store.SQLite), box)
	defer sb.Stop()
	room := acceptInvite(t, alice)
	bob := ghostOf(t, "bob@ext.test")
	raw := "From: bob@ext.test\nTo: " + box.Address + "\nSubject: Kill point\nMessage-ID: <kp1." + box.Name + "@ext.test>\n\nPlease answer.\n"
	if err := dc.Deliver(ctx, box.Address, crlf(raw)); err != nil {
		t.Fatal(err)
	}
	root := waitEvent(t, alice, room, "the mail", func(e *event.Event) bool {
		return e.Sender == bob && strings.HasPrefix(e.Content.AsMessage().Body, "Kill point")
	})

	if err := smtpd.HoldQuit(true); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = smtpd.HoldQuit(false) }()
	first := reply(t, alice, room, root.ID, "The answer, once.")
	marker := "X-Switchboard-Event: " + first.String()
	sentWith(t, marker) // accepted; QUIT is held
	time.Sleep(500 * time.Millisecond)
	sb.Kill9()
	if err := smtpd.HoldQuit(false); err != nil {
		t.Fatal(err)
	}
	sb.Start()

	// The room's events are handled in order: once the next reply is at the server, the
	// first one's redelivery has been handled.
	next := reply(t, alice, room, root.ID, "A second answer.")
	sentWith(t, "X-Switchboard-Event: "+next.String())
	if n := deliveries(t, marker); n != 1 {
		t.Errorf("the reply reached the SMTP server %d times, want 1", n)
	}
	matrixtest.WaitFor(t, 5*time.Second, "no further copy", func() (bool, error) { return deliveries(t, marker) == 1, nil })
}
