package sipua

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

func sendMessage(ctx context.Context, u *UA, body string) (Result, error) {
	return u.Send(ctx, Outgoing{
		Method:      "MESSAGE",
		RequestURI:  "sip:_sip_alice=40example.org@bridge.test",
		From:        Addr{URI: "sip:bob@sender.test", Display: "Bob"},
		To:          Addr{URI: "sip:_sip_alice=40example.org@bridge.test"},
		ContentType: "text/plain",
		Body:        []byte(body),
		Headers:     []Header{{"X-Msg", "1"}},
	})
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := testPKI(t, dir, "recv")
	for _, tp := range []string{"udp", "tcp", "tls"} {
		t.Run(tp, func(t *testing.T) {
			ctx, _ := testCtx(t)
			h := &okHandler{}
			l := Listener{Transport: tp, Addr: "127.0.0.1:0"}
			if tp == "tls" {
				l.CertFile, l.KeyFile = cert, key
			}
			recv := startUA(t, ctx, receiverConfig(l), h)
			send := startUA(t, ctx, Config{
				Domain: "sender.test",
				Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}},
				Proxy:  fmt.Sprintf("sip:%s;transport=%s", recv.Addrs()[tp], tp),
				CAFile: ca,
			}, &okHandler{})

			res, err := sendMessage(ctx, send, "hello over "+tp)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if res.Code != 200 || res.Get("X-Test") != "yes" || res.ToTag == "" {
				t.Fatalf("Result = %+v", res)
			}
			r := h.last()
			if r == nil || string(r.Body) != "hello over "+tp || r.Transport != tp || r.From.Display != "Bob" ||
				r.From.Tag == "" || r.Get("X-Msg") != "1" || r.Get("Max-Forwards") != "70" || !strings.Contains(r.Get("Route"), "lr") {
				t.Fatalf("handler got %+v", r)
			}
			if res.ToTag != localTag(r.CallID, r.From.Tag) {
				t.Errorf("ToTag %q, want the derived %q", res.ToTag, localTag(r.CallID, r.From.Tag))
			}
			// In dialog: the To tag and a route set are passed through.
			res2, err := send.Send(ctx, Outgoing{Method: "MESSAGE", RequestURI: "sip:x@bridge.test",
				From: Addr{URI: "sip:bob@sender.test", Tag: r.From.Tag}, To: Addr{URI: "sip:x@bridge.test", Tag: res.ToTag},
				CallID: r.CallID, CSeq: 2, Route: []string{"<sip:" + recv.Addrs()[tp] + ";transport=" + tp + ";lr>"}})
			if err != nil || res2.Code != 200 || res2.ToTag != res.ToTag {
				t.Fatalf("in-dialog Send = %+v, %v", res2, err)
			}
			if r2 := h.last(); r2.To.Tag != res.ToTag || r2.CSeq != 2 {
				t.Errorf("in-dialog request = %+v", r2)
			}
		})
	}
}

// A request over 1300 bytes to a UDP proxy goes over TCP (RFC 3261 18.1.1).
func TestLargeRequestSwitchesToTCP(t *testing.T) {
	ctx, _ := testCtx(t)
	h := &okHandler{}
	recv := startUA(t, ctx, receiverConfig(Listener{Transport: "tcp", Addr: "127.0.0.1:0"}), h)
	send := startUA(t, ctx, Config{
		Domain: "sender.test",
		Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}},
		Proxy:  "sip:" + recv.Addrs()["tcp"], // UDP by default; nobody listens there on UDP
	}, &okHandler{})
	body := strings.Repeat("long message ", 200)
	res, err := sendMessage(ctx, send, body)
	if err != nil || res.Code != 200 {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	if r := h.last(); r.Transport != "tcp" || string(r.Body) != body {
		t.Errorf("received over %s, %d bytes", r.Transport, len(r.Body))
	}
}

func TestTLSUntrustedCertificateRefused(t *testing.T) {
	dir := t.TempDir()
	_, cert, key := testPKI(t, dir, "recv")
	otherCA, _, _ := testPKI(t, dir, "other")
	ctx, _ := testCtx(t)
	h := &okHandler{}
	recv := startUA(t, ctx, receiverConfig(Listener{Transport: "tls", Addr: "127.0.0.1:0", CertFile: cert, KeyFile: key}), h)
	for name, caFile := range map[string]string{"system roots only": "", "other CA": otherCA} {
		t.Run(name, func(t *testing.T) {
			send := startUA(t, ctx, Config{
				Domain: "sender.test",
				Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}},
				Proxy:  "sips:" + recv.Addrs()["tls"],
				CAFile: caFile,
			}, &okHandler{})
			res, err := sendMessage(ctx, send, "secret")
			if err == nil {
				t.Fatalf("Send over TLS with an untrusted certificate succeeded: %+v", res)
			}
			if !strings.Contains(err.Error(), "certificate") {
				t.Errorf("error %v does not name the certificate", err)
			}
		})
	}
	if h.last() != nil {
		t.Error("request reached the handler over an unverified TLS connection")
	}
}

// challengeServer is a small sipgo server that answers every request
// with a digest challenge (401 for REGISTER, 407 otherwise) and accepts
// correct credentials for user "bridge" / "s3cret".
type challengeServer struct {
	addr string
	mu   sync.Mutex
	seen []*sip.Request // guarded by mu
}

func startChallengeServer(t *testing.T, ctx context.Context) *challengeServer {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(quiet)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(quiet)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cs := &challengeServer{addr: pc.LocalAddr().String()}
	chal := &digest.Challenge{Realm: "test", Nonce: "n0nce", Algorithm: "MD5"}
	handle := func(req *sip.Request, tx sip.ServerTransaction) {
		cs.mu.Lock()
		cs.seen = append(cs.seen, req.Clone())
		cs.mu.Unlock()
		hdr, code, reason := "Proxy-Authorization", 407, "Proxy Authentication Required"
		chalHdr := "Proxy-Authenticate"
		if req.Method == sip.REGISTER {
			hdr, code, reason, chalHdr = "Authorization", 401, "Unauthorized", "WWW-Authenticate"
		}
		if h := req.GetHeader(hdr); h != nil {
			cred, err := digest.ParseCredentials(h.Value())
			want, _ := digest.Digest(chal, digest.Options{Method: string(req.Method), URI: cred.URI, Username: "bridge", Password: "s3cret"})
			if err == nil && cred.Username == "bridge" && cred.Response == want.Response {
				res := sip.NewResponseFromRequest(req, 200, "OK", nil)
				if req.Method == sip.REGISTER {
					res.AppendHeader(sip.NewHeader("Expires", "60"))
				}
				_ = tx.Respond(res)
				return
			}
			_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Bad credentials", nil))
			return
		}
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		res.AppendHeader(sip.NewHeader(chalHdr, chal.String()))
		_ = tx.Respond(res)
	}
	srv.OnRequest(sip.MESSAGE, handle)
	srv.OnRequest(sip.REGISTER, handle)
	go func() { _ = srv.ServeUDP(pc) }()
	t.Cleanup(func() {
		pc.Close()
		ua.Close()
	})
	return cs
}

func (cs *challengeServer) requests() []*sip.Request {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]*sip.Request(nil), cs.seen...)
}

func TestDigestAuth(t *testing.T) {
	ctx, logs := testCtx(t)
	cs := startChallengeServer(t, ctx)
	cfg := Config{
		Domain: "bridge.test",
		Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}},
		Proxy:  "sip:" + cs.addr,
	}
	t.Run("without credentials the challenge is the result", func(t *testing.T) {
		u := startUA(t, ctx, cfg, &okHandler{})
		res, err := sendMessage(ctx, u, "x")
		if err != nil || res.Code != 407 {
			t.Fatalf("Send = %+v, %v; want 407", res, err)
		}
	})
	t.Run("message answered with digest", func(t *testing.T) {
		c := cfg
		c.Register = &Register{AOR: "sip:bridge@bridge.test", Password: "s3cret", Expires: 3600e9}
		runCtx, stop := context.WithCancel(ctx)
		u := startUA(t, runCtx, c, &okHandler{})
		res, err := sendMessage(ctx, u, "x")
		if err != nil || res.Code != 200 {
			t.Fatalf("Send = %+v, %v; want 200", res, err)
		}
		// The registration runs next to it; Status follows it.
		waitRegister(t, cs)
		waitFor(t, func() bool { ok, err := u.Status(); return ok && err == nil })
		stop()
		waitUnregister(t, cs)
	})
	if strings.Contains(logs.String(), "s3cret") {
		t.Error("the password appears in the log")
	}
}

// waitRegister blocks until the challenge server saw an authorized REGISTER.
func waitRegister(t *testing.T, cs *challengeServer) {
	t.Helper()
	waitFor(t, func() bool {
		for _, r := range cs.requests() {
			if r.Method == sip.REGISTER && r.GetHeader("Authorization") != nil {
				return true
			}
		}
		return false
	})
}

func waitUnregister(t *testing.T, cs *challengeServer) {
	t.Helper()
	waitFor(t, func() bool {
		for _, r := range cs.requests() {
			if e := r.GetHeader("Expires"); r.Method == sip.REGISTER && e != nil && e.Value() == "0" && r.GetHeader("Authorization") != nil {
				return true
			}
		}
		return false
	})
}

func TestSendTimeout(t *testing.T) {
	ctx, _ := testCtx(t)
	// A peer that reads and never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	u := startUA(t, ctx, Config{
		Domain: "bridge.test",
		Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}},
		Proxy:  "sip:" + pc.LocalAddr().String(),
	}, &okHandler{})
	res, err := sendMessage(ctx, u, "anyone?")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Code != 408 || res.Reason != timeoutReason || res.ToTag != "" {
		t.Fatalf("Result = %+v, want 408 %q", res, timeoutReason)
	}
}

func TestSendTransportError(t *testing.T) {
	ctx, _ := testCtx(t)
	// A TCP port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	u := startUA(t, ctx, Config{
		Domain: "bridge.test",
		Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}},
		Proxy:  "sip:" + addr + ";transport=tcp",
	}, &okHandler{})
	_, err = sendMessage(ctx, u, "x")
	var opErr *net.OpError
	if err == nil || !errors.As(err, &opErr) {
		t.Fatalf("Send error = %v, want a wrapped *net.OpError", err)
	}
}

func TestSendBeforeRun(t *testing.T) {
	u, err := New(validConfig(), &okHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Send(context.Background(), Outgoing{}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Send before Run: %v", err)
	}
}
