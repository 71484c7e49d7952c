package emaile2e

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/mail"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/email"
	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

const (
	crashMails   = 500 // delivered into the mailbox over LMTP
	crashReplies = 100 // sent by the Matrix user in threads of bridged mails
)

// crashKillsAfter are the times from one start (or the load's) to the next kill.
var crashKillsAfter = []time.Duration{1500 * time.Millisecond, 6 * time.Second, 2500 * time.Millisecond, 6 * time.Second}

// TestCrashKill9 delivers mails into a mailbox while the Matrix user answers in the threads
// of the mails already bridged, and Switchboard (the real binary) is killed with SIGKILL
// and restarted several times. Afterwards every mail is in the room once and every reply
// reached the SMTP server under one Message-ID: 0 lost and 0 doubled. On SQLite and
// PostgreSQL.
func TestCrashKill9(t *testing.T) {
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			dbURI := storetest.NewDatabaseURI(t, dialect)
			alice := newMatrixUser(t, "alice")
			box := newMailbox(t, alice.UserID)
			box.PollInterval = config.Duration(time.Second)
			sb := startProcess(t, dbURI, box)
			defer sb.Stop()
			room := acceptInvite(t, alice)

			ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
			defer cancel()
			w := &roomWatch{cli: alice, room: room, events: map[id.EventID]*event.Event{}}
			go matrixtest.WatchRoom(ctx, w.cli, w.room, w.add)

			// The link is made by the first look into the folder: mail 0, bridged, shows that it
			// was made and that what follows is new mail, not history left out of the room.
			deliverMails(context.Background(), t, box, 0, 1, 0)
			waitEvent(t, alice, room, "the first mail", func(e *event.Event) bool { i, ok := bridgedMail(e); return ok && i == 0 })

			begin := time.Now()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); deliverMails(ctx, t, box, 1, crashMails, 25*time.Millisecond) }()
			var replies []id.EventID
			go func() { defer wg.Done(); replies = sendReplies(ctx, t, w, crashReplies, 120*time.Millisecond) }()
			// Kills a little after a start hit the in-doubt check of the outbox (it waits 5s
			// after a start); later ones hit the catching up.
			for k, after := range crashKillsAfter {
				time.Sleep(after)
				sb.Kill9()
				t.Logf("kill -9 #%d at %s, with %d mails in the room", k+1, time.Since(begin).Round(time.Millisecond), w.mailsSeen())
				sb.Start()
			}
			wg.Wait()
			if ctx.Err() != nil {
				t.Fatal("the load did not finish in time")
			}
			t.Logf("all sent at %s, with %d mails in the room", time.Since(begin).Round(time.Millisecond), w.mailsSeen())
			verifyCrash(ctx, t, w, replies, 3*time.Minute)
			t.Logf("verified at %s", time.Since(begin).Round(time.Millisecond))
		})
	}
}

// startProcess writes the config of a switchboard process with the email bridge for box on
// the database dbURI and starts it. Its log is shown when t fails.
func startProcess(t testing.TB, dbURI string, box email.MailboxConfig) *sbproc.Runner {
	t.Helper()
	return startProcessWith(t, dbURI, box, "")
}

// startProcessWith is startProcess with more of the module's settings: YAML lines such
// as "    max_mail_bytes: 1024\n", indented by four spaces.
func startProcessWith(t testing.TB, dbURI string, box email.MailboxConfig, moduleYAML string) *sbproc.Runner {
	t.Helper()
	return startProcessAt(t, hs.URL, dbURI, box, moduleYAML)
}

// startProcessAt is startProcessWith that reaches the homeserver at hsURL (a proxy).
func startProcessAt(t testing.TB, hsURL, dbURI string, box email.MailboxConfig, moduleYAML string) *sbproc.Runner {
	t.Helper()
	return sbproc.Launch(t, workDir, switchboardPkg, filepath.Join(workDir, "registration.yaml"), processConfig(hsURL, dbURI, box, moduleYAML))
}

// switchboardPkg is the main package of the binary the crash tests run.
const switchboardPkg = "github.com/switchboard-matrix/switchboard/cmd/switchboard"

// processConfig is the config of a switchboard process with the email bridge for box (see
// startProcessAt); the caller may add to it (Extra) before launching it.
func processConfig(hsURL, dbURI string, box email.MailboxConfig, moduleYAML string) sbproc.Config {
	return sbproc.Config{
		HomeserverURL: hsURL, Domain: domain, RegistrationID: reg.ID, ASPort: asPort,
		DatabaseURI: dbURI, LogLevel: getenv("SWITCHBOARD_EMAILE2E_LOG", "info"),
		Modules: fmt.Sprintf(`  email:
    enabled: true
%s    mailboxes:
      - name: %q
        address: %q
        display_name: %q
        invite: [%q]
        imap: {address: %q, tls: %s, username: %q, password: %q}
        smtp: {address: %q, tls: %s, username: %q, password: %q, insecure_skip_verify: %t}
        poll_interval: %s
`, moduleYAML, box.Name, box.Address, box.DisplayName, box.Invite[0],
			box.IMAP.Address, box.IMAP.TLS, box.IMAP.Username, box.IMAP.Password,
			box.SMTP.Address, box.SMTP.TLS, box.SMTP.Username, box.SMTP.Password, box.SMTP.InsecureSkipVerify,
			box.PollInterval.Std()),
	}
}

// The mails of a run: mail i has the Message-ID <c<i>.<mailbox>@ext.test> and the marker
// "mail-<i>" in its text. Mails 4k and 4k+1 open conversations; 4k+2 answers the root
// mail 4(k/2), an earlier conversation; 4k+3 answers 4k+2, a reply to a reply.
func mailParent(i int) int {
	switch i % 4 {
	case 2:
		return 4 * (i / 8)
	case 3:
		return i - 1
	}
	return -1
}

// mailRoot is the mail whose thread mail i belongs to.
func mailRoot(i int) int {
	for p := mailParent(i); p >= 0; p = mailParent(i) {
		i = p
	}
	return i
}

func mailMessageID(box email.MailboxConfig, i int) string {
	return fmt.Sprintf("c%04d.%s@ext.test", i, box.Name)
}

var mailMarker = regexp.MustCompile(`\bmail-(\d{4})\b`)

// testMail is mail i of the run into box.
func testMail(box email.MailboxConfig, i int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender %d <sender%d@ext.test>\nTo: %s\n", i%5, i%5, box.Address)
	fmt.Fprintf(&b, "Message-ID: <%s>\nDate: Sun, 29 Nov 2026 10:00:00 +0100\n", mailMessageID(box, i))
	if p := mailParent(i); p >= 0 {
		var refs []string
		for q := p; q >= 0; q = mailParent(q) {
			refs = append([]string{"<" + mailMessageID(box, q) + ">"}, refs...)
		}
		fmt.Fprintf(&b, "Subject: Re: Case %d\nIn-Reply-To: <%s>\nReferences: %s\n", mailRoot(i), mailMessageID(box, p), strings.Join(refs, " "))
	} else {
		fmt.Fprintf(&b, "Subject: Case %d\n", i)
	}
	fmt.Fprintf(&b, "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nmail-%04d\n", i)
	b.WriteString("Guten Tag, anbei die Angaben zum Vorgang; bitte um kurze Bestätigung.\n")
	return crlf(b.String())
}

// deliverMails delivers mails [from, to) into box over LMTP, one every gap, retrying a
// failed delivery (a retry may deliver a mail twice; the bridge knows it by Message-ID).
func deliverMails(ctx context.Context, t testing.TB, box email.MailboxConfig, from, to int, gap time.Duration) {
	for i := from; i < to && ctx.Err() == nil; i++ {
		var err error
		for try := 0; try < 5; try++ {
			if err = dc.Deliver(ctx, box.Address, testMail(box, i)); err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("deliver mail %d: %v", i, err)
		}
		time.Sleep(gap)
	}
}

// roomWatch records the room's messages as the Matrix user's /sync shows them
// (matrixtest.WatchRoom passes them to add) and, at the end, /messages; an event seen
// either way counts once, by its ID.
type roomWatch struct {
	cli  *mautrix.Client
	room id.RoomID

	mu     sync.Mutex
	events map[id.EventID]*event.Event // guarded by mu
	roots  []id.EventID                // guarded by mu; bridged conversations, in order seen
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
		if i, ok := bridgedMail(e); ok && mailParent(i) < 0 && threadRoot(e) == "" {
			w.roots = append(w.roots, e.ID)
		}
	}
}

// mailsSeen counts the distinct test mails seen so far.
func (w *roomWatch) mailsSeen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[int]bool{}
	for _, e := range w.events {
		if i, ok := bridgedMail(e); ok {
			seen[i] = true
		}
	}
	return len(seen)
}

// bridgedMail is the number of the test mail that e shows, if it is one.
func bridgedMail(e *event.Event) (int, bool) {
	if !strings.HasPrefix(e.Sender.Localpart(), email.DefaultPrefix) {
		return 0, false
	}
	m := mailMarker.FindStringSubmatch(e.Content.AsMessage().Body)
	if m == nil {
		return 0, false
	}
	i, _ := strconv.Atoi(m[1])
	return i, true
}

// all returns the room's messages as /sync showed them and as /messages returns them now.
func (w *roomWatch) all(ctx context.Context) (map[id.EventID]*event.Event, error) {
	evts, err := matrixtest.RoomMessages(ctx, w.cli, w.room)
	if err != nil {
		return nil, err
	}
	w.add(evts)
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.events), nil
}

// sendReplies has the Matrix user answer n times, one every gap, each in the thread of a
// bridged conversation (spread over those seen so far), and returns the events' IDs.
func sendReplies(ctx context.Context, t testing.TB, w *roomWatch, n int, gap time.Duration) []id.EventID {
	txn := unique("crash")
	out := make([]id.EventID, 0, n)
	for j := 0; j < n && ctx.Err() == nil; j++ {
		var root id.EventID
		for ctx.Err() == nil {
			w.mu.Lock()
			if len(w.roots) > 0 {
				root = w.roots[(j*7)%len(w.roots)]
			}
			w.mu.Unlock()
			if root != "" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: fmt.Sprintf("reply-%04d: Danke, wir melden uns.", j),
			RelatesTo: &event.RelatesTo{Type: event.RelThread, EventID: root, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: root}}}
		for ctx.Err() == nil {
			// The transaction ID makes a retried send after a timeout safe.
			resp, err := w.cli.SendMessageEvent(ctx, w.room, event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: fmt.Sprintf("%s-%d", txn, j)})
			if err == nil {
				out = append(out, resp.EventID)
				break
			}
			t.Logf("reply %d: %v; retrying", j, err)
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(gap)
	}
	return out
}

// crashCounts are the outcome of a crash test.
type crashCounts struct {
	lostMails, doubledMails, misthreaded int
	lostReplies, doubledReplies          int // doubled: two different Message-IDs for one event
	resentReplies                        int // deliveries with a Message-ID delivered before
	missing                              []string
	notices                              []string // the bot's notices in the room (failure reports)
}

// countCrash compares the room and the SMTP server's log with what was sent.
func countCrash(ctx context.Context, w *roomWatch, replies []id.EventID) (crashCounts, error) {
	var c crashCounts
	evts, err := w.all(ctx)
	if err != nil {
		return c, err
	}
	seen := make([][]*event.Event, crashMails)
	for _, e := range evts {
		if i, ok := bridgedMail(e); ok && i < crashMails {
			seen[i] = append(seen[i], e)
		}
		if e.Sender.Localpart() == "switchboard" && e.Content.AsMessage().MsgType == event.MsgNotice {
			c.notices = append(c.notices, e.Content.AsMessage().Body)
		}
	}
	for i, es := range seen {
		switch {
		case len(es) == 0:
			c.lostMails++
			c.missing = append(c.missing, fmt.Sprintf("mail-%04d", i))
		case len(es) > 1:
			c.doubledMails++
		}
	}
	for i, es := range seen {
		r := seen[mailRoot(i)]
		if i == mailRoot(i) || len(es) != 1 || len(r) != 1 {
			continue
		}
		if threadRoot(es[0]) != r[0].ID {
			c.misthreaded++
		}
	}

	mails, err := smtpd.Received()
	if err != nil {
		return c, err
	}
	deliveries := map[id.EventID]int{}
	msgIDs := map[id.EventID]map[string]bool{}
	for _, m := range mails {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			continue
		}
		evt := id.EventID(msg.Header.Get("X-Switchboard-Event"))
		if evt == "" {
			continue
		}
		deliveries[evt]++
		if msgIDs[evt] == nil {
			msgIDs[evt] = map[string]bool{}
		}
		msgIDs[evt][m.MessageID] = true
	}
	for j, evt := range replies {
		switch n := len(msgIDs[evt]); {
		case n == 0:
			c.lostReplies++
			c.missing = append(c.missing, fmt.Sprintf("reply-%04d (%s)", j, evt))
		case n > 1:
			c.doubledReplies++
		}
		c.resentReplies += max(0, deliveries[evt]-len(msgIDs[evt]))
	}
	return c, nil
}

// verifyCrash waits until every mail is in the room and every reply at the SMTP server,
// then fails on any lost or doubled one and logs the counts.
func verifyCrash(ctx context.Context, t *testing.T, w *roomWatch, replies []id.EventID, timeout time.Duration) {
	t.Helper()
	var c crashCounts
	var err error
	deadline := time.Now().Add(timeout)
	for {
		c, err = countCrash(ctx, w, replies)
		if err == nil && c.lostMails == 0 && c.lostReplies == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mail → Matrix: %d mails, %d lost, %d doubled; %d replies by mail outside their conversation's thread", crashMails, c.lostMails, c.doubledMails, c.misthreaded)
	t.Logf("Matrix → SMTP: %d replies (of %d sent), %d lost, %d doubled (two Message-IDs for one event); %d resent with the same Message-ID",
		crashReplies, len(replies), c.lostReplies, c.doubledReplies, c.resentReplies)
	if len(replies) != crashReplies {
		t.Errorf("the Matrix user sent %d replies, want %d", len(replies), crashReplies)
	}
	if c.lostMails+c.doubledMails+c.lostReplies+c.doubledReplies > 0 {
		t.Fatalf("lost or doubled messages (see above); missing: %v; the bot's notices in the room: %q", c.missing, c.notices)
	}
}
