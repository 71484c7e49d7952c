package sipp_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/baresip"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipp"
)

func TestSendMessages(t *testing.T) {
	sipp.Skip(t)
	tests := []struct {
		name       string
		transport  string
		code       int
		retransmit bool
		want       func(sipp.Stats) bool
		perCall    int // requests the UAS gets per call
	}{
		{name: "udp 200", transport: sipp.UDP, code: 200, perCall: 1,
			want: func(s sipp.Stats) bool { return s.OK == 5 && s.Codes[200] == 5 && s.ExitCode == 0 }},
		{name: "tcp 200", transport: sipp.TCP, code: 200, perCall: 1,
			want: func(s sipp.Stats) bool { return s.OK == 5 && s.Sent == 5 && s.ExitCode == 0 }},
		{name: "udp 486", transport: sipp.UDP, code: 486, perCall: 1,
			want: func(s sipp.Stats) bool { return s.Failed == 5 && s.Codes[486] == 5 }},
		{name: "tcp 503", transport: sipp.TCP, code: 503, perCall: 1,
			want: func(s sipp.Stats) bool { return s.Failed == 5 && s.Codes[503] == 5 }},
		{name: "udp retransmit", transport: sipp.UDP, code: 200, retransmit: true, perCall: 2,
			want: func(s sipp.Stats) bool { return s.OK == 5 && s.Codes[200] == 10 && len(s.Calls[0].Codes) == 2 }},
		{name: "tcp retransmit", transport: sipp.TCP, code: 200, retransmit: true, perCall: 2,
			want: func(s sipp.Stats) bool { return s.OK == 5 && s.Sent == 10 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			uas := startUAS(t, tc.code)
			st, err := sipp.SendMessages(ctx, sipp.Options{Target: uas.Addr, Transport: tc.transport,
				From: "sip:bob@sip.test", To: "sip:alice@sip.test", Count: 5, CallIDPrefix: "t13-",
				Body: "hello <b>", ContentType: "text/plain;charset=utf-8", Retransmit: tc.retransmit})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(st) || len(st.Calls) != 5 {
				t.Errorf("stats %+v", st)
			}
			got := uas.messages()
			if len(got) != 5*tc.perCall {
				t.Fatalf("UAS got %d MESSAGEs, want %d", len(got), 5*tc.perCall)
			}
			calls := map[string][]gotMessage{}
			for _, m := range got {
				calls[m.CallID] = append(calls[m.CallID], m)
				if m.Body != "hello <b>" || m.ContentType != "text/plain;charset=utf-8" || !strings.HasPrefix(m.CallID, "t13-") {
					t.Errorf("UAS got %+v", m)
				}
			}
			for id, ms := range calls {
				if len(ms) != tc.perCall || ms[len(ms)-1] != ms[0] {
					t.Errorf("call %s: %+v", id, ms)
				}
			}
		})
	}
}

func TestAnswerer(t *testing.T) {
	tests := []struct {
		name      string
		transport string
		code      int
	}{
		{"udp 486", "udp", 486},
		{"tcp 486", "tcp", 486},
		{"udp 200", "udp", 200},
		{"tcp 603", "tcp", 603},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tr := sipp.UDP
			if tc.transport == "tcp" {
				tr = sipp.TCP
			}
			a := sipp.StartAnswererTest(t, sipp.AnswerOptions{Transport: tr, Code: tc.code})
			for i := range 2 {
				res := sendMessage(ctx, t, tc.transport, a.Addr, "hi")
				if res.StatusCode != tc.code {
					t.Fatalf("MESSAGE %d answered %d, want %d", i, res.StatusCode, tc.code)
				}
			}
			rc, err := a.WaitReceived(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			if rc.Requests != 2 || len(rc.CallIDs) != 2 || rc.Answered != 2 {
				t.Errorf("received %+v", rc)
			}
		})
	}
}

// TestNoAnswer: SIPp sends to a SIPp that never answers; the call times out, and the
// answerer saw the request (and over UDP its retransmissions) under one Call-ID.
func TestNoAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := sipp.StartAnswererTest(t, sipp.AnswerOptions{NoAnswer: true})
	st, err := sipp.SendMessages(ctx, sipp.Options{Target: a.Addr, From: "sip:bob@sip.test",
		To: "sip:alice@sip.test", Timeout: 1200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.TimedOut != 1 || st.OK != 0 || st.ExitCode != 1 {
		t.Errorf("stats %+v", st)
	}
	rc, err := a.WaitReceived(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.CallIDs) != 1 || rc.CallIDs[0] != st.Calls[0].CallID || rc.Answered != 0 {
		t.Errorf("received %+v", rc)
	}
}

func TestSendRaw(t *testing.T) {
	uas := startUAS(t, 200)
	msg := "MESSAGE sip:alice@sip.test SIP/2.0\r\n" +
		"Via: SIP/2.0/%s 127.0.0.1:5999;branch=z9hG4bK-raw-%s;rport\r\n" +
		"From: <sip:bob@sip.test>;tag=r1\r\nTo: <sip:alice@sip.test>\r\nCall-ID: raw-%s\r\n" +
		"CSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			line, err := sipp.SendRaw(ctx, tr, uas.Addr, []byte(strings.NewReplacer("SIP/2.0/%s", "SIP/2.0/"+strings.ToUpper(tr), "%s", tr).Replace(msg)))
			if err != nil || !strings.HasPrefix(line, "SIP/2.0 200 ") {
				t.Fatalf("SendRaw: %q, %v", line, err)
			}
			// Garbage is dropped by sipgo: no answer before the deadline.
			ctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			if line, err := sipp.SendRaw(ctx, tr, uas.Addr, []byte("NOT SIP\r\n\r\n")); !errors.Is(err, sipp.ErrNoAnswer) {
				t.Errorf("garbage: %q, %v; want ErrNoAnswer", line, err)
			}
		})
	}
}

// TestSIPpToBaresip sends MESSAGEs from SIPp straight to a baresip without registrar.
func TestSIPpToBaresip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sipp.Skip(t)
	ua := baresip.StartTest(t, baresip.Options{AOR: "sip:alice@sip.test"})
	st, err := sipp.SendMessages(ctx, sipp.Options{Target: ua.SIPAddr, Transport: sipp.TCP,
		RequestURI: "sip:alice@" + ua.SIPAddr, From: "sip:bob@sip.test", To: "sip:alice@sip.test",
		Count: 3, Body: "from sipp"})
	if err != nil {
		t.Fatal(err)
	}
	if st.OK != 3 {
		t.Errorf("stats %+v", st)
	}
	if _, err := ua.WaitMessage(ctx, func(m baresip.Message) bool { return len(ua.Messages()) == 3 }); err != nil {
		t.Fatal(err)
	}
	for _, m := range ua.Messages() {
		if m.From != "sip:bob@sip.test" || m.Body != "from sipp" {
			t.Errorf("baresip got %+v", m)
		}
	}
}

// TestAnswererCount: with Count, SIPp exits after that many calls, which Stop does not
// report as an error.
func TestAnswererCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := sipp.StartAnswererTest(t, sipp.AnswerOptions{Transport: sipp.TCP, Code: 408, Count: 1})
	if res := sendMessage(ctx, t, "tcp", a.Addr, "once"); res.StatusCode != 408 {
		t.Fatalf("answered %d, want 408", res.StatusCode)
	}
	select {
	case <-a.Done():
	case <-ctx.Done():
		t.Fatal("SIPp did not exit after Count calls")
	}
	if err := a.Stop(); err != nil {
		t.Errorf("Stop after Count calls: %v", err)
	}
}
