package sipe2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// The benchmarks below send b.N text messages one way through the bridge between the
// package's real Kamailio and Dendrite, and the same through each server alone as the
// baseline of the same run: a Matrix user to another Matrix user (BenchmarkHomeserverSend)
// and a SIP phone to another SIP phone through Kamailio (BenchmarkKamailioDirect).
// scripts/bench sip prints the ratios. The SIP users are bench (sender) and bench2
// (receiver); each phone unregisters its contact when its run ends, so the next run's
// phone is the only contact Kamailio knows.
//
// Each runs twice, as sub-benchmarks by the number of messages in flight (sent and not yet
// seen by the receiver), kept by as many senders that each send their next message once
// their last one arrived; the senders share one sending client (one phone's UDP socket, or
// one Matrix access token). One warm-up message goes first, untimed.
//   - inflight=1: one message at a time, as a person chatting; the latencies are those of
//     a message on an idle path;
//   - inflight=16: sixteen senders, for the throughput; the latencies include queueing.
//
// A message is sent when the sender starts the send (the phone's MESSAGE transaction,
// which answers Kamailio's 407 challenge once, or the PUT /send of the Matrix client) and
// arrives when the receiver sees it: in a /sync long-poll of the Matrix user, or as a
// MESSAGE request received by the phone. Each reports msgs/s (all b.N messages over the
// time from the first send to the last arrival), p50-ms and p99-ms (end-to-end latency); a
// Matrix sender also reports send-p50-ms and send-p99-ms (its PUT /send round trip), a
// phone send-p50-ms and send-p99-ms (its MESSAGE transactions until the final answer: 202
// from the bridge after its durable enqueue, 200 from the receiving phone).

// benchWindows are the numbers of messages in flight each benchmark runs with.
var benchWindows = []int{1, 16}

// benchArrivalTimeout is how long a sender waits for its message to arrive.
const benchArrivalTimeout = 60 * time.Second

// BenchmarkHomeserverSend is the Matrix baseline: a Matrix user sends to a private room
// shared with another Matrix user, who receives by /sync. No bridge runs.
func BenchmarkHomeserverSend(b *testing.B) {
	forWindows(b, func(b *testing.B, window int) {
		from, to := newMatrixUser(b, "bench"), newMatrixUser(b, "bench2")
		ctx := context.Background()
		resp, err := from.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", Invite: []id.UserID{to.UserID}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := to.JoinRoomByID(ctx, resp.RoomID); err != nil {
			b.Fatal(err)
		}
		benchMatrixSender(b, window, from, resp.RoomID, func(sink func(string)) {
			startMatrixReceiver(b, to, resp.RoomID, from.UserID, sink)
		})
	})
}

// BenchmarkKamailioDirect is the SIP baseline: the phone of bench sends MESSAGE requests
// to bench2's AOR, which Kamailio routes to bench2's registered phone. No bridge runs.
func BenchmarkKamailioDirect(b *testing.B) {
	forWindows(b, func(b *testing.B, window int) {
		sender, receiver := benchPhone(b, "bench"), benchPhone(b, "bench2")
		benchPhoneSender(b, window, sender, receiver.AOR(), func(sink func(string)) {
			startPhoneReceiver(b, receiver, sink)
		})
	})
}

// BenchmarkSIPToMatrix: the phone of bench sends text/plain MESSAGE requests through
// Kamailio to a Matrix user's address on the bridge domain; the Matrix user receives them
// from bench's ghost in their DM by /sync.
func BenchmarkSIPToMatrix(b *testing.B) {
	forWindows(b, func(b *testing.B, window int) {
		startBridge(b, nil)
		phone, user := benchPhone(b, "bench"), newMatrixUser(b, "bench")
		to := sipURIOf(b, user.UserID)
		room := openBenchDM(b, phone, user)
		benchPhoneSender(b, window, phone, to, func(sink func(string)) {
			startMatrixReceiver(b, user, room, ghostOf(b, "bench"), sink)
		})
	})
}

// BenchmarkMatrixToSIP: a Matrix user sends text messages in the DM with bench2, whose
// phone receives them as MESSAGE requests from the bridge through Kamailio.
func BenchmarkMatrixToSIP(b *testing.B) {
	forWindows(b, func(b *testing.B, window int) {
		startBridge(b, nil)
		phone, user := benchPhone(b, "bench2"), newMatrixUser(b, "bench2")
		room := openBenchDM(b, phone, user)
		benchMatrixSender(b, window, user, room, func(sink func(string)) {
			startPhoneReceiver(b, phone, sink)
		})
	})
}

func forWindows(b *testing.B, bench func(b *testing.B, window int)) {
	for _, w := range benchWindows {
		b.Run("inflight="+strconv.Itoa(w), func(b *testing.B) { bench(b, w) })
	}
}

// benchPhone is a registered phone of user that removes its contact from Kamailio at the
// end of the run (before it closes), so that a later run's phone of the same user is the
// one Kamailio routes to.
func benchPhone(b *testing.B, user string) *sipphone.Phone {
	b.Helper()
	p := newPhone(b, user)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		code, reason, err := p.Send(ctx, sipphone.Request{Method: "REGISTER", To: p.AOR(), Headers: map[string]string{"Expires": "0"}})
		if err != nil || code/100 != 2 {
			b.Errorf("unregister %s: %d %s %v", p.AOR(), code, reason, err)
		}
	})
	return p
}

// openBenchDM opens the DM of the phone's user and the Matrix user as a user does: the
// phone writes first, the ghost invites, the Matrix user joins.
func openBenchDM(b *testing.B, p *sipphone.Phone, user *mautrix.Client) id.RoomID {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, reason, err := p.Send(ctx, sipphone.Request{To: sipURIOf(b, user.UserID), ContentType: "text/plain;charset=utf-8", Body: []byte(unique("hello "))})
	if err != nil || code != 202 {
		b.Fatalf("the opening MESSAGE: %d %s %v, want 202", code, reason, err)
	}
	return matrixtest.AcceptInvite(b, user)
}

// benchMatrixSender has cli send the messages of a flight to room, each by one PUT /send
// with its own transaction ID. startReceiver starts the receiving side, which passes every
// body it sees to sink.
func benchMatrixSender(b *testing.B, window int, cli *mautrix.Client, room id.RoomID, startReceiver func(sink func(string))) {
	txn := unique("bench")
	puts := make([]time.Duration, b.N)
	runFlights(b, window, startReceiver, func(ctx context.Context, f *flight, i int) error {
		content := &event.MessageEventContent{MsgType: event.MsgText, Body: f.body(i)}
		start := time.Now()
		_, err := cli.SendMessageEvent(ctx, room, event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: fmt.Sprintf("%s-%s-%d", txn, f.prefix, i)})
		if f.timed {
			puts[i] = time.Since(start)
		}
		return err
	})
	reportPercentiles(b, "send-", puts)
}

// benchPhoneSender has p send the messages of a flight to the SIP URI to as text/plain
// MESSAGE requests; an answer other than 2xx fails the run.
func benchPhoneSender(b *testing.B, window int, p *sipphone.Phone, to string, startReceiver func(sink func(string))) {
	txns := make([]time.Duration, b.N)
	runFlights(b, window, startReceiver, func(ctx context.Context, f *flight, i int) error {
		start := time.Now()
		code, reason, err := p.Send(ctx, sipphone.Request{To: to, ContentType: "text/plain;charset=utf-8", Body: []byte(f.body(i))})
		if f.timed {
			txns[i] = time.Since(start)
		}
		if err != nil {
			return err
		}
		if code/100 != 2 {
			return fmt.Errorf("MESSAGE to %s: %d %s", to, code, reason)
		}
		return nil
	})
	reportPercentiles(b, "send-", txns)
}

// runFlights starts the receiver, warms the path up with one message, then times a flight
// of b.N messages and reports its throughput and latencies.
func runFlights(b *testing.B, window int, startReceiver func(sink func(string)), send func(context.Context, *flight, int) error) {
	warm, timed := newFlight(1, false), newFlight(b.N, true)
	startReceiver(func(body string) {
		now := time.Now()
		if !warm.arrive(body, now) {
			timed.arrive(body, now)
		}
	})
	if err := warm.run(1, send); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	b.ResetTimer()
	err := timed.run(window, send)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	reportPercentiles(b, "", timed.latencies())
}

// reportPercentiles reports the p50 and p99 of ds in milliseconds (nearest rank).
func reportPercentiles(b *testing.B, prefix string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p int) time.Duration { return s[max(0, (p*len(s)+99)/100-1)] }
	b.ReportMetric(float64(rank(50).Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64(rank(99).Microseconds())/1000, prefix+"p99-ms")
}

// flight is a batch of numbered messages: when each was sent and when it arrived.
type flight struct {
	prefix string // starts every body; unique in the test run; immutable
	timed  bool   // the timed flight, not the warm-up; immutable
	next   atomic.Int64

	mu      sync.Mutex
	sent    []time.Time     // guarded by mu
	arrived []time.Time     // guarded by mu
	signal  []chan struct{} // closed on arrival; immutable slice
}

func newFlight(n int, timed bool) *flight {
	f := &flight{prefix: unique("bm") + "x", timed: timed, sent: make([]time.Time, n), arrived: make([]time.Time, n), signal: make([]chan struct{}, n)}
	for i := range f.signal {
		f.signal[i] = make(chan struct{})
	}
	return f
}

func (f *flight) body(i int) string { return f.prefix + " message " + strconv.Itoa(i) }

// arrive records the arrival of the message with body and reports whether it is one of
// the flight's.
func (f *flight) arrive(body string, at time.Time) bool {
	rest, ok := strings.CutPrefix(strings.TrimSpace(body), f.prefix+" message ")
	if !ok {
		return false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || i >= len(f.arrived) {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.arrived[i].IsZero() {
		f.arrived[i] = at
		close(f.signal[i])
	}
	return true
}

// run sends the flight's messages with window senders, each of which sends its next
// message once its last one arrived, and returns when all arrived.
func (f *flight) run(window int, send func(context.Context, *flight, int) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, window)
	var wg sync.WaitGroup
	for range window {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(f.next.Add(1) - 1)
				if i >= len(f.sent) || ctx.Err() != nil {
					return
				}
				f.mu.Lock()
				f.sent[i] = time.Now()
				f.mu.Unlock()
				if err := send(ctx, f, i); err != nil {
					errs <- fmt.Errorf("send message %d: %w", i, err)
					cancel()
					return
				}
				select {
				case <-f.signal[i]:
				case <-time.After(benchArrivalTimeout):
					errs <- fmt.Errorf("message %d did not arrive within %s (%d of %d arrived)", i, benchArrivalTimeout, f.count(), len(f.sent))
					cancel()
					return
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (f *flight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, t := range f.arrived {
		if !t.IsZero() {
			n++
		}
	}
	return n
}

// latencies are the end-to-end latencies of the messages, in send order.
func (f *flight) latencies() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]time.Duration, len(f.sent))
	for i := range out {
		out[i] = f.arrived[i].Sub(f.sent[i])
	}
	return out
}

// startMatrixReceiver syncs cli once, then long-polls /sync in the background for the
// room's m.room.message events from sender and passes their bodies to sink, until the
// benchmark ends.
func startMatrixReceiver(b *testing.B, cli *mautrix.Client, room id.RoomID, sender id.UserID, sink func(string)) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	none := &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}}
	filter, err := cli.CreateFilter(ctx, &mautrix.Filter{
		AccountData: none, Presence: none,
		Room: &mautrix.RoomFilter{
			Rooms: []id.RoomID{room}, AccountData: none, Ephemeral: none, State: none,
			Timeline: &mautrix.FilterPart{Limit: 1000, Types: []event.Type{event.EventMessage}, Senders: []id.UserID{sender}},
		},
	})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	// The first sync that has the room joined: a later sync that is the first to see the
	// join gives the room as newly joined, with a limited timeline.
	since := ""
	matrixtest.WaitFor(b, 30*time.Second, "the joined room in /sync", func() (bool, error) {
		resp, err := cli.SyncRequest(ctx, 0, "", filter.FilterID, false, "")
		if err != nil {
			return false, err
		}
		since = resp.NextBatch
		return resp.Rooms.Join[room] != nil, nil
	})
	done := make(chan struct{})
	b.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			resp, err := cli.SyncRequest(ctx, 30000, since, filter.FilterID, false, "")
			if err != nil {
				if ctx.Err() == nil {
					b.Logf("sync: %v", err)
					time.Sleep(100 * time.Millisecond)
				}
				continue
			}
			since = resp.NextBatch
			if r := resp.Rooms.Join[room]; r != nil {
				if r.Timeline.Limited {
					b.Errorf("sync: a limited timeline (%d events): messages may be missed", len(r.Timeline.Events))
				}
				for _, e := range r.Timeline.Events {
					if e.Type == event.EventMessage && e.Sender == sender {
						sink(messageBody(e))
					}
				}
			}
		}
	}()
}

// messageBody is the body of a message event as received in a sync (content unparsed).
func messageBody(e *event.Event) string {
	if err := e.Content.ParseRaw(e.Type); err != nil && !errors.Is(err, event.ErrContentAlreadyParsed) {
		return ""
	}
	if m := e.Content.AsMessage(); m != nil {
		return m.Body
	}
	return ""
}

// startPhoneReceiver passes the text of every MESSAGE request p receives to sink, as the
// phone receives it, until the benchmark ends. It watches through Phone.Wait with a match
// that never accepts: Wait calls it on every request received so far each time one more
// arrives, under the phone's lock, so sink must not call back into the phone.
func startPhoneReceiver(b *testing.B, p *sipphone.Phone, sink func(string)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.Cleanup(func() { cancel(); <-done })
	seen := make(map[*sip.Request]bool) // only touched by Wait's match, one call at a time
	go func() {
		defer close(done)
		_, _ = p.Wait(ctx, "benchmark messages", func(r *sip.Request) bool {
			if seen[r] || r.Method != sip.MESSAGE {
				return false
			}
			seen[r] = true
			ct := ""
			if h := r.ContentType(); h != nil {
				ct = h.Value()
			}
			if c, err := sipmsg.Parse(ct, r.Body(), 0); err == nil && c.Kind == sipmsg.KindText {
				sink(c.Plain)
			}
			return false
		})
	}()
}
