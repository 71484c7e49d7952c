package sipua

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
)

func TestInboundChecks(t *testing.T) {
	ctx, _ := testCtx(t)
	h := &okHandler{}
	cfg := receiverConfig(Listener{Transport: "udp", Addr: "127.0.0.1:0"})
	cfg.MaxBodyBytes = 100
	u := startUA(t, ctx, cfg, h)
	c := newRawClient(t, u.Addrs()["udp"])

	const ruri = "sip:_sip_alice@bridge.test"
	tests := []struct {
		name       string
		method     string
		ruri       string
		headers    map[string]string
		body       string
		wantCode   int
		wantReason string            // substring
		wantHdr    map[string]string // header -> substring
		handled    bool
	}{
		{name: "accepted", method: "MESSAGE", ruri: ruri, body: "hello", wantCode: 200, handled: true},
		{name: "options", method: "OPTIONS", ruri: "sip:127.0.0.1", wantCode: 200,
			wantHdr: map[string]string{"Allow": "MESSAGE, SUBSCRIBE, NOTIFY, OPTIONS", "Accept": "message/cpim"}},
		{name: "method not allowed", method: "INFO", ruri: ruri, wantCode: 405,
			wantHdr: map[string]string{"Allow": "MESSAGE"}},
		{name: "invite not allowed", method: "INVITE", ruri: ruri, wantCode: 405},
		{name: "body too large", method: "MESSAGE", ruri: ruri, body: strings.Repeat("x", 101), wantCode: 413},
		{name: "other domain", method: "MESSAGE", ruri: "sip:bob@elsewhere.test", wantCode: 404},
		{name: "other domain in dialog", method: "NOTIFY", ruri: "sip:bob@10.1.1.1",
			headers: map[string]string{"To": "<sip:bob@elsewhere.test>;tag=abc", "Event": "presence"}, wantCode: 200, handled: true},
		{name: "subscribe gets our contact", method: "SUBSCRIBE", ruri: ruri, headers: map[string]string{"Event": "presence"},
			wantCode: 200, handled: true, wantHdr: map[string]string{"Contact": "<sip:127.0.0.1:"}},
		{name: "no from tag", method: "MESSAGE", ruri: ruri, headers: map[string]string{"From": "<sip:alice@example.org>"},
			wantCode: 400, wantReason: "From header has no tag"},
		{name: "no from", method: "MESSAGE", ruri: ruri, headers: map[string]string{"From": ""}, wantCode: 400, wantReason: "From"},
		{name: "no to", method: "MESSAGE", ruri: ruri, headers: map[string]string{"To": ""}, wantCode: 400, wantReason: "To"},
		{name: "no call-id", method: "MESSAGE", ruri: ruri, headers: map[string]string{"Call-ID": ""}, wantCode: 400, wantReason: "Call-ID"},
		{name: "cseq method mismatch", method: "MESSAGE", ruri: ruri, headers: map[string]string{"CSeq": "1 NOTIFY"}, wantCode: 400, wantReason: "CSeq"},
		// sipgo answers a request without CSeq itself (stateless 400) before any handler.
		{name: "no cseq", method: "MESSAGE", ruri: ruri, headers: map[string]string{"CSeq": ""}, wantCode: 400},
		{name: "max-forwards zero", method: "MESSAGE", ruri: ruri, headers: map[string]string{"Max-Forwards": "0"}, wantCode: 483},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.last()
			res := c.roundTrip(c.request(tt.method, tt.ruri, tt.headers, tt.body))
			if res.StatusCode != tt.wantCode {
				t.Fatalf("status %d %q, want %d", res.StatusCode, res.Reason, tt.wantCode)
			}
			if !strings.Contains(res.Reason, tt.wantReason) {
				t.Errorf("reason %q lacks %q", res.Reason, tt.wantReason)
			}
			for k, v := range tt.wantHdr {
				got := res.GetHeader(k)
				if got == nil || !strings.Contains(got.Value(), v) {
					t.Errorf("header %s = %v, want it to contain %q", k, got, v)
				}
			}
			if handled := h.last() != before; handled != tt.handled {
				t.Errorf("handler called = %v, want %v", handled, tt.handled)
			}
		})
	}

	t.Run("to tag is deterministic", func(t *testing.T) {
		hdr := map[string]string{"Call-ID": "fixed-call", "From": "<sip:alice@example.org>;tag=ft9"}
		r1 := c.roundTrip(c.request("MESSAGE", ruri, hdr, "a"))
		r2 := c.roundTrip(c.request("MESSAGE", ruri, hdr, "b")) // new branch: not absorbed by sipgo
		t1, _ := r1.To().Params.Get("tag")
		t2, _ := r2.To().Params.Get("tag")
		if t1 == "" || t1 != t2 || t1 != localTag("fixed-call", "ft9") {
			t.Errorf("tags %q %q, want both %q", t1, t2, localTag("fixed-call", "ft9"))
		}
	})
	t.Run("request fields", func(t *testing.T) {
		c.roundTrip(c.request("MESSAGE", ruri, map[string]string{"X-Custom": "v1", "Call-ID": "fields-call"}, "body!"))
		r := h.last()
		if r.Method != "MESSAGE" || r.CallID != "fields-call" || string(r.Body) != "body!" || r.ContentType != "text/plain" ||
			r.From.Tag != "ft1" || r.From.URI != "sip:alice@example.org" || r.Get("x-custom") != "v1" || r.Transport != "udp" ||
			!strings.HasPrefix(r.Source, "127.0.0.1:") || r.CSeq != 1 {
			t.Errorf("request = %+v", r)
		}
	})
}

func TestUntrustedSourceForbidden(t *testing.T) {
	ctx, _ := testCtx(t)
	h := &okHandler{}
	cfg := receiverConfig(Listener{Transport: "udp", Addr: "127.0.0.1:0"})
	cfg.TrustedPeers = []string{"192.0.2.0/24"}
	u := startUA(t, ctx, cfg, h)
	c := newRawClient(t, u.Addrs()["udp"])
	for _, m := range []string{"MESSAGE", "OPTIONS", "INFO"} {
		res := c.roundTrip(c.request(m, "sip:x@bridge.test", nil, "hi"))
		if res.StatusCode != 403 || res.Reason != forbiddenReason {
			t.Errorf("%s: %d %q, want 403 %q", m, res.StatusCode, res.Reason, forbiddenReason)
		}
	}
	if h.last() != nil {
		t.Error("handler was called for an untrusted source")
	}
}

func TestFloodGets503(t *testing.T) {
	ctx, _ := testCtx(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, r *Request) Response {
		if r.CallID == "slow" {
			close(entered)
			<-release
		}
		return Response{Code: 200}
	})
	cfg := receiverConfig(Listener{Transport: "udp", Addr: "127.0.0.1:0"})
	cfg.MaxInFlight = 1
	u := startUA(t, ctx, cfg, h)

	slow := newRawClient(t, u.Addrs()["udp"])
	slowDone := make(chan int, 1)
	go func() {
		slowDone <- slow.roundTrip(slow.request("MESSAGE", "sip:a@bridge.test", map[string]string{"Call-ID": "slow"}, "x")).StatusCode
	}()
	<-entered
	c := newRawClient(t, u.Addrs()["udp"])
	res := c.roundTrip(c.request("MESSAGE", "sip:a@bridge.test", nil, "y"))
	if res.StatusCode != 503 {
		t.Fatalf("second request: %d, want 503", res.StatusCode)
	}
	if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "5" {
		t.Errorf("Retry-After = %v, want 5", ra)
	}
	close(release)
	if code := <-slowDone; code != 200 {
		t.Errorf("slow request: %d", code)
	}
}

func TestResponseOnlyAfterHandlerReturns(t *testing.T) {
	ctx, _ := testCtx(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var returned atomic.Bool
	h := HandlerFunc(func(ctx context.Context, r *Request) Response {
		close(entered)
		<-release
		defer returned.Store(true)
		return Response{Code: 202, Reason: "Stored"}
	})
	recv := startUA(t, ctx, receiverConfig(Listener{Transport: "udp", Addr: "127.0.0.1:0"}), h)
	send := startUA(t, ctx, Config{
		Domain: "sender.test",
		Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}},
		Proxy:  "sip:" + recv.Addrs()["udp"],
	}, &okHandler{})

	type out struct {
		res          Result
		err          error
		handlerEnded bool
	}
	done := make(chan out, 1)
	go func() {
		res, err := send.Send(ctx, Outgoing{Method: "MESSAGE", RequestURI: "sip:x@bridge.test",
			From: Addr{URI: "sip:a@sender.test"}, To: Addr{URI: "sip:x@bridge.test"}, ContentType: "text/plain", Body: []byte("hi")})
		done <- out{res, err, returned.Load()}
	}()
	select {
	case <-entered:
	case o := <-done:
		t.Fatalf("Send returned before the handler ran: %+v, %v", o.res, o.err)
	}
	select {
	case o := <-done:
		t.Fatalf("Send returned while the handler was blocked: %+v", o)
	default:
	}
	close(release)
	o := <-done
	if o.err != nil || o.res.Code != 202 || o.res.Reason != "Stored" {
		t.Fatalf("Send = %+v, %v", o.res, o.err)
	}
	if !o.handlerEnded {
		t.Error("the final answer arrived before ServeSIP returned")
	}
}
