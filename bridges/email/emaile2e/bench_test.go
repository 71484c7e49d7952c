package emaile2e

import (
	"context"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// The benchmarks below read b.N mails (the crash test's mix: half of them new
// conversations, half replies in threads) that were delivered into a fresh mailbox before
// the timer starts. BenchmarkIngest times Switchboard with the email bridge from its start
// until the mailbox's Matrix user sees all b.N in the room; BenchmarkRawFetch times an IMAP
// client that fetches the same kind of mailbox, the baseline of the same run. Both report
// mails/s; scripts/bench prints the ratio.

// BenchmarkIngest: a mailbox with b.N mails is linked (import_history -1: all of them);
// timed from the bridge's start (which creates the room and invites the user) until the
// user's /sync (checked against /messages) shows every mail once.
func BenchmarkIngest(b *testing.B) {
	alice := newMatrixUser(b, "alice")
	box := newMailbox(b, alice.UserID)
	all := -1
	box.ImportHistory = &all
	deliverMails(context.Background(), b, box, 0, b.N, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	b.ResetTimer()
	startBridge(b, nil, box)
	room := acceptInvite(b, alice)
	w := &roomWatch{cli: alice, room: room, events: map[id.EventID]*event.Event{}}
	go matrixtest.WatchRoom(ctx, w.cli, w.room, w.add)
	for tick := 1; w.mailsSeen() < b.N; tick++ {
		if ctx.Err() != nil {
			b.Fatalf("%d of %d mails arrived", w.mailsSeen(), b.N)
		}
		if tick%20 == 0 {
			// /sync does not skip events, but a gap in a limited timeline would go unseen.
			if _, err := w.all(ctx); err != nil {
				b.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
}

// BenchmarkRawFetch is the baseline: a go-imap v2 client logs in, selects the folder
// read-only and fetches every mail with UID FETCH 1:* (UID BODY.PEEK[]), as the bridge
// reads mail but without bridging it.
func BenchmarkRawFetch(b *testing.B) {
	alice := newMatrixUser(b, "alice")
	box := newMailbox(b, alice.UserID)
	deliverMails(context.Background(), b, box, 0, b.N, 0)

	b.ResetTimer()
	c, err := imapclient.DialInsecure(box.IMAP.Address, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(box.IMAP.Username, box.IMAP.Password).Wait(); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		b.Fatal(err)
	}
	var set imap.UIDSet
	set.AddRange(1, 0)
	cmd := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	n := 0
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		buf, err := msg.Collect()
		if err != nil {
			b.Fatal(err)
		}
		if len(buf.BodySection) == 0 || len(buf.BodySection[0].Bytes) == 0 {
			b.Fatalf("mail UID %d came without its body", buf.UID)
		}
		n++
	}
	if err := cmd.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if n != b.N {
		b.Fatalf("fetched %d mails, want %d", n, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "mails/s")
}
