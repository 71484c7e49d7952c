package sipe2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/config"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipp"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// TestFailureAnswers is a Matrix user writing to SIP users who answer with a final
// failure: the sender sees a failure status on the message and a notice in reply naming
// the code and reason phrase. 408 and 503 are retried (new transactions with the same
// Call-ID and a higher CSeq) before the failure is reported; a 503 followed by a 200
// delivers the message once, with no failure shown.
func TestFailureAnswers(t *testing.T) {
	cfg := bridgeConfig()
	cfg.SendTimeout = config.Duration(3 * time.Second) // the no-answer case
	r := startBridgeWith(t, nil, cfg)
	alice := newMatrixUser(t, "alice")

	for _, tc := range []struct {
		name      string
		user      string              // the SIP user written to
		answer    *sipp.AnswerOptions // a SIPp answerer registered for user
		phoneCode int                 // else a sipphone answering this (0: none, unregistered)
		want      string              // in the notice; "" for delivered
		retried   bool                // sent more than once (same Call-ID, higher CSeq) before the failure
	}{
		{name: "200 delivered", user: "answer", answer: &sipp.AnswerOptions{Code: 200}},
		{name: "486 busy", user: "fail1", answer: &sipp.AnswerOptions{Code: 486}, want: "486 Busy Here"},
		{name: "603 decline", user: "fail2", answer: &sipp.AnswerOptions{Code: 603}, want: "603 Decline"},
		{name: "404 unknown user", user: unique("nobody"), want: "404 Not Found"},
		// SIPp ends a call at its first answer and ignores a new transaction with the same
		// Call-ID; the phone answers every one. Kamailio forwards a 503 as 500 with the
		// same reason phrase (RFC 3261 16.7: a proxy does not pass a 503 on).
		{name: "503 retried then failed", user: "fail3", phoneCode: 503, want: "500 Service Unavailable", retried: true},
		{name: "408 no answer", user: "fail4", answer: &sipp.AnswerOptions{NoAnswer: true}, want: "408 Request Timeout", retried: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var a *sipp.Answerer
			var phone *sipphone.Phone
			dir := t.TempDir()
			switch {
			case tc.answer != nil:
				opts := *tc.answer
				opts.Dir = dir
				a = sipp.StartAnswererTest(t, opts)
				registerAnswerer(ctx, t, tc.user, a.Addr)
			case tc.phoneCode != 0:
				phone = newPhone(t, tc.user)
				phone.SetAnswer(tc.phoneCode, "Service Unavailable")
			}
			room := failuresOpenDM(t, alice, tc.user)
			text := unique("failure test ")
			sent, err := alice.SendText(ctx, room, text)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if _, err := a.WaitReceived(ctx, 1); err != nil {
					t.Fatal(err)
				}
				waitDelivered(t, r, sent.EventID)
				assertNoFailure(ctx, t, alice, room)
			} else {
				assertFailure(t, alice, room, tc.user, sent.EventID, tc.want)
			}
			// The attempts the peer saw: Call-IDs and, in order of first arrival, CSeqs.
			var callIDs []string
			var cseqs []int
			switch {
			case a != nil:
				got, err := a.Received()
				if err != nil {
					t.Fatal(err)
				}
				callIDs, cseqs = got.CallIDs, receivedCSeqs(t, dir)
			case phone != nil:
				for _, req := range phone.Received("MESSAGE") {
					if strings.Contains(string(req.Body()), text) {
						callIDs = appendNew(callIDs, req.CallID().Value())
						cseqs = appendNew(cseqs, int(req.CSeq().SeqNo))
					}
				}
			default:
				return
			}
			if len(callIDs) != 1 {
				t.Errorf("the peer got Call-IDs %q, want one", callIDs)
			}
			if n := len(cseqs); (tc.retried && n < 2) || (!tc.retried && n != 1) {
				t.Errorf("the peer got CSeqs %v; retried %v", cseqs, tc.retried)
			}
			for i := 1; i < len(cseqs); i++ {
				if cseqs[i] <= cseqs[i-1] {
					t.Errorf("CSeqs %v: want them increasing, one per attempt", cseqs)
					break
				}
			}
		})
	}

	t.Run("503 then 200", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		phone := newPhone(t, "fail5")
		phone.SetAnswer(503, "Service Unavailable")
		room := failuresOpenDM(t, alice, "fail5")
		text := unique("retried ")
		sent, err := alice.SendText(ctx, room, text)
		if err != nil {
			t.Fatal(err)
		}
		withText := func(r *sip.Request) bool { return r.Method == sip.MESSAGE && strings.Contains(string(r.Body()), text) }
		if _, err := phone.Wait(ctx, "the first attempt", withText); err != nil {
			t.Fatal(err)
		}
		phone.SetAnswer(200, "OK")
		waitDelivered(t, r, sent.EventID)
		var attempts []*sip.Request
		for _, req := range phone.Received("MESSAGE") {
			if withText(req) {
				attempts = append(attempts, req)
			}
		}
		if len(attempts) < 2 {
			t.Fatalf("the phone got the message %d times, want a 503'd attempt and a delivered one", len(attempts))
		}
		for i, req := range attempts[1:] {
			prev := attempts[i]
			if req.CallID().Value() != prev.CallID().Value() || req.CSeq().SeqNo <= prev.CSeq().SeqNo {
				t.Errorf("attempt %d: Call-ID %s CSeq %d after %s %d: want the same Call-ID and a higher CSeq",
					i+2, req.CallID().Value(), req.CSeq().SeqNo, prev.CallID().Value(), prev.CSeq().SeqNo)
			}
		}
		assertNoFailure(ctx, t, alice, room)
	})
}

// registerAnswerer registers a SIPp answerer's address as user's contact at Kamailio.
func registerAnswerer(ctx context.Context, t *testing.T, user, addr string) {
	t.Helper()
	p := sipphone.New(t, sipphone.Options{User: user, Domain: sipDomain, Password: users[user], Proxy: kam.UDPAddr})
	if err := p.RegisterContact(ctx, "sip:"+user+"@"+addr); err != nil {
		t.Fatal(err)
	}
}

// failuresOpenDM has the Matrix user open a DM with a SIP user's ghost (an invite to a
// new direct room) and waits for the ghost to join.
func failuresOpenDM(t testing.TB, cli *mautrix.Client, sipUser string) id.RoomID {
	t.Helper()
	ctx := context.Background()
	ghost := ghostOf(t, sipUser)
	resp, err := cli.CreateRoom(ctx, &mautrix.ReqCreateRoom{Preset: "trusted_private_chat", IsDirect: true, Invite: []id.UserID{ghost}})
	if err != nil {
		t.Fatal(err)
	}
	matrixtest.WaitFor(t, 20*time.Second, "the ghost to join the DM", func() (bool, error) {
		return matrixtest.IsJoined(ctx, cli, resp.RoomID, ghost)
	})
	return resp.RoomID
}

// waitDelivered waits until the bridge recorded the event as delivered to SIP (a 2xx).
func waitDelivered(t testing.TB, r *running, evt id.EventID) {
	t.Helper()
	matrixtest.WaitFor(t, 30*time.Second, "the delivery record", func() (bool, error) {
		_, _, err := r.st.MessageByRemote(context.Background(), "sip", "out:"+evt.String())
		return err == nil, nil
	})
}

// assertFailure waits for the failure notice (from the SIP user's ghost, in reply to the
// message, naming want) and the failure status on the message.
func assertFailure(t testing.TB, cli *mautrix.Client, room id.RoomID, sipUser string, sent id.EventID, want string) {
	t.Helper()
	ghost := ghostOf(t, sipUser)
	notice := matrixtest.WaitEvent(t, cli, room, "the failure notice", func(e *event.Event) bool {
		return e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgNotice
	})
	c := notice.Content.AsMessage()
	if notice.Sender != ghost {
		t.Errorf("the notice is from %s, want the ghost %s", notice.Sender, ghost)
	}
	if c.RelatesTo == nil || c.RelatesTo.InReplyTo == nil || c.RelatesTo.InReplyTo.EventID != sent {
		t.Errorf("the notice relates to %+v, want a reply to %s", c.RelatesTo, sent)
	}
	if !strings.Contains(c.Body, want) || !strings.Contains(c.Body, sipUser+"@"+sipDomain) {
		t.Errorf("notice %q: want it to name %s and %q", c.Body, sipUser, want)
	}
	if strings.Contains(c.Body, "..") {
		t.Errorf("notice %q: doubled period", c.Body)
	}
	status := matrixtest.WaitEvent(t, cli, room, "the failure status", func(e *event.Event) bool {
		return e.Type == event.BeeperMessageStatus
	})
	if status.Content.Raw["status"] != "FAIL_PERMANENT" {
		t.Errorf("status %v, want FAIL_PERMANENT", status.Content.Raw)
	}
	if rel, _ := status.Content.Raw["m.relates_to"].(map[string]any); rel == nil || rel["event_id"] != sent.String() {
		t.Errorf("the status relates to %v, want %s", status.Content.Raw["m.relates_to"], sent)
	}
}

// assertNoFailure checks that the room has no failure notice or status.
func assertNoFailure(ctx context.Context, t testing.TB, cli *mautrix.Client, room id.RoomID) {
	t.Helper()
	evts, err := matrixtest.RoomEvents(ctx, cli, room)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evts {
		if e.Type == event.BeeperMessageStatus || (e.Type == event.EventMessage && e.Content.AsMessage().MsgType == event.MsgNotice) {
			t.Errorf("unexpected failure report: %s %v", e.Type.Type, e.Content.Raw)
		}
	}
}

// receivedCSeqs are the CSeq numbers of the MESSAGEs in a SIPp answerer's message log
// (its Dir), in order of first arrival: Kamailio retransmits over UDP to a peer that
// does not answer, also while the bridge's next attempt runs.
func receivedCSeqs(t testing.TB, dir string) []int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "messages.log"))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, entry := range strings.Split(string(data), "-----------------------------------------------") {
		if !strings.Contains(entry, "message received") || !strings.Contains(entry, "\nMESSAGE ") {
			continue
		}
		for _, line := range strings.Split(entry, "\n") {
			v, ok := strings.CutPrefix(strings.TrimSpace(line), "CSeq:")
			if !ok {
				continue
			}
			f := strings.Fields(v)
			if len(f) == 0 {
				continue
			}
			if n, err := strconv.Atoi(f[0]); err == nil {
				out = appendNew(out, n)
			}
		}
	}
	return out
}

// appendNew appends v to s unless s holds it.
func appendNew[T comparable](s []T, v T) []T {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}
