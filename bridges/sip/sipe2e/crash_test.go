package sipe2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbproc"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipp"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

const (
	crashSIPMessages    = 500 // SIPp → Matrix
	crashMatrixMessages = 100 // Matrix → the phone
	crashSIPWorkers     = 4   // SIPp runs at a time
	crashSIPGap         = 90 * time.Millisecond
	crashMatrixGap      = 450 * time.Millisecond
	// crashSIPTimeout is how long SIPp retransmits a MESSAGE (T1 500 ms, doubling) before
	// it gives up on it: longer than a restart, so most MESSAGEs sent while the bridge is
	// down get through on a retransmission.
	crashSIPTimeout = 8 * time.Second
)

// crashKills are the kills: after is the time from one start (or the load's) to the kill,
// down how long Switchboard stays down. The long one outlasts SIPp's retransmissions, so
// the test resends what SIPp gave up on.
var crashKills = []struct{ after, down time.Duration }{
	{after: 3 * time.Second},
	{after: 8 * time.Second, down: crashSIPTimeout + 2*time.Second},
	{after: 6 * time.Second},
	{after: 8 * time.Second},
}

// TestCrashKill9 sends MESSAGEs from SIPp to a Matrix user, and messages from the Matrix
// user to a SIP phone behind Kamailio, while Switchboard (the real binary) is killed with
// SIGKILL and restarted several times. Afterwards every MESSAGE SIPp got a 2xx for is in
// the room once and every Matrix message reached the phone under one Call-ID: 0 lost and
// 0 doubled. On SQLite and PostgreSQL.
//
// SIPp sends straight to the bridge's UDP listener (the bridge trusts loopback, the
// proxy's address): Kamailio wants digest credentials from a user of sip.test, which
// SIPp's scenarios do not give, and Kamailio would answer at once when the bridge is down
// where SIPp's own retransmissions over UDP keep trying. A MESSAGE SIPp gave up on (no
// answer within crashSIPTimeout, or an error answer) is retransmitted by the test, as a UA
// would: by a phone of the same user "crash" straight to the bridge like SIPp, with SIPp's
// Call-ID, From tag and CSeq, until it gets a 2xx. (SIPp itself cannot: a new run has a
// new Call-ID and From tag, both made of its process ID. Through Kamailio the resend
// would be a new request: the proxy's digest challenge makes the phone send it again with
// the next CSeq, and a new request with the same body is a new message to the bridge
// unless it carries an IMDN Message-ID.)
func TestCrashKill9(t *testing.T) {
	sipp.Skip(t)
	for _, dialect := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			dbURI := storetest.NewDatabaseURI(t, dialect)
			sb := startCrashProcess(t, dbURI)
			defer sb.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()

			alice := newMatrixUser(t, "crash")
			to := sipURIOf(t, alice.UserID)
			sender := newPhone(t, "crash") // the SIPp user's phone: opens the DM
			// The same user's retransmissions of what SIPp gave up on, straight to the bridge.
			resender := sipphone.New(t, sipphone.Options{User: "crash", Domain: sipDomain, Proxy: bridgeAddr()})
			phone := newPhone(t, "crash2")
			// Each SIP user's first MESSAGE opens a DM: the ghost invites alice.
			room := openDM(ctx, t, alice, sender, to)
			room2 := openDM(ctx, t, alice, phone, to)

			w := &crashWatch{cli: alice, room: room, ghost: ghostOf(t, "crash"), seen: map[id.EventID]int{}}
			go matrixtest.WatchRoom(ctx, w.cli, w.room, w.add)

			begin := time.Now()
			var wg sync.WaitGroup
			wg.Add(2)
			var sent crashSIPResult
			go func() { defer wg.Done(); sent = sendSIPLoad(ctx, t, resender, to) }()
			var events []id.EventID
			go func() { defer wg.Done(); events = sendMatrixLoad(ctx, t, alice, room2) }()
			for k, kill := range crashKills {
				time.Sleep(kill.after)
				sb.Kill9()
				t.Logf("kill -9 #%d at %s, with %d SIP messages in the room and %d MESSAGEs at the phone; down for %s",
					k+1, time.Since(begin).Round(time.Millisecond), w.count(), len(phone.Received("MESSAGE")), kill.down)
				time.Sleep(kill.down)
				sb.Start()
			}
			wg.Wait()
			if ctx.Err() != nil {
				t.Fatal("the load did not finish in time")
			}
			t.Logf("all sent at %s: SIPp retransmitted %d times, got %d error answers and gave up on %d calls without an answer; "+
				"the phone resent %d MESSAGEs (%d attempts); %d SIPp runs failed and were repeated",
				time.Since(begin).Round(time.Millisecond), sent.retrans, sent.refused, sent.timedOut, sent.resent, sent.attempts, sent.sippErrors)
			verifyCrashSIP(ctx, t, string(dialect), w, sent, phone, events)
			t.Logf("verified at %s", time.Since(begin).Round(time.Millisecond))
		})
	}
}

// startCrashProcess writes the config of a switchboard process with the SIP bridge on the
// database dbURI and starts it. Its log is shown when t fails.
func startCrashProcess(t testing.TB, dbURI string) *sbproc.Runner {
	t.Helper()
	return sbproc.Launch(t, workDir, "github.com/switchboard-matrix/switchboard/cmd/switchboard", regPath, sbproc.Config{
		HomeserverURL: onHS.URL, Domain: domain, RegistrationID: onHS.Reg.ID, ASPort: onHS.ASPort,
		DatabaseURI: dbURI, LogLevel: getenv("SWITCHBOARD_SIPE2E_LOG", "info"),
		Modules: fmt.Sprintf(`  sip:
    enabled: true
    domain: %s
    listen:
      - {transport: udp, address: %q}
      - {transport: tcp, address: %q}
    proxy: %q
    domains: [%s]
`, bridgeDomain, bridgeAddr(), bridgeAddr(), kam.ProxyURI("tcp"), sipDomain),
	})
}

// openDM has the phone write to the Matrix user and returns the DM it opened.
func openDM(ctx context.Context, t *testing.T, cli *mautrix.Client, p *sipphone.Phone, to string) id.RoomID {
	t.Helper()
	code, reason, err := p.Send(ctx, sipphone.Request{To: to, ContentType: "text/plain", Body: []byte("hello from " + p.AOR())})
	if err != nil || code/100 != 2 {
		t.Fatalf("first MESSAGE from %s: %d %s %v", p.AOR(), code, reason, err)
	}
	return matrixtest.AcceptInvite(t, cli)
}

// crashSIPResult is what the SIP sender did.
type crashSIPResult struct {
	acked      []bool // acked[i]: message i got a 2xx
	resent     int    // MESSAGEs resent by the phone after SIPp gave up
	attempts   int    // the phone's attempts at them
	retrans    int    // retransmissions by SIPp
	refused    int    // SIPp calls with a final answer other than 2xx
	timedOut   int    // SIPp calls without a final answer
	sippErrors int    // SIPp runs that failed before sending (repeated)
}

func crashSIPBody(i int) string { return fmt.Sprintf("crash-%04d: please call me back", i) }

var crashSIPMarker = regexp.MustCompile(`^crash-(\d{4}):`)

// sendSIPLoad sends crashSIPMessages MESSAGEs from SIPp (user crash) to the Matrix user,
// one SIPp run each (SIPp sends one body per run), crashSIPWorkers at a time, a new one
// every crashSIPGap at most.
func sendSIPLoad(ctx context.Context, t *testing.T, sender *sipphone.Phone, to string) crashSIPResult {
	res := crashSIPResult{acked: make([]bool, crashSIPMessages)}
	var mu sync.Mutex
	next := make(chan int)
	go func() {
		defer close(next)
		for i := 0; i < crashSIPMessages; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
			time.Sleep(crashSIPGap)
		}
	}()
	var wg sync.WaitGroup
	for range crashSIPWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := sendSIPMessage(ctx, t, sender, to, i)
				mu.Lock()
				res.acked[i] = r.ok
				res.attempts += r.attempts
				if r.attempts > 0 {
					res.resent++
				}
				res.sippErrors += r.sippErrors
				res.retrans += r.retrans
				res.refused += r.refused
				res.timedOut += r.timedOut
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}

// sipOutcome is what became of one SIP message.
type sipOutcome struct {
	ok                                               bool // got a 2xx
	attempts, sippErrors, retrans, refused, timedOut int
}

// sendSIPMessage sends message i with SIPp and, if SIPp gets no 2xx, resends it with the
// phone (same Call-ID, From tag and CSeq) until it gets one.
func sendSIPMessage(ctx context.Context, t *testing.T, sender *sipphone.Phone, to string, i int) sipOutcome {
	var out sipOutcome
	prefix := fmt.Sprintf("crash%04d-", i)
	var call sipp.Call
	for ctx.Err() == nil {
		st, err := sipp.SendMessages(ctx, sipp.Options{
			Target: bridgeAddr(), Transport: sipp.UDP, From: sender.AOR(), To: to, Count: 1,
			CallIDPrefix: prefix, ContentType: "text/plain;charset=utf-8", Body: crashSIPBody(i), Timeout: crashSIPTimeout,
		})
		if err == nil && len(st.Calls) == 1 {
			call = st.Calls[0]
			out.retrans = st.Sent - 1
			out.refused, out.timedOut = st.Failed, st.TimedOut
			break
		}
		// SIPp did not run, or sent nothing: nothing can have reached the bridge.
		t.Logf("message %d: SIPp: %v (%d calls); running it again", i, err, len(st.Calls))
		out.sippErrors++
		time.Sleep(200 * time.Millisecond)
	}
	for _, code := range call.Codes {
		if code/100 == 2 {
			out.ok = true
			return out
		}
	}
	tag, err := sippFromTag(prefix, call.CallID)
	if err != nil {
		t.Errorf("message %d: %v", i, err)
		return out
	}
	req := sipphone.Request{To: to, ContentType: "text/plain;charset=utf-8", Body: []byte(crashSIPBody(i)),
		CallID: call.CallID, FromTag: tag, CSeq: 1}
	for ctx.Err() == nil {
		out.attempts++
		code, _, err := sender.Send(ctx, req)
		if err == nil && code/100 == 2 {
			out.ok = true
			return out
		}
		time.Sleep(300 * time.Millisecond)
	}
	return out
}

// sippFromTag is the From tag of a SIPp call with one MESSAGE, by its Call-ID: the
// scenario's From tag is "[pid]SIPpTag00[call_number]", its Call-ID
// "<prefix><call_number>-<pid>@<ip>" (package sipp).
func sippFromTag(prefix, callID string) (string, error) {
	rest, ok := strings.CutPrefix(callID, prefix)
	rest, _, _ = strings.Cut(rest, "@")
	n, pid, ok2 := strings.Cut(rest, "-")
	if _, err := strconv.Atoi(pid); !ok || !ok2 || err != nil {
		return "", fmt.Errorf("SIPp's Call-ID %q is not %s<n>-<pid>@<ip>", callID, prefix)
	}
	return pid + "SIPpTag00" + n, nil
}

// sendMatrixLoad has the Matrix user write crashMatrixMessages messages into the DM with
// the phone, one every crashMatrixGap, and returns their event IDs.
func sendMatrixLoad(ctx context.Context, t *testing.T, cli *mautrix.Client, room id.RoomID) []id.EventID {
	txn := unique("crash")
	out := make([]id.EventID, 0, crashMatrixMessages)
	for j := 0; j < crashMatrixMessages && ctx.Err() == nil; j++ {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: fmt.Sprintf("reply-%04d: I will call you back", j)}
		for ctx.Err() == nil {
			// The transaction ID makes a retried send after a timeout safe.
			resp, err := cli.SendMessageEvent(ctx, room, event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: fmt.Sprintf("%s-%d", txn, j)})
			if err == nil {
				out = append(out, resp.EventID)
				break
			}
			t.Logf("Matrix message %d: %v; retrying", j, err)
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(crashMatrixGap)
	}
	return out
}

var crashMatrixMarker = regexp.MustCompile(`\breply-(\d{4}):`)

// crashWatch counts the SIP user's messages in the room by event, as the Matrix user's
// /sync shows them (matrixtest.WatchRoom passes them to add) and, at the end, /messages;
// an event seen either way counts once, by its ID.
type crashWatch struct {
	cli   *mautrix.Client
	room  id.RoomID
	ghost id.UserID

	mu   sync.Mutex
	seen map[id.EventID]int // guarded by mu; the test message each event shows
}

func (w *crashWatch) add(evts []*event.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range evts {
		if e.Type != event.EventMessage || e.Sender != w.ghost {
			continue
		}
		if _, ok := w.seen[e.ID]; ok {
			continue
		}
		_ = e.Content.ParseRaw(e.Type)
		if m := crashSIPMarker.FindStringSubmatch(e.Content.AsMessage().Body); m != nil {
			w.seen[e.ID], _ = strconv.Atoi(m[1])
		}
	}
}

// eventsOf are the events that show test message i.
func (w *crashWatch) eventsOf(i int) []id.EventID {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []id.EventID
	for e, j := range w.seen {
		if j == i {
			out = append(out, e)
		}
	}
	return out
}

// count is the number of test messages seen so far, doubles included.
func (w *crashWatch) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

// perMessage is how often each test message is in the room, after a last look with
// /messages.
func (w *crashWatch) perMessage(ctx context.Context) ([]int, error) {
	evts, err := matrixtest.RoomMessages(ctx, w.cli, w.room)
	if err != nil {
		return nil, err
	}
	w.add(evts)
	w.mu.Lock()
	defer w.mu.Unlock()
	n := make([]int, crashSIPMessages)
	for _, i := range w.seen {
		if i < len(n) {
			n[i]++
		}
	}
	return n, nil
}

// crashCounts are the outcome of the crash test.
type crashCounts struct {
	sipLost, sipDoubled       int
	matrixLost, matrixDoubled int
	requests, callIDs         int // MESSAGEs with a test message at the phone, and their Call-IDs
	missing                   []string
	doubled                   []string // the doubled SIP messages with their event IDs
}

// countCrash compares the room and what the phone received with what was sent.
//
// The phone's requests are counted by Call-ID: the bridge derives the Call-ID and From
// tag of a Matrix message from its event ID, so when it is killed after the phone
// answered but before it recorded the 2xx, the event comes again and it sends the same
// Call-ID and From tag with a higher CSeq. That is a retry of the same message in a new
// transaction, which a UA knows by its Call-ID and shows once, not a second message; a
// double is a message under two Call-IDs.
func countCrash(ctx context.Context, w *crashWatch, sent crashSIPResult, phone *sipphone.Phone, events []id.EventID) (crashCounts, error) {
	var c crashCounts
	n, err := w.perMessage(ctx)
	if err != nil {
		return c, err
	}
	for i, k := range n {
		switch {
		case k == 0 && sent.acked[i]:
			c.sipLost++
			c.missing = append(c.missing, crashSIPBody(i)[:10])
		case k > 1:
			c.sipDoubled++
			c.doubled = append(c.doubled, fmt.Sprintf("%s: %v", crashSIPBody(i)[:10], w.eventsOf(i)))
		}
	}
	callIDs := make([]map[string]bool, len(events))
	distinct := map[string]bool{}
	for _, r := range phone.Received("MESSAGE") {
		m := crashMatrixMarker.FindStringSubmatch(string(r.Body()))
		if m == nil {
			continue
		}
		j, _ := strconv.Atoi(m[1])
		if j >= len(callIDs) {
			continue
		}
		c.requests++
		cid := callIDOf(r)
		distinct[cid] = true
		if callIDs[j] == nil {
			callIDs[j] = map[string]bool{}
		}
		callIDs[j][cid] = true
	}
	c.callIDs = len(distinct)
	for j, ids := range callIDs {
		switch {
		case len(ids) == 0:
			c.matrixLost++
			c.missing = append(c.missing, fmt.Sprintf("reply-%04d (%s)", j, events[j]))
		case len(ids) > 1:
			c.matrixDoubled++
		}
	}
	return c, nil
}

func callIDOf(r *sip.Request) string {
	if h := r.CallID(); h != nil {
		return h.Value()
	}
	return ""
}

// verifyCrashSIP waits until every acknowledged SIP message is in the room and every
// Matrix message at the phone, then logs the counts and fails on any lost or doubled one.
func verifyCrashSIP(ctx context.Context, t *testing.T, dialect string, w *crashWatch, sent crashSIPResult, phone *sipphone.Phone, events []id.EventID) {
	t.Helper()
	acked := 0
	for _, ok := range sent.acked {
		if ok {
			acked++
		}
	}
	var c crashCounts
	var err error
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, err = countCrash(ctx, w, sent, phone, events)
		if err == nil && c.sipLost == 0 && c.matrixLost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	kills := len(crashKills)
	t.Logf("%s: %d kills; SIP->Matrix: %d messages (%d with a 2xx), %d lost, %d doubled (%d resent by the phone after SIPp gave up)",
		dialect, kills, crashSIPMessages, acked, c.sipLost, c.sipDoubled, sent.resent)
	t.Logf("%s: %d kills; Matrix->SIP: %d messages, %d lost, %d doubled (%d requests, %d distinct Call-IDs)",
		dialect, kills, len(events), c.matrixLost, c.matrixDoubled, c.requests, c.callIDs)
	if acked != crashSIPMessages {
		t.Errorf("%d of %d SIP messages got a 2xx", acked, crashSIPMessages)
	}
	if len(events) != crashMatrixMessages {
		t.Errorf("the Matrix user sent %d messages, want %d", len(events), crashMatrixMessages)
	}
	if c.sipLost+c.sipDoubled+c.matrixLost+c.matrixDoubled > 0 {
		t.Fatalf("lost or doubled messages (see above); missing: %v; doubled: %v", c.missing, c.doubled)
	}
}
