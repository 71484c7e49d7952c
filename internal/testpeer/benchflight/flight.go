// Package benchflight runs the message benchmarks of the end-to-end test packages
// (bridges/xmpp/xmppe2e, bridges/sip/sipe2e, scripts/bench): b.N numbered text messages
// sent one way with a window of them in flight, timed from the start of each send until the
// receiver sees it. It is imported only by tests.
//
// A benchmark runs as sub-benchmarks by the number of messages in flight (ForWindows:
// inflight=1 and inflight=16), each kept by as many senders that each send their next
// message once their last one arrived. One warm-up message goes first, untimed. Run reports
// msgs/s (all b.N messages over the time from the first send to the last arrival), p50-ms
// and p99-ms (end-to-end latency, nearest rank); RunTimingSends also reports send-p50-ms and
// send-p99-ms, the duration of each send call. scripts/bench parses these names.
//
// The sending and receiving sides are the caller's: a Send function sends message i of a
// Flight (its body is Flight.Body), and a receiver started by the caller passes every body
// it sees to the sink Run gives it. MatrixSender and StartMatrixReceiver are those of a
// Matrix user.
package benchflight

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ArrivalTimeout is how long a sender waits for its message to arrive before the run fails.
const ArrivalTimeout = 60 * time.Second

// windows are the numbers of messages in flight each benchmark runs with.
var windows = []int{1, 16}

// ForWindows runs bench as the sub-benchmarks inflight=1 and inflight=16, with window the
// number of messages in flight.
func ForWindows(b *testing.B, bench func(b *testing.B, window int)) {
	for _, w := range windows {
		b.Run("inflight="+strconv.Itoa(w), func(b *testing.B) { bench(b, w) })
	}
}

// Send sends message i of the flight f (with the body f.Body(i)); ctx is cancelled when
// the run fails. It is called by window goroutines at once.
type Send func(ctx context.Context, f *Flight, i int) error

// Run calls startReceiver with the sink for the bodies the receiver sees, warms the path up
// with one message, then times a flight of b.N messages sent by window senders, and reports
// msgs/s, p50-ms and p99-ms. It fails b when a send fails or a message does not arrive
// within ArrivalTimeout.
func Run(b *testing.B, window int, startReceiver func(sink func(string)), send Send) {
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

// RunTimingSends is Run that also times each call of send of the timed flight and reports
// their p50 and p99 as send-p50-ms and send-p99-ms: the sender's own round trip (a PUT
// /send, a SIP MESSAGE transaction).
func RunTimingSends(b *testing.B, window int, startReceiver func(sink func(string)), send Send) {
	durations := make([]time.Duration, b.N) // element i written only by the sender of message i
	Run(b, window, startReceiver, func(ctx context.Context, f *Flight, i int) error {
		start := time.Now()
		err := send(ctx, f, i)
		if f.timed {
			durations[i] = time.Since(start)
		}
		return err
	})
	reportPercentiles(b, "send-", durations)
}

// reportPercentiles reports the p50 and p99 of ds in milliseconds (nearest rank) as
// prefix+"p50-ms" and prefix+"p99-ms".
func reportPercentiles(b *testing.B, prefix string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	b.ReportMetric(float64(percentile(ds, 50).Microseconds())/1000, prefix+"p50-ms")
	b.ReportMetric(float64(percentile(ds, 99).Microseconds())/1000, prefix+"p99-ms")
}

// percentile is the p-th percentile of ds by nearest rank; ds is not empty.
func percentile(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[max(0, (p*len(s)+99)/100-1)]
}

// Flight is a batch of numbered messages: when each was sent and when it arrived.
type Flight struct {
	prefix string // starts every body; unique in the test run; immutable
	timed  bool   // the timed flight, not the warm-up; immutable
	next   atomic.Int64

	mu      sync.Mutex
	sent    []time.Time     // guarded by mu
	arrived []time.Time     // guarded by mu
	signal  []chan struct{} // closed on arrival; immutable slice
}

func newFlight(n int, timed bool) *Flight {
	f := &Flight{prefix: unique("bm") + "x", timed: timed, sent: make([]time.Time, n), arrived: make([]time.Time, n), signal: make([]chan struct{}, n)}
	for i := range f.signal {
		f.signal[i] = make(chan struct{})
	}
	return f
}

// Body is the text of message i, by which the receiver's sink recognises it.
func (f *Flight) Body(i int) string { return f.prefix + " message " + strconv.Itoa(i) }

// ID is an identifier of message i unique in the test run, for a transaction or stanza ID.
func (f *Flight) ID(i int) string { return f.prefix + "-" + strconv.Itoa(i) }

// arrive records the arrival of the message with body and reports whether it is one of
// the flight's.
func (f *Flight) arrive(body string, at time.Time) bool {
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
func (f *Flight) run(window int, send Send) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, window)
	var wg sync.WaitGroup
	for range window {
		wg.Go(func() {
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
				case <-time.After(ArrivalTimeout):
					errs <- fmt.Errorf("message %d did not arrive within %s (%d of %d arrived)", i, ArrivalTimeout, f.count(), len(f.sent))
					cancel()
					return
				case <-ctx.Done():
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (f *Flight) count() int {
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
func (f *Flight) latencies() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]time.Duration, len(f.sent))
	for i := range out {
		out[i] = f.arrived[i].Sub(f.sent[i])
	}
	return out
}

// unique is prefix with a random suffix.
func unique(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
