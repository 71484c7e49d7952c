package kamailio_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// endpoint is a SIP user agent on a UDP port of its own, built on sipgo: a phone of a
// sip.test user, or the stand-in for the bridge. Requests it receives are answered with
// answer's code and passed to reqs.
type endpoint struct {
	user     string
	domain   string
	password string
	addr     string // the UDP listener, host:port
	proxy    string // the proxy's UDP address, host:port
	ua       *sipgo.UserAgent
	client   *sipgo.Client
	reqs     chan *sip.Request
}

// newEndpoint starts a user agent for user@domain that sends through proxy (host:port,
// UDP) and answers every request it receives with 200.
func newEndpoint(t testing.TB, user, domain, password, proxy string) *endpoint {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &endpoint{user: user, domain: domain, password: password, proxy: proxy,
		addr: conn.LocalAddr().String(), reqs: make(chan *sip.Request, 16)}
	e.ua, err = sipgo.NewUA(sipgo.WithUserAgent(user), sipgo.WithUserAgentHostname(domain))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(e.ua)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []sip.RequestMethod{sip.MESSAGE, sip.NOTIFY, sip.SUBSCRIBE, sip.PUBLISH, sip.OPTIONS} {
		srv.OnRequest(m, func(req *sip.Request, tx sip.ServerTransaction) {
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			if req.Method == sip.SUBSCRIBE {
				res.AppendHeader(sip.NewHeader("Expires", "60"))
				res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Host: "127.0.0.1", Port: e.port()}})
			}
			_ = tx.Respond(res)
			select {
			case e.reqs <- req:
			default:
				t.Errorf("%s@%s: dropped a %s: the test reads too few", user, domain, req.Method)
			}
		})
	}
	e.client, err = sipgo.NewClient(e.ua, sipgo.WithClientAddr(e.addr), sipgo.WithClientConnectionAddr(e.addr))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(conn) }()
	// sipgo sends from the listener once ServeUDP has added it to the pool; it has no
	// signal for that.
	for i := 0; ; i++ {
		if c, _ := e.ua.TransportLayer().GetConnection("udp", e.addr); c != nil {
			break
		}
		if i == 500 {
			t.Fatal("sipgo did not start serving UDP")
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = e.ua.Close()
		_ = conn.Close()
	})
	return e
}

func (e *endpoint) port() int {
	_, port, _ := net.SplitHostPort(e.addr)
	var p int
	fmt.Sscan(port, &p)
	return p
}

// aor is the endpoint's SIP URI.
func (e *endpoint) aor() sip.Uri { return sip.Uri{Scheme: "sip", User: e.user, Host: e.domain} }

// newRequest builds an out-of-dialog request from the endpoint to the URI to, sent to the
// proxy, with the endpoint's Contact.
func (e *endpoint) newRequest(method sip.RequestMethod, to sip.Uri, contentType string, body []byte) *sip.Request {
	req := sip.NewRequest(method, to)
	from := &sip.FromHeader{Address: e.aor(), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: e.user, Host: "127.0.0.1", Port: e.port()}})
	if contentType != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	}
	req.SetBody(body)
	req.SetDestination(e.proxy)
	req.SetTransport("UDP")
	return req
}

// do sends req and returns the final response, answering a 401 or 407 once with the
// endpoint's credentials.
func (e *endpoint) do(ctx context.Context, t testing.TB, req *sip.Request) *sip.Response {
	t.Helper()
	return do(ctx, t, e.client, req, e.user, e.password)
}

func do(ctx context.Context, t testing.TB, c *sipgo.Client, req *sip.Request, user, password string) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.Recipient.String(), err)
	}
	if (res.StatusCode == 401 || res.StatusCode == 407) && password != "" {
		res, err = c.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: password})
		if err != nil {
			t.Fatalf("%s %s with credentials: %v", req.Method, req.Recipient.String(), err)
		}
	}
	return res
}

// register registers the endpoint's listener as its contact for a minute.
func (e *endpoint) register(ctx context.Context, t testing.TB) *sip.Response {
	t.Helper()
	req := e.newRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: e.domain}, "", nil)
	req.ReplaceHeader(&sip.ToHeader{Address: e.aor(), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Expires", "60"))
	return e.do(ctx, t, req)
}

// next waits for the next request the endpoint receives with the given method, skipping
// others.
func (e *endpoint) next(ctx context.Context, t testing.TB, method sip.RequestMethod) *sip.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		select {
		case req := <-e.reqs:
			if req.Method == method {
				return req
			}
		case <-ctx.Done():
			t.Fatalf("%s@%s: no %s received: %v", e.user, e.domain, method, ctx.Err())
			return nil
		}
	}
}

// nextWith waits for a request of method whose body contains want.
func (e *endpoint) nextWith(ctx context.Context, t testing.TB, method sip.RequestMethod, want string) *sip.Request {
	t.Helper()
	for {
		req := e.next(ctx, t, method)
		if strings.Contains(string(req.Body()), want) {
			return req
		}
	}
}

// rawUDP sends one request as text from a socket bound to laddr and returns the status
// line of the answer.
func rawUDP(t testing.TB, laddr, raddr, req string) string {
	t.Helper()
	la, err := net.ResolveUDPAddr("udp", laddr)
	if err != nil {
		t.Fatal(err)
	}
	ra, err := net.ResolveUDPAddr("udp", raddr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", la, ra)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req = strings.ReplaceAll(req, "LOCAL", c.LocalAddr().String())
	if _, err := c.Write([]byte(strings.ReplaceAll(req, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8192)
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer from %s: %v", raddr, err)
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		if !strings.HasPrefix(line, "SIP/2.0 1") {
			return line
		}
	}
}

// tlsClient is a sipgo client over TLS with config c.
func tlsClient(t testing.TB, c *tls.Config) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgenTLSConfig(c), sipgo.WithUserAgentHostname("sip.test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientNAT())
	if err != nil {
		t.Fatal(err)
	}
	return client
}
