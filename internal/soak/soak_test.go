package soak

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
)

// The load: each direction sends one message every gap while the kills go on.
const (
	xmppGap = 250 * time.Millisecond // XMPP → Matrix and Matrix → XMPP
	mailGap = 500 * time.Millisecond // mail → Matrix and Matrix → mail
)

// Kills come 1–4 s after the previous start was ready.
const (
	killMin  = time.Second
	killSpan = 3 * time.Second
)

// quiet is how long the counts must stay unchanged, with nothing missing, before the final
// count: a late resend is counted too.
const quiet = 10 * time.Second

// settleTimeout bounds the wait for quiescence after the last kill (the dispatcher gives up
// on an event after 20 attempts, well within it).
const settleTimeout = 3 * time.Minute

// stuck ends the wait early when messages are missing and nothing has changed for this
// long: the bridge gave up on them (with a notice in the room).
const stuck = time.Minute

// TestSoak runs the kill soak on SQLite and PostgreSQL (scripts/soak): traffic both ways
// through the XMPP and email bridges while the binary is killed with SIGKILL every 1–4 s,
// SWITCHBOARD_SOAK_KILLS times. It fails on any message lost (either way) and on any
// message doubled into Matrix or sent to a peer under two ids; it reports, without failing,
// the stanzas and mails a peer got twice under the same id, per 100 kills.
func TestSoak(t *testing.T) {
	kills, err := strconv.Atoi(os.Getenv(killsEnv))
	if os.Getenv(killsEnv) == "" {
		t.Skipf("the kill soak runs only when %s is set (scripts/soak)", killsEnv)
	}
	if err != nil || kills < 1 {
		t.Fatalf("%s=%q: want a positive number of kills", killsEnv, os.Getenv(killsEnv))
	}
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			r := soak(t, dialect, kills)
			r.report(t)
		})
	}
}

// soak runs the soak on one store and returns its counts.
func soak(t *testing.T, dialect store.Dialect, kills int) *result {
	dbURI := storetest.NewDatabaseURI(t, dialect)
	alice := hs.NewUser(t, "alice") // talks to bob over XMPP
	carol := hs.NewUser(t, "carol") // answers mail
	bob := newXClient(t)
	mb := newMailbox(t)
	sb := sbproc.Launch(t, workDir, "github.com/switchboard-matrix/switchboard/cmd/switchboard", hs.RegistrationPath, sbproc.Config{
		HomeserverURL: hs.URL, Domain: domain, RegistrationID: hs.Registration.ID, ASPort: hs.ASPort,
		DatabaseURI: dbURI, LogLevel: getenv(logEnv, "info"), Modules: modulesYAML(mb, carol.UserID),
	})
	defer sb.Stop()

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	dm, puppet := openDM(t, alice, bob.jid)
	mailRoom := matrixtest.AcceptInvite(t, carol)
	dmWatch := newRoomWatch(watchCtx, alice, dm)
	mailWatch := newRoomWatch(watchCtx, carol, mailRoom)
	go bob.resendLoop(watchCtx, puppet)

	// Mail 0 makes the link (the first look into the folder); what follows is new mail.
	deliverMail(t, mb, 0)
	waitFor(t, 60*time.Second, "the first mail in the room", mailWatch.hasRoot)

	r := &result{store: string(dialect), kills: kills}
	load, stopLoad := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var xmppOut, mailOut []id.EventID
	wg.Add(4)
	go func() { defer wg.Done(); r.xmppIn.sent = sendXMPPLoad(load, bob, puppet, xmppGap) }()
	go func() {
		defer wg.Done()
		xmppOut = sendMatrixLoad(load, t, alice, dm, xmppGap, func(i int) *event.MessageEventContent {
			return &event.MessageEventContent{MsgType: event.MsgText, Body: marker(markXMPPOut, i)}
		})
	}()
	go func() { defer wg.Done(); r.mailIn.sent = deliverMailLoad(load, t, mb, 1, mailGap) }()
	go func() {
		defer wg.Done()
		mailOut = sendMatrixLoad(load, t, carol, mailRoom, mailGap, func(j int) *event.MessageEventContent {
			return replyContent(load, mailWatch, j)
		})
	}()

	begin := time.Now()
	rng := rand.New(rand.NewPCG(uint64(begin.UnixNano()), 17))
	for k := 1; k <= kills; k++ {
		time.Sleep(killMin + time.Duration(rng.Int64N(int64(killSpan))))
		sb.Kill9()
		if k%10 == 0 || k == kills {
			t.Logf("kill -9 #%d at %s", k, time.Since(begin).Round(time.Millisecond))
		}
		sb.Start()
	}
	r.killPhase = time.Since(begin)
	stopLoad()
	wg.Wait()
	r.xmppOut.sent, r.mailOut.sent = len(xmppOut), len(mailOut)
	t.Logf("kills done after %s; sent: XMPP→Matrix %d, Matrix→XMPP %d, mail→Matrix %d, Matrix→mail %d",
		r.killPhase.Round(time.Second), r.xmppIn.sent, r.xmppOut.sent, r.mailIn.sent, r.mailOut.sent)

	// Quiescence: nothing missing, and the counts unchanged for quiet.
	deadline := time.Now().Add(settleTimeout)
	var last string
	stableSince := time.Now()
	for {
		c, err := count(watchCtx, r, dmWatch, mailWatch, bob, xmppOut, mailOut)
		if err != nil {
			t.Logf("count: %v", err)
		} else {
			*r = c
			if s := r.key(); s != last {
				last, stableSince = s, time.Now()
			}
			if r.missing() == 0 && time.Since(stableSince) >= quiet {
				break
			}
			if time.Since(stableSince) >= stuck {
				t.Errorf("nothing changed for %s with %d messages missing", stuck, r.missing())
				break
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("not quiet %s after the last kill: %d messages still missing", settleTimeout, r.missing())
			break
		}
		time.Sleep(2 * time.Second)
	}
	r.settle = time.Since(begin) - r.killPhase
	bob.mu.Lock()
	r.xmppResends = bob.resends
	bob.mu.Unlock()
	return r
}

// flow counts one direction: messages sent, lost (never arrived), doubled (arrived as two
// or more Matrix events, or under two or more ids at the peer) and, at a peer, same-id
// repeats (a stanza or mail received again with an id already received).
type flow struct{ sent, lost, doubled, repeats int }

// result is one store's soak.
type result struct {
	store             string
	kills             int
	xmppIn, mailIn    flow // into Matrix
	xmppOut, mailOut  flow // to the peers
	killPhase, settle time.Duration
	xmppResends       int
	lostMarkers       []string // the messages lost, with the thread of a lost reply
	repeated          []string // the messages a peer got again under the same id
	notices           []string // the bot's notices in the mail room
}

func (r *result) missing() int {
	return r.xmppIn.lost + r.mailIn.lost + r.xmppOut.lost + r.mailOut.lost
}

// key is the counts as a string, to see them change.
func (r *result) key() string {
	return fmt.Sprint(r.xmppIn, r.mailIn, r.xmppOut, r.mailOut)
}

// count compares what arrived on each side with what was sent, as recorded in r.
func count(ctx context.Context, r *result, dmWatch, mailWatch *roomWatch, bob *xclient, xmppOut, mailOut []id.EventID) (result, error) {
	c := result{store: r.store, kills: r.kills, killPhase: r.killPhase}
	c.xmppIn.sent, c.mailIn.sent, c.xmppOut.sent, c.mailOut.sent = r.xmppIn.sent, r.mailIn.sent, r.xmppOut.sent, r.mailOut.sent

	inDM, err := dmWatch.counts(ctx, markXMPPIn)
	if err != nil {
		return c, err
	}
	inMailRoom, err := mailWatch.counts(ctx, markMailIn)
	if err != nil {
		return c, err
	}
	intoMatrix := func(f *flow, prefix string, got map[string]int) {
		for i := 0; i < f.sent; i++ {
			switch n := got[marker(prefix, i)]; {
			case n == 0:
				f.lost++
				c.lostMarkers = append(c.lostMarkers, marker(prefix, i))
			case n > 1:
				f.doubled++
			}
		}
	}
	intoMatrix(&c.xmppIn, markXMPPIn, inDM)
	intoMatrix(&c.mailIn, markMailIn, inMailRoom)

	// XMPP: by marker, and per marker by stanza id.
	_, byID := bob.received(markXMPPOut)
	for i := 0; i < c.xmppOut.sent; i++ {
		ids := byID[marker(markXMPPOut, i)]
		switch {
		case len(ids) == 0:
			c.xmppOut.lost++
			c.lostMarkers = append(c.lostMarkers, marker(markXMPPOut, i))
		case len(ids) > 1:
			c.xmppOut.doubled++
		}
		for _, n := range ids {
			c.xmppOut.repeats += n - 1
			if n > 1 {
				c.repeated = append(c.repeated, marker(markXMPPOut, i))
			}
		}
	}

	// Mail: the SMTP peer's log of accepted mail, by the reply's event and by Message-ID.
	mails, err := smtpd.Received()
	if err != nil {
		return c, err
	}
	ours := make(map[id.EventID]bool, len(mailOut))
	for _, e := range mailOut {
		ours[e] = true
	}
	byEvent := map[id.EventID]map[string]int{}
	for _, m := range mails {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
		if err != nil {
			continue
		}
		evt := id.EventID(msg.Header.Get("X-Switchboard-Event"))
		if !ours[evt] {
			continue // another run's, or not a reply
		}
		if byEvent[evt] == nil {
			byEvent[evt] = map[string]int{}
		}
		byEvent[evt][m.MessageID]++
	}
	for j, evt := range mailOut {
		ids := byEvent[evt]
		switch {
		case len(ids) == 0:
			c.mailOut.lost++
			c.lostMarkers = append(c.lostMarkers, mailWatch.describeReply(j))
		case len(ids) > 1:
			c.mailOut.doubled++
		}
		for _, n := range ids {
			c.mailOut.repeats += n - 1
			if n > 1 {
				c.repeated = append(c.repeated, marker(markMailOut, j))
			}
		}
	}
	c.notices = mailWatch.notices(10)
	return c, nil
}

// perHundred is the same-id repeats to the peers per 100 kills.
func (r *result) perHundred() float64 {
	return float64(r.xmppOut.repeats+r.mailOut.repeats) * 100 / float64(r.kills)
}

// report logs the counts, appends them to the results file and fails on loss or doubling.
func (r *result) report(t *testing.T) {
	t.Logf("%s, %d kills (%s of kills, %s to settle):", r.store, r.kills, r.killPhase.Round(time.Second), r.settle.Round(time.Second))
	t.Logf("  XMPP → Matrix:  %5d sent, %d lost, %d doubled (the XMPP client resent %d without a receipt)", r.xmppIn.sent, r.xmppIn.lost, r.xmppIn.doubled, r.xmppResends)
	t.Logf("  mail → Matrix:  %5d sent, %d lost, %d doubled", r.mailIn.sent, r.mailIn.lost, r.mailIn.doubled)
	t.Logf("  Matrix → XMPP:  %5d sent, %d lost, %d doubled under two ids, %d same-id repeats", r.xmppOut.sent, r.xmppOut.lost, r.xmppOut.doubled, r.xmppOut.repeats)
	t.Logf("  Matrix → mail:  %5d sent, %d lost, %d doubled under two ids, %d same-id repeats", r.mailOut.sent, r.mailOut.lost, r.mailOut.doubled, r.mailOut.repeats)
	t.Logf("  same-id repeats to the peers: %.1f per 100 kills (target 0–1)", r.perHundred())
	if path := os.Getenv(resultsEnv); path != "" {
		line := strings.Join([]string{
			r.store, strconv.Itoa(r.kills),
			strconv.Itoa(r.xmppIn.sent + r.mailIn.sent), strconv.Itoa(r.xmppIn.lost + r.mailIn.lost), strconv.Itoa(r.xmppIn.doubled + r.mailIn.doubled),
			strconv.Itoa(r.xmppOut.sent), strconv.Itoa(r.xmppOut.lost), strconv.Itoa(r.xmppOut.doubled), strconv.Itoa(r.xmppOut.repeats),
			strconv.Itoa(r.mailOut.sent), strconv.Itoa(r.mailOut.lost), strconv.Itoa(r.mailOut.doubled), strconv.Itoa(r.mailOut.repeats),
			strconv.FormatFloat(r.perHundred(), 'f', 1, 64),
		}, "\t")
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			_, err = fmt.Fprintln(f, line)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Errorf("results file: %v", err)
		}
	}
	if len(r.repeated) > 0 {
		t.Logf("  repeated to a peer under the same id: %v", r.repeated[:min(len(r.repeated), 20)])
	}
	if r.missing() > 0 {
		t.Errorf("lost messages: %q; the bot's notices in the mail room: %q", r.lostMarkers[:min(len(r.lostMarkers), 20)], r.notices)
	}
	if r.xmppIn.doubled+r.mailIn.doubled > 0 {
		t.Errorf("messages doubled into Matrix (see above)")
	}
	if r.xmppOut.doubled+r.mailOut.doubled > 0 {
		t.Errorf("messages sent to a peer under two different ids (see above)")
	}
}

// waitFor polls cond every 200 ms until it holds, failing t after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
