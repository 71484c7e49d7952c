package xmppe2e

import (
	"context"
	"slices"
	"testing"

	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/benchflight"
)

// The benchmarks below send b.N text messages one way through the bridge between the
// package's real Prosody and Dendrite, and the same through each server alone as the
// baseline of the same run: a Matrix user to another Matrix user (BenchmarkHomeserverSend)
// and an XMPP user to another XMPP user (BenchmarkProsodyDirect). scripts/bench prints the
// ratios.
//
// Each runs twice, with 1 and with 16 messages in flight (see package benchflight, which
// runs the window of senders and reports the metrics); the senders share the one sending
// user's client (one c2s stream, one access token).
//
// A message is sent when the sender starts the send (the c2s write, or the PUT /send of
// the Matrix client) and arrives when the receiver's client sees it: in a /sync long-poll
// of the Matrix user, or read from the XMPP user's c2s stream. Each reports msgs/s (all
// b.N messages over the time from the first send to the last arrival), p50-ms and p99-ms
// (end-to-end latency); a Matrix sender also reports send-p50-ms and send-p99-ms, the round
// trip of its PUT /send (the homeserver's own send latency).

// BenchmarkHomeserverSend is the Matrix baseline: a Matrix user sends to a private room
// shared with another Matrix user, who receives by /sync. No bridge runs.
func BenchmarkHomeserverSend(b *testing.B) {
	benchflight.ForWindows(b, func(b *testing.B, window int) {
		benchflight.HomeserverSend(b, window, newMatrixUser(b, "alice"), newMatrixUser(b, "dave"))
	})
}

// BenchmarkProsodyDirect is the XMPP baseline: an XMPP user sends chat messages to another
// XMPP user's bare JID through Prosody alone. No bridge runs.
func BenchmarkProsodyDirect(b *testing.B) {
	benchflight.ForWindows(b, func(b *testing.B, window int) {
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
	benchflight.ForWindows(b, func(b *testing.B, window int) {
		startBridge(b, nil)
		bob, alice := newXClient(b, "bob"), newMatrixUser(b, "alice")
		room := openDM(b, alice, bob.bare())
		benchXMPPSender(b, window, bob, puppetOf(b, alice.UserID), func(sink func(string)) {
			benchflight.StartMatrixReceiver(b, alice, room, ghostOf(b, bob.bare().String()), sink)
		})
	})
}

// BenchmarkMatrixToXMPP: a Matrix user sends text messages in the DM with an XMPP user,
// who receives them from the user's puppet JID on the c2s stream.
func BenchmarkMatrixToXMPP(b *testing.B) {
	benchflight.ForWindows(b, func(b *testing.B, window int) {
		startBridge(b, nil)
		bob, alice := newXClient(b, "bob"), newMatrixUser(b, "alice")
		room := openDM(b, alice, bob.bare())
		benchflight.MatrixSender(b, window, alice, room, func(sink func(string)) {
			startXMPPReceiver(b, bob, puppetOf(b, alice.UserID), sink)
		})
	})
}

// benchXMPPSender has c send the messages of a flight to to as chat messages.
func benchXMPPSender(b *testing.B, window int, c *xclient, to jid.JID, startReceiver func(sink func(string))) {
	benchflight.Run(b, window, startReceiver, func(_ context.Context, f *benchflight.Flight, i int) error {
		sid := f.ID(i)
		return sendUncancelled(c, &xmsg.Message{ID: sid, OriginID: sid, Type: "chat", To: to, Body: f.Body(i), RequestReceipt: true})
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
