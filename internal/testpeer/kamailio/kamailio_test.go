package kamailio_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/kamailio"
)

const (
	domain       = "sip.test"
	bridgeDomain = "matrix.test"
	alicePW      = `al:ice "pw"`
	bobPW        = "bob-secret"
)

func uri(user, host string) sip.Uri { return sip.Uri{Scheme: "sip", User: user, Host: host} }

func TestKamailio(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The bridge's stand-in listens before the proxy starts, which needs its address.
	bridge := newEndpoint(t, "bridge", bridgeDomain, "", "")
	srv := kamailio.StartTest(t, kamailio.Options{
		Users:        map[string]string{"alice": alicePW, "bob": bobPW, "carol": "carol-pw"},
		BridgeDomain: bridgeDomain, BridgeAddr: bridge.addr, BridgeTransport: "udp",
	})
	bridge.proxy = srv.UDPAddr
	alice := newEndpoint(t, "alice", domain, alicePW, srv.UDPAddr)
	bob := newEndpoint(t, "bob", domain, bobPW, srv.UDPAddr)

	t.Run("register with digest", func(t *testing.T) {
		for _, e := range []*endpoint{alice, bob} {
			if res := e.register(ctx, t); res.StatusCode != 200 {
				t.Fatalf("REGISTER %s: %s", e.user, res.StartLine())
			}
		}
	})

	t.Run("register with a wrong password is refused", func(t *testing.T) {
		mallory := newEndpoint(t, "alice", domain, "wrong", srv.UDPAddr)
		if res := mallory.register(ctx, t); res.StatusCode < 400 {
			t.Errorf("REGISTER with a wrong password: %s, want a refusal", res.StartLine())
		}
	})

	t.Run("message between registered users", func(t *testing.T) {
		req := alice.newRequest(sip.MESSAGE, uri("bob", domain), "text/plain", []byte("hello bob"))
		if res := alice.do(ctx, t, req); res.StatusCode != 200 {
			t.Fatalf("MESSAGE: %s", res.StartLine())
		}
		got := bob.next(ctx, t, sip.MESSAGE)
		if string(got.Body()) != "hello bob" || got.From().Address.User != "alice" {
			t.Errorf("bob got %q from %s", got.Body(), got.From().Address.String())
		}
		if got.GetHeader("Proxy-Authorization") != nil {
			t.Error("the proxy passed alice's credentials on")
		}
	})

	t.Run("message errors", func(t *testing.T) {
		tests := []struct {
			name string
			to   sip.Uri
			want int
		}{
			{"unknown user", uri("nobody", domain), 404},
			{"user not registered", uri("carol", domain), 480},
			{"other domain", uri("dave", "example.org"), 403},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req := alice.newRequest(sip.MESSAGE, tt.to, "text/plain", []byte("hi"))
				if res := alice.do(ctx, t, req); res.StatusCode != tt.want {
					t.Errorf("MESSAGE to %s: %s, want %d", tt.to.String(), res.StartLine(), tt.want)
				}
			})
		}
	})

	t.Run("message with a From other than the authenticated user is refused", func(t *testing.T) {
		req := alice.newRequest(sip.MESSAGE, uri("bob", domain), "text/plain", []byte("I am bob"))
		req.From().Address.User = "bob"
		if res := alice.do(ctx, t, req); res.StatusCode != 403 {
			t.Errorf("MESSAGE as bob with alice's password: %s, want 403", res.StartLine())
		}
	})

	t.Run("message to the bridge domain reaches the bridge", func(t *testing.T) {
		req := alice.newRequest(sip.MESSAGE, uri("_sip_ghost", bridgeDomain), "text/plain", []byte("to matrix"))
		if res := alice.do(ctx, t, req); res.StatusCode != 200 {
			t.Fatalf("MESSAGE: %s", res.StartLine())
		}
		got := bridge.next(ctx, t, sip.MESSAGE)
		if string(got.Body()) != "to matrix" || got.From().Address.String() != "sip:alice@sip.test" || got.Recipient.Host != bridgeDomain {
			t.Errorf("bridge got %q from %s to %s", got.Body(), got.From().Address.String(), got.Recipient.String())
		}
		if got.GetHeader("Proxy-Authorization") != nil {
			t.Error("the proxy passed alice's credentials on to the bridge")
		}
	})

	t.Run("message from the bridge reaches a registered user without auth", func(t *testing.T) {
		req := bridge.newRequest(sip.MESSAGE, uri("alice", domain), "text/plain", []byte("from matrix"))
		if res := bridge.do(ctx, t, req); res.StatusCode != 200 {
			t.Fatalf("MESSAGE: %s", res.StartLine())
		}
		got := alice.next(ctx, t, sip.MESSAGE)
		if string(got.Body()) != "from matrix" || got.From().Address.Host != bridgeDomain {
			t.Errorf("alice got %q from %s", got.Body(), got.From().Address.String())
		}
	})

	t.Run("bridge domain from another address is refused", func(t *testing.T) {
		// 127.0.0.2 is loopback too, but not the bridge's address.
		line := rawUDP(t, "127.0.0.2:0", srv.UDPAddr, `MESSAGE sip:alice@sip.test SIP/2.0
Via: SIP/2.0/UDP LOCAL;branch=z9hG4bK-spoof-1;rport
Max-Forwards: 70
From: <sip:mallory@matrix.test>;tag=spoof
To: <sip:alice@sip.test>
Call-ID: spoof-1@127.0.0.2
CSeq: 1 MESSAGE
Content-Type: text/plain
Content-Length: 5

spoof`)
		if !strings.HasPrefix(line, "SIP/2.0 403 ") {
			t.Errorf("spoofed bridge MESSAGE: %q, want 403", line)
		}
	})

	t.Run("presence of a user is notified to the bridge as watcher", func(t *testing.T) {
		sub := bridge.newRequest(sip.SUBSCRIBE, uri("alice", domain), "", nil)
		sub.AppendHeader(sip.NewHeader("Event", "presence"))
		sub.AppendHeader(sip.NewHeader("Accept", "application/pidf+xml"))
		sub.AppendHeader(sip.NewHeader("Expires", "60"))
		if res := bridge.do(ctx, t, sub); res.StatusCode/100 != 2 {
			t.Fatalf("SUBSCRIBE: %s", res.StartLine())
		}
		if n := bridge.next(ctx, t, sip.NOTIFY); n.GetHeader("Subscription-State") == nil {
			t.Errorf("initial NOTIFY without Subscription-State:\n%s", n)
		}

		pidf := `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@sip.test">
  <tuple id="t1"><status><basic>open</basic></status><note>at lunch</note></tuple>
</presence>`
		pub := alice.newRequest(sip.PUBLISH, uri("alice", domain), "application/pidf+xml", []byte(pidf))
		pub.AppendHeader(sip.NewHeader("Event", "presence"))
		pub.AppendHeader(sip.NewHeader("Expires", "60"))
		if res := alice.do(ctx, t, pub); res.StatusCode != 200 || res.GetHeader("SIP-ETag") == nil {
			t.Fatalf("PUBLISH: %s", res.StartLine())
		}
		n := bridge.nextWith(ctx, t, sip.NOTIFY, "at lunch")
		if ct := n.ContentType(); ct == nil || ct.Value() != "application/pidf+xml" {
			t.Errorf("NOTIFY Content-Type %v, want application/pidf+xml", ct)
		}
		if !strings.Contains(string(n.Body()), "<basic>open</basic>") {
			t.Errorf("NOTIFY body lacks the open status:\n%s", n.Body())
		}
		if ev := n.GetHeader("Event"); ev == nil || ev.Value() != "presence" {
			t.Errorf("NOTIFY Event %v, want presence", ev)
		}
	})

	t.Run("publish for someone else is refused", func(t *testing.T) {
		pub := alice.newRequest(sip.PUBLISH, uri("bob", domain), "application/pidf+xml", []byte("<presence/>"))
		pub.AppendHeader(sip.NewHeader("Event", "presence"))
		if res := alice.do(ctx, t, pub); res.StatusCode != 403 {
			t.Errorf("PUBLISH for bob by alice: %s, want 403", res.StartLine())
		}
	})

	t.Run("subscribe to a bridge-domain user is forwarded to the bridge", func(t *testing.T) {
		sub := alice.newRequest(sip.SUBSCRIBE, uri("_sip_ghost", bridgeDomain), "", nil)
		sub.AppendHeader(sip.NewHeader("Event", "presence"))
		sub.AppendHeader(sip.NewHeader("Expires", "60"))
		if res := alice.do(ctx, t, sub); res.StatusCode/100 != 2 {
			t.Fatalf("SUBSCRIBE: %s", res.StartLine())
		}
		got := bridge.next(ctx, t, sip.SUBSCRIBE)
		if rr := got.RecordRoute(); rr == nil || rr.Address.Port != mustPort(t, srv.UDPAddr) {
			t.Errorf("forwarded SUBSCRIBE without the proxy's Record-Route: %v", rr)
		}
		if got.From().Address.String() != "sip:alice@sip.test" {
			t.Errorf("forwarded SUBSCRIBE from %s", got.From().Address.String())
		}

		// The bridge's NOTIFY follows the route set back to alice (loose_route).
		rr := got.RecordRoute()
		if rr == nil || got.Contact() == nil {
			t.Fatal("forwarded SUBSCRIBE lacks Record-Route or Contact")
		}
		notify := sip.NewRequest(sip.NOTIFY, got.Contact().Address)
		from := &sip.FromHeader{Address: got.To().Address, Params: sip.NewParams()}
		from.Params.Add("tag", "bridge-dialog")
		notify.AppendHeader(from)
		notify.AppendHeader(&sip.ToHeader{Address: got.From().Address, Params: got.From().Params})
		notify.AppendHeader(sip.NewHeader("Call-ID", got.CallID().Value()))
		notify.AppendHeader(&sip.RouteHeader{Address: rr.Address})
		notify.AppendHeader(sip.NewHeader("Event", "presence"))
		notify.AppendHeader(sip.NewHeader("Subscription-State", "active;expires=60"))
		notify.AppendHeader(sip.NewHeader("Content-Type", "application/pidf+xml"))
		notify.SetBody([]byte(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:_sip_ghost@matrix.test"/>`))
		notify.SetDestination(srv.UDPAddr)
		notify.SetTransport("UDP")
		if res := bridge.do(ctx, t, notify); res.StatusCode != 200 {
			t.Fatalf("in-dialog NOTIFY: %s", res.StartLine())
		}
		if n := alice.nextWith(ctx, t, sip.NOTIFY, "_sip_ghost@matrix.test"); n.GetHeader("Route") != nil {
			t.Errorf("NOTIFY reached alice with the proxy's Route still in it:\n%s", n)
		}
	})

	t.Run("tls with the CA file", func(t *testing.T) {
		pem, err := os.ReadFile(srv.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatal("CA file holds no certificate")
		}
		c := tlsClient(t, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
		from := &sip.FromHeader{Address: uri("bob", domain), Params: sip.NewParams()}
		from.Params.Add("tag", "tls1")
		req.AppendHeader(from)
		req.AppendHeader(&sip.ToHeader{Address: uri("bob", domain), Params: sip.NewParams()})
		contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: 5061, UriParams: sip.NewParams()}}
		contact.Address.UriParams.Add("transport", "tls")
		req.AppendHeader(contact)
		req.AppendHeader(sip.NewHeader("Expires", "0"))
		req.SetDestination(srv.TLSAddr)
		req.SetTransport("TLS")
		if res := do(ctx, t, c, req, "bob", bobPW); res.StatusCode != 200 {
			t.Errorf("REGISTER over TLS: %s", res.StartLine())
		}
	})

	t.Run("tls without the CA file is refused", func(t *testing.T) {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{ServerName: "127.0.0.1"}}
		conn, err := d.DialContext(ctx, "tcp", srv.TLSAddr)
		if err == nil {
			conn.Close()
			t.Fatal("TLS handshake succeeded without the harness's CA")
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("TLS handshake: %v, want an unknown-authority error", err)
		}
	})

	t.Run("restart keeps ports", func(t *testing.T) {
		if err := srv.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if res := alice.register(ctx, t); res.StatusCode != 200 {
			t.Errorf("REGISTER after restart: %s", res.StartLine())
		}
	})
}

func mustPort(t testing.TB, addr string) int {
	t.Helper()
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return tcp.Port
}

func TestOptionsAreValidated(t *testing.T) {
	tests := []struct {
		name string
		opts kamailio.Options
	}{
		{"bad domain", kamailio.Options{Domain: "Sip Test"}},
		{"bad user", kamailio.Options{Users: map[string]string{"al:ice": "x"}}},
		{"bridge without address", kamailio.Options{BridgeDomain: "matrix.test"}},
		{"bridge on a host name", kamailio.Options{BridgeDomain: "matrix.test", BridgeAddr: "localhost:5070"}},
		{"bridge domain is the domain", kamailio.Options{BridgeDomain: "sip.test", BridgeAddr: "127.0.0.1:5070"}},
		{"bad transport", kamailio.Options{BridgeDomain: "matrix.test", BridgeAddr: "127.0.0.1:5070", BridgeTransport: "sctp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := kamailio.Available(); err != nil {
				t.Skip(err)
			}
			srv, err := kamailio.Start(context.Background(), tt.opts)
			if err == nil {
				_ = srv.Stop()
				t.Fatal("Start succeeded")
			}
		})
	}
}
