package soak

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/dendrite"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// mailbox is the soak's mailbox: a Dovecot account that the bridge reads, its replies
// submitted to the SMTP peer.
type mailbox struct{ name, address, password string }

func newMailbox(t testing.TB) mailbox {
	t.Helper()
	name := dendrite.Unique("box")
	mb := mailbox{name: name, address: name + "@" + mailDomain, password: "pw-" + name}
	if err := dc.AddUser(context.Background(), mb.address, mb.password); err != nil {
		t.Fatal(err)
	}
	return mb
}

// modulesYAML is the modules section of the binary's config: the XMPP bridge for the
// soak's Prosody and the email bridge for mb, its room's invitee invite.
func modulesYAML(mb mailbox, invite id.UserID) string {
	return fmt.Sprintf(`  xmpp:
    enabled: true
    component:
      address: %s
      domain: %s
      secret: %q
      server_domain: %s
      min_backoff: 100ms
      max_backoff: 1s
  email:
    enabled: true
    mailboxes:
      - name: %q
        address: %q
        display_name: "Soak box"
        invite: [%q]
        imap: {address: %q, tls: none, username: %q, password: %q}
        smtp: {address: %q, tls: starttls, username: %q, password: %q, insecure_skip_verify: true}
        poll_interval: 1s
`, xs.ComponentAddr, xs.ComponentDomain, xs.ComponentSecret, xs.Domain,
		mb.name, mb.address, invite, dc.IMAPAddr, mb.address, mb.password, smtpd.Addr, smtpUser, smtpPass)
}

// mailMessageID is the Message-ID of the soak's mail i into mb.
func mailMessageID(mb mailbox, i int) string { return fmt.Sprintf("soak%05d.%s@ext.test", i, mb.name) }

// testMail is mail i: a new conversation with its marker in the text.
func testMail(mb mailbox, i int) []byte {
	s := fmt.Sprintf("From: Sender %d <sender%d@ext.test>\nTo: %s\nMessage-ID: <%s>\nDate: Thu, 03 Dec 2026 10:00:00 +0100\n"+
		"Subject: Case %d\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n%s\nBitte um kurze Bestätigung.\n",
		i%5, i%5, mb.address, mailMessageID(mb, i), i, marker(markMailIn, i))
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

// deliverMail delivers mail i over LMTP, retrying a failed delivery (a retry may deliver
// the mail twice; the bridge knows it by its Message-ID).
func deliverMail(t testing.TB, mb mailbox, i int) {
	var err error
	for try := 0; try < 10; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = dc.Deliver(ctx, mb.address, testMail(mb, i))
		cancel()
		if err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("deliver mail %d: %v", i, err)
}

// deliverMailLoad delivers mails from first on, one every gap, until ctx ends, and returns
// the number of the next mail.
func deliverMailLoad(ctx context.Context, t testing.TB, mb mailbox, first int, gap time.Duration) int {
	i := first
	for ; ctx.Err() == nil; i++ {
		deliverMail(t, mb, i)
		time.Sleep(gap)
	}
	return i
}

// roomWatch records one room's messages as a user's /sync shows them (matrixtest.WatchRoom
// passes them to add) and /messages; an event seen either way counts once, by its ID.
type roomWatch struct {
	cli  *mautrix.Client
	room id.RoomID

	mu     sync.Mutex
	events map[id.EventID]*event.Event // guarded by mu
	roots  []id.EventID                // guarded by mu; bridged mails, in the order seen
	// replyRoot is the thread root of each reply (by number); guarded by mu.
	replyRoot map[int]id.EventID
}

func newRoomWatch(ctx context.Context, cli *mautrix.Client, room id.RoomID) *roomWatch {
	w := &roomWatch{cli: cli, room: room, events: map[id.EventID]*event.Event{}, replyRoot: map[int]id.EventID{}}
	go matrixtest.WatchRoom(ctx, w.cli, w.room, w.add)
	return w
}

func (w *roomWatch) add(evts []*event.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range evts {
		if e.Type != event.EventMessage || w.events[e.ID] != nil {
			continue
		}
		_ = e.Content.ParseRaw(e.Type)
		w.events[e.ID] = e
		if strings.HasPrefix(e.Sender.Localpart(), email.DefaultPrefix) && strings.Contains(e.Content.AsMessage().Body, markMailIn) {
			w.roots = append(w.roots, e.ID)
		}
	}
}

// counts returns, per marker with prefix, the number of distinct events from a sender
// other than the watching user whose body holds it: the /sync events and those
// /messages returns now.
func (w *roomWatch) counts(ctx context.Context, prefix string) (map[string]int, error) {
	evts, err := matrixtest.RoomMessages(ctx, w.cli, w.room)
	if err != nil {
		return nil, err
	}
	w.add(evts)
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for _, e := range w.events {
		if e.Sender == w.cli.UserID {
			continue
		}
		body := e.Content.AsMessage().Body
		if i := strings.Index(body, prefix); i >= 0 && len(body) >= i+len(prefix)+5 {
			out[body[i:i+len(prefix)+5]]++
		}
	}
	return out, nil
}

// hasRoot reports whether a bridged mail was seen.
func (w *roomWatch) hasRoot() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.roots) > 0
}

// root returns a bridged mail to answer in reply j (spread over those seen so far),
// waiting for the first; "" when ctx ends first.
func (w *roomWatch) root(ctx context.Context, j int) id.EventID {
	for ctx.Err() == nil {
		w.mu.Lock()
		n := len(w.roots)
		var r id.EventID
		if n > 0 {
			r = w.roots[(j*7)%n]
		}
		w.mu.Unlock()
		if r != "" {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ""
}

// describeReply names reply j's thread root: its event ID and the mail it shows.
func (w *roomWatch) describeReply(j int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	root := w.replyRoot[j]
	shows := "?"
	if e := w.events[root]; e != nil {
		body := e.Content.AsMessage().Body
		if i := strings.Index(body, markMailIn); i >= 0 && len(body) >= i+len(markMailIn)+5 {
			shows = body[i : i+len(markMailIn)+5]
		}
	}
	return fmt.Sprintf("%s in the thread of %s (%s)", marker(markMailOut, j), root, shows)
}

// notices returns the distinct notices of the bot in the room, at most n.
func (w *roomWatch) notices(n int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, e := range w.events {
		m := e.Content.AsMessage()
		if e.Sender.Localpart() == "switchboard" && m.MsgType == event.MsgNotice && !seen[m.Body] && len(out) < n {
			seen[m.Body] = true
			out = append(out, m.Body)
		}
	}
	return out
}

// replyContent is reply j of the Matrix user, in the thread of a bridged mail.
func replyContent(ctx context.Context, w *roomWatch, j int) *event.MessageEventContent {
	root := w.root(ctx, j)
	if root == "" {
		return nil
	}
	w.mu.Lock()
	w.replyRoot[j] = root
	w.mu.Unlock()
	return &event.MessageEventContent{MsgType: event.MsgText, Body: marker(markMailOut, j) + ": Danke, wir melden uns.",
		RelatesTo: &event.RelatesTo{Type: event.RelThread, EventID: root, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: root}}}
}
