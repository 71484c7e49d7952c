package xmppe2e

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

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// The benchmarks below send b.N text messages one way through the bridge between the
// package's real Prosody and Dendrite, and the same through each server alone as the
// baseline of the same run: a Matrix user to another Matrix user (BenchmarkHomeserverSend)
// and an XMPP user to another XMPP user (BenchmarkProsodyDirect). scripts/bench prints the
// ratios.
//
// Each runs twice, as sub-benchmarks by the number of messages in flight (sent and not yet
// seen by the receiver), kept by as many senders that each send their next message once
// their last one arrived; the senders share the one sending user's client (one c2s
// stream, one access token). One warm-up message goes first, untimed.
//   - inflight=1: one message at a time, as a person chatting; the latencies are those of
//     a message on an idle path;
//   - inflight=16: sixteen senders, for the throughput; the latencies include queueing.
//
// A message is sent when the sender starts the send (the c2s write, or the PUT /send of
// the Matrix client) and arrives when the receiver's client sees it: in a /sync long-poll
// of the Matrix user, or read from the XMPP user's c2s stream. Each reports msgs/s (all
// b.N messages over the time from the first send to the last arrival), p50-ms and p99-ms
// (end-to-end latency); a Matrix sender also reports send-p50-ms and send-p99-ms, the round
// trip of its PUT /send (the homeserver's own send latency).

// benchWindows are the numbers of messages in flight each benchmark runs with.
var benchWindows = []int{1, 16}

// benchArrivalTimeout is how long a sender waits for its message to arrive.
const benchArrivalTimeout = 60 * time.Second

// BenchmarkHomeserverSend is the Matrix baseline: a Matrix user sends to a private room
// shared with another Matrix user, who receives by /sync. No bridge runs.
func BenchmarkHomeserverSend(b *testing.B) {
	forWindows(b, func(b *testing.B, window int) {
		alice, dave := newMatrixUser(b, "alice"), newMatrixUser(b, "dave")
		ctx := context.Background()
		resp, err := alice.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", Invite: []id.UserID{dave.UserID}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := dave.JoinRoomByID(ctx, resp.RoomID); err != nil {
			b.Fatal(err)
		}
		benchMatrixSender(b, window, alice, resp.RoomID, func(sink func(string)) {
			startMatrixReceiver(b, dave, resp.RoomID, alice.UserID, sink)
		})
	})
}

// BenchmarkProsodyDirect is the XMPP baseline: an XMPP user sends chat messages to another
// XMPP user's bare JID through Prosody alone. No bridge runs.
func BenchmarkProsodyDirect(b *testing.B) {
	forWindows(b, func(b *testing.B, window int) {
		erin, bob := newXClient(b, "erin"), newXClient(b, "bob")
		benchXMPPSender(b, window, erin, bob.bare(), func(sink func(string)) {
			startXMPPReceiver(b, bob, erin.bare(), sink)
		})
	})
}

// BenchmarkXMPPToMatrix: an XMPP user sends chat messages (with XEP-0184 receipt requests,
// as clients do) to a Matrix user's puppet JID in their DM; the Matrix user receives by
// /sync.
func BenchmarkXMPPToMatrix(b *testing.B) {
	forWindows(b, func(b *testing.B, window int) {
		startBridge(b, nil)
		bob, alice := newXClient(b, "bob"), newMatrixUser(b, "alice")
		room := openDM(b, alice, bob.bare())
		benchXMPPSender(b, window, bob, puppetOf(b, alice.UserID), func(sink func(string)) {
			startMatrixReceiver(b, alice, room, ghostOf(b, bob.bare().String()), sink)
		})
	})
}

// BenchmarkMatrixToXMPP: a Matrix user sends text messages in the DM with an XMPP user,
// who receives them from the user's puppet JID on the c2s stream.
func BenchmarkMatrixToXMPP(b *testing.B) {
	forWindows(b, func(b *testing.B, window int) {
		startBridge(b, nil)
		bob, alice := newXClient(b, "bob"), newMatrixUser(b, "alice")
		room := openDM(b, alice, bob.bare())
		benchMatrixSender(b, window, alice, room, func(sink func(string)) {
			startXMPPReceiver(b, bob, puppetOf(b, alice.UserID), sink)
		})
	})
}

func forWindows(b *testing.B, bench func(b *testing.B, window int)) {
	for _, w := range benchWindows {
		b.Run("inflight="+strconv.Itoa(w), func(b *testing.B) { bench(b, w) })
	}
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

// benchXMPPSender has c send the messages of a flight to to as chat messages.
func benchXMPPSender(b *testing.B, window int, c *xclient, to jid.JID, startReceiver func(sink func(string))) {
	runFlights(b, window, startReceiver, func(_ context.Context, f *flight, i int) error {
		sid := f.prefix + "-" + strconv.Itoa(i)
		return sendUncancelled(c, &xmsg.Message{ID: sid, OriginID: sid, Type: "chat", To: to, Body: f.body(i), RequestReceipt: true})
	})
}

// sendUncancelled sends a stanza on c's stream with a context that is never done, unlike
// xclient.send. mellium's Session.Send starts a goroutine that sets the connection's write
// deadline into the past once the send's context is done; when that context is cancelled
// just after Send returns and the goroutine has not run yet, it can fire during a later
// write and fail it mid-stanza, and the stream's buffered writer keeps that error: every
// later send fails and the stream is broken. With 16 senders on one stream that happened
// in about one run of three.
func sendUncancelled(c *xclient, s marshaler) error {
	raw, err := s.Marshal()
	if err != nil {
		return err
	}
	toks, err := component.StanzaTokens(raw)
	if err != nil {
		return err
	}
	return c.sess.Send(context.Background(), toks)
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
		b.Fatal(err)
	}
	resp, err := cli.SyncRequest(ctx, 0, "", filter.FilterID, false, "")
	if err != nil {
		b.Fatal(err)
	}
	since := resp.NextBatch
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

// startXMPPReceiver passes the body of every chat message c receives from the bare JID
// from to sink, as it is read from the stream, until the benchmark ends.
func startXMPPReceiver(b *testing.B, c *xclient, from jid.JID, sink func(string)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		seen := 0
		for {
			c.mu.Lock()
			fresh := slices.Clone(c.msgs[seen:])
			seen = len(c.msgs)
			c.mu.Unlock()
			for _, m := range fresh {
				if m.Type == "chat" && m.Body != "" && m.From.Bare().Equal(from) {
					sink(m.Body)
				}
			}
			select {
			case <-c.notif:
			case <-ctx.Done():
				return
			}
		}
	}()
}
