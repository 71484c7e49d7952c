package sipe2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/benchflight"
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
// Each runs twice, with 1 and with 16 messages in flight (see package benchflight, which
// runs the window of senders and reports the metrics); the senders share one sending
// client (one phone's UDP socket, or one Matrix access token).
//
// A message is sent when the sender starts the send (the phone's MESSAGE transaction,
// which answers Kamailio's 407 challenge once, or the PUT /send of the Matrix client) and
// arrives when the receiver sees it: in a /sync long-poll of the Matrix user, or as a
// MESSAGE request received by the phone. Each reports msgs/s (all b.N messages over the
// time from the first send to the last arrival), p50-ms and p99-ms (end-to-end latency); a
// Matrix sender also reports send-p50-ms and send-p99-ms (its PUT /send round trip), a
// phone send-p50-ms and send-p99-ms (its MESSAGE transactions until the final answer: 202
// from the bridge after its durable enqueue, 200 from the receiving phone).

// BenchmarkHomeserverSend is the Matrix baseline: a Matrix user sends to a private room
// shared with another Matrix user, who receives by /sync. No bridge runs.
func BenchmarkHomeserverSend(b *testing.B) {
	benchflight.ForWindows(b, func(b *testing.B, window int) {
		benchflight.HomeserverSend(b, window, newMatrixUser(b, "bench"), newMatrixUser(b, "bench2"))
	})
}

// BenchmarkKamailioDirect is the SIP baseline: the phone of bench sends MESSAGE requests
// to bench2's AOR, which Kamailio routes to bench2's registered phone. No bridge runs.
func BenchmarkKamailioDirect(b *testing.B) {
	benchflight.ForWindows(b, func(b *testing.B, window int) {
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
	benchflight.ForWindows(b, func(b *testing.B, window int) {
		startBridge(b, nil)
		phone, user := benchPhone(b, "bench"), newMatrixUser(b, "bench")
		to := sipURIOf(b, user.UserID)
		room := openBenchDM(b, phone, user)
		benchPhoneSender(b, window, phone, to, func(sink func(string)) {
			benchflight.StartMatrixReceiver(b, user, room, ghostOf(b, "bench"), sink)
		})
	})
}

// BenchmarkMatrixToSIP: a Matrix user sends text messages in the DM with bench2, whose
// phone receives them as MESSAGE requests from the bridge through Kamailio.
func BenchmarkMatrixToSIP(b *testing.B) {
	benchflight.ForWindows(b, func(b *testing.B, window int) {
		startBridge(b, nil)
		phone, user := benchPhone(b, "bench2"), newMatrixUser(b, "bench2")
		room := openBenchDM(b, phone, user)
		benchflight.MatrixSender(b, window, user, room, func(sink func(string)) {
			startPhoneReceiver(b, phone, sink)
		})
	})
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

// benchPhoneSender has p send the messages of a flight to the SIP URI to as text/plain
// MESSAGE requests; an answer other than 2xx fails the run.
func benchPhoneSender(b *testing.B, window int, p *sipphone.Phone, to string, startReceiver func(sink func(string))) {
	benchflight.RunTimingSends(b, window, startReceiver, func(ctx context.Context, f *benchflight.Flight, i int) error {
		code, reason, err := p.Send(ctx, sipphone.Request{To: to, ContentType: "text/plain;charset=utf-8", Body: []byte(f.Body(i))})
		if err != nil {
			return err
		}
		if code/100 != 2 {
			return fmt.Errorf("MESSAGE to %s: %d %s", to, code, reason)
		}
		return nil
	})
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
