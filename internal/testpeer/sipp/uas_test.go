package sipp_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// gotMessage is a MESSAGE the test UAS received.
type gotMessage struct {
	CallID, CSeq, FromTag, Body, ContentType string
}

// testUAS is a sipgo UAS on UDP and TCP (the same port number) answering every MESSAGE
// with code.
type testUAS struct {
	Addr string // host:port of both listeners; immutable

	mu   sync.Mutex
	msgs []gotMessage // guarded by mu
}

func startUAS(t *testing.T, code int) *testUAS {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	var pc net.PacketConn
	for range 5 { // a free port number for both UDP and TCP
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", l.Addr().String()); err == nil {
			break
		}
		l.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	u := &testUAS{Addr: l.Addr().String()}
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		m := gotMessage{CallID: req.CallID().Value(), CSeq: req.CSeq().Value(), Body: string(req.Body())}
		m.FromTag, _ = req.From().Params.Get("tag")
		if h := req.ContentType(); h != nil {
			m.ContentType = h.Value()
		}
		u.mu.Lock()
		u.msgs = append(u.msgs, m)
		u.mu.Unlock()
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, "Answer", nil))
	})
	go func() { _ = srv.ServeTCP(l) }()
	go func() { _ = srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		l.Close()
		pc.Close()
		ua.Close()
	})
	return u
}

func (u *testUAS) messages() []gotMessage {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]gotMessage(nil), u.msgs...)
}

// sendMessage sends one MESSAGE with a sipgo client over transport ("udp"/"tcp").
func sendMessage(ctx context.Context, t *testing.T, transport, addr, body string) *sip.Response {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var uri sip.Uri
	if err := sip.ParseUri("sip:alice@"+addr+";transport="+transport, &uri); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.MESSAGE, uri)
	req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
	req.SetBody([]byte(body))
	res, err := client.Do(ctx, req)
	if err != nil {
		t.Fatalf("MESSAGE over %s to %s: %v", transport, addr, err)
	}
	return res
}
