package xmppe2e

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
)

// stream is a two-way message stream through the bridge, for the crash and restart tests.
// The XMPP side behaves like a careful client: it asks for an XEP-0184 receipt for every
// message and resends, with the same id, each one that got no receipt within resendAfter
// (or that bounced); it treats messages with the same origin-id as one, as XEP-0359 lets
// receivers do. The Matrix side sends through Dendrite, which retries its transactions to
// the appservice on its own.
type stream struct {
	t     *testing.T
	n     int
	alice *mautrix.Client // Matrix user
	room  id.RoomID       // the DM
	to    jid.JID         // alice's puppet JID

	mu      sync.Mutex
	bob     []*xclient // every session of the XMPP user, the current one last
	sentAt  map[string]time.Time
	resends int
	synced  map[id.EventID]string // messages alice's /sync showed: event ID → body
}

// addSynced records the DM's messages that alice's /sync shows (matrixtest.WatchRoom
// passes them); an event seen twice is one message, by its ID.
func (s *stream) addSynced(evts []*event.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range evts {
		if e.Type == event.EventMessage {
			s.synced[e.ID] = e.Content.AsMessage().Body
		}
	}
}

const resendAfter = 4 * time.Second

// startStream opens a DM between a new Matrix user and bob and starts streaming n messages
// each way, with bob's resends and the Matrix user's /sync running until ctx ends. done is
// closed when every message was sent once.
func startStream(ctx context.Context, t *testing.T, bob *xclient, n int) (s *stream, done <-chan struct{}) {
	t.Helper()
	alice := newMatrixUser(t, "alice")
	room := openDM(t, alice, bob.bare())
	s = &stream{t: t, n: n, alice: alice, room: room, to: puppetOf(t, alice.UserID),
		bob: []*xclient{bob}, sentAt: map[string]time.Time{}, synced: map[id.EventID]string{}}
	go s.resendLoop(ctx)
	go matrixtest.WatchRoom(ctx, s.alice, s.room, s.addSynced)
	ch := make(chan struct{})
	go func() { defer close(ch); s.run(ctx, 15*time.Millisecond) }()
	return s, ch
}

// addSession records a new session of the XMPP user (after Prosody restarted).
func (s *stream) addSession(c *xclient) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bob = append(s.bob, c)
}

func xmppBody(i int) string   { return fmt.Sprintf("x-%04d", i) }
func matrixBody(i int) string { return fmt.Sprintf("m-%04d", i) }

// run sends n messages each way, one every gap, and returns when all are sent (not
// necessarily delivered).
func (s *stream) run(ctx context.Context, gap time.Duration) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < s.n && ctx.Err() == nil; i++ {
			s.sendXMPP(i)
			time.Sleep(gap)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < s.n && ctx.Err() == nil; i++ {
			content := &event.MessageEventContent{MsgType: event.MsgText, Body: matrixBody(i)}
			for ctx.Err() == nil {
				// The client's transaction ID makes a retried send after a timeout safe.
				_, err := s.alice.SendMessageEvent(ctx, s.room, event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: "stream-" + matrixBody(i)})
				if err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(gap)
		}
	}()
	wg.Wait()
}

func (s *stream) sendXMPP(i int) {
	body := xmppBody(i)
	s.mu.Lock()
	s.sentAt[body] = time.Now()
	c := s.bob[len(s.bob)-1]
	s.mu.Unlock()
	c.send(&xmsg.Message{ID: body, OriginID: body, Type: "chat", To: s.to, Body: body, RequestReceipt: true})
}

// resendLoop resends XMPP messages without a receipt until ctx ends.
func (s *stream) resendLoop(ctx context.Context) {
	for ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		acked := s.receipts()
		s.mu.Lock()
		var due []int
		for body, at := range s.sentAt {
			if !acked[body] && time.Since(at) > resendAfter {
				var i int
				fmt.Sscanf(body, "x-%d", &i)
				due = append(due, i)
			}
		}
		s.resends += len(due)
		s.mu.Unlock()
		for _, i := range due {
			s.sendXMPP(i)
		}
	}
}

// receipts are the ids the bridge acknowledged, over all sessions.
func (s *stream) receipts() map[string]bool {
	out := map[string]bool{}
	for _, c := range s.sessions() {
		for _, m := range c.messages(func(m *xmsg.Message) bool { return m.Received != "" }) {
			out[m.Received] = true
		}
	}
	return out
}

func (s *stream) sessions() []*xclient {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*xclient(nil), s.bob...)
}

// xmppSide counts the Matrix messages as the XMPP user sees them: by body, deliveries
// (stanzas) and distinct origin-ids.
func (s *stream) xmppSide() (deliveries map[string]int, ids map[string]map[string]bool) {
	deliveries, ids = map[string]int{}, map[string]map[string]bool{}
	for _, c := range s.sessions() {
		for _, m := range c.messages(func(m *xmsg.Message) bool { return strings.HasPrefix(m.Body, "m-") }) {
			deliveries[m.Body]++
			if ids[m.Body] == nil {
				ids[m.Body] = map[string]bool{}
			}
			ids[m.Body][m.OriginID] = true
		}
	}
	return deliveries, ids
}

// matrixSide counts the XMPP messages in the DM by body, over the events alice's /sync
// showed and those /messages returns, each event once.
func (s *stream) matrixSide(ctx context.Context) (map[string]int, error) {
	evts, err := matrixtest.RoomMessages(ctx, s.alice, s.room)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	all := maps.Clone(s.synced)
	s.mu.Unlock()
	for _, e := range evts {
		all[e.ID] = e.Content.AsMessage().Body
	}
	out := map[string]int{}
	for _, b := range all {
		if strings.HasPrefix(b, "x-") {
			out[b]++
		}
	}
	return out, nil
}

// verify waits until every message arrived on both sides, then fails on any lost or
// doubled one and logs the counts.
func (s *stream) verify(ctx context.Context, timeout time.Duration) {
	t := s.t
	t.Helper()
	var lostX, lostM, doubledX, doubledM, resentSameID int
	var missing []string
	count := func() bool {
		lostX, lostM, doubledX, doubledM, resentSameID = 0, 0, 0, 0, 0
		missing = missing[:0]
		inMatrix, err := s.matrixSide(ctx)
		if err != nil {
			return false
		}
		deliveries, ids := s.xmppSide()
		for i := 0; i < s.n; i++ {
			switch c := inMatrix[xmppBody(i)]; {
			case c == 0:
				lostX++
				missing = append(missing, xmppBody(i))
			case c > 1:
				doubledX++
			}
			switch c := len(ids[matrixBody(i)]); {
			case c == 0:
				lostM++
				missing = append(missing, matrixBody(i))
			case c > 1:
				doubledM++ // two different stable ids: a real duplicate
			}
			if d := deliveries[matrixBody(i)]; d > 1 {
				resentSameID += d - 1
			}
		}
		return lostX == 0 && lostM == 0
	}
	deadline := time.Now().Add(timeout)
	for !count() && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	s.mu.Lock()
	resends := s.resends
	s.mu.Unlock()
	t.Logf("XMPP→Matrix: %d messages, %d lost, %d doubled (the XMPP client resent %d without a receipt)", s.n, lostX, doubledX, resends)
	t.Logf("Matrix→XMPP: %d messages, %d lost, %d doubled; %d stanzas were resends with the same id, dropped by id", s.n, lostM, doubledM, resentSameID)
	if lostX+lostM+doubledX+doubledM > 0 {
		t.Fatalf("lost or doubled messages (see above); missing: %v", missing)
	}
}
