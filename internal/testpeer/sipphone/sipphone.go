// Package sipphone is a scriptable SIP phone for tests, built on sipgo: it registers at a
// proxy with digest authentication, sends MESSAGE, SUBSCRIBE and PUBLISH requests whose
// Call-ID, From tag and CSeq the test chooses (to replay a retransmission, say), and
// records the requests it receives, answering them with a code the test sets.
package sipphone

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Options configure a Phone.
type Options struct {
	User, Domain, Password string
	// Proxy is the proxy's UDP address, host:port.
	Proxy string
}

// Phone is a SIP user agent on a UDP port of its own.
type Phone struct {
	opts   Options
	addr   string // the UDP listener, host:port
	ua     *sipgo.UserAgent
	client *sipgo.Client

	mu     sync.Mutex
	code   int
	reason string
	got    []*sip.Request
	notify chan struct{}
}

// New starts a phone for user@domain that sends through the proxy and answers every
// request with 200 until SetAnswer says otherwise. It is closed at the test's end.
func New(t testing.TB, opts Options) *Phone {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Phone{opts: opts, addr: conn.LocalAddr().String(), code: 200, reason: "OK", notify: make(chan struct{})}
	p.ua, err = sipgo.NewUA(sipgo.WithUserAgent(opts.User), sipgo.WithUserAgentHostname(opts.Domain))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(p.ua)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []sip.RequestMethod{sip.MESSAGE, sip.NOTIFY, sip.SUBSCRIBE, sip.PUBLISH, sip.OPTIONS} {
		srv.OnRequest(m, p.serve)
	}
	p.client, err = sipgo.NewClient(p.ua, sipgo.WithClientAddr(p.addr), sipgo.WithClientConnectionAddr(p.addr))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(conn) }()
	// sipgo sends from the listener once ServeUDP has added it to its pool; it has no
	// signal for that.
	for i := 0; ; i++ {
		if c, _ := p.ua.TransportLayer().GetConnection("udp", p.addr); c != nil {
			break
		}
		if i == 500 {
			t.Fatal("sipphone: sipgo did not start serving UDP")
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Cleanup(func() {
		_ = p.ua.Close()
		_ = conn.Close()
	})
	return p
}

func (p *Phone) serve(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	code, reason := p.code, p.reason
	if req.Method != sip.MESSAGE {
		code, reason = 200, "OK"
	}
	p.got = append(p.got, req)
	close(p.notify)
	p.notify = make(chan struct{})
	p.mu.Unlock()
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if req.Method == sip.SUBSCRIBE {
		res.AppendHeader(sip.NewHeader("Expires", "600"))
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Host: "127.0.0.1", Port: p.port()}})
	}
	_ = tx.Respond(res)
}

// SetAnswer sets the answer to MESSAGE requests from now on.
func (p *Phone) SetAnswer(code int, reason string) {
	p.mu.Lock()
	p.code, p.reason = code, reason
	p.mu.Unlock()
}

func (p *Phone) port() int {
	_, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	return n
}

// AOR is the phone's SIP URI, sip:user@domain.
func (p *Phone) AOR() string { return "sip:" + p.opts.User + "@" + p.opts.Domain }

// Addr is the phone's UDP address.
func (p *Phone) Addr() string { return p.addr }

// Request is a request the phone sends.
type Request struct {
	Method      string // default MESSAGE
	To          string // SIP URI
	ContentType string
	Body        []byte
	// CallID, FromTag and CSeq identify the request; random (CSeq 1) when empty.
	CallID, FromTag string
	CSeq            uint32
	Headers         map[string]string
}

// Send sends a request through the proxy and returns the final answer's code and reason,
// answering one 401 or 407 with the phone's credentials.
func (p *Phone) Send(ctx context.Context, r Request) (int, string, error) {
	method := sip.RequestMethod(r.Method)
	if method == "" {
		method = sip.MESSAGE
	}
	var to sip.Uri
	if err := sip.ParseUri(r.To, &to); err != nil {
		return 0, "", fmt.Errorf("sipphone: %q: %w", r.To, err)
	}
	req := sip.NewRequest(method, to)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.opts.User, Host: p.opts.Domain}, Params: sip.NewParams()}
	tag := r.FromTag
	if tag == "" {
		tag = sip.GenerateTagN(12)
	}
	from.Params.Add("tag", tag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	if r.CallID != "" {
		cid := sip.CallIDHeader(r.CallID)
		req.AppendHeader(&cid)
	}
	if r.CSeq != 0 {
		req.AppendHeader(&sip.CSeqHeader{SeqNo: r.CSeq, MethodName: method})
	}
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.opts.User, Host: "127.0.0.1", Port: p.port()}})
	for k, v := range r.Headers {
		req.AppendHeader(sip.NewHeader(k, v))
	}
	if r.ContentType != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", r.ContentType))
	}
	req.SetBody(r.Body)
	req.SetDestination(p.opts.Proxy)
	req.SetTransport("UDP")
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		return 0, "", fmt.Errorf("sipphone: %s %s: %w", method, r.To, err)
	}
	if (res.StatusCode == 401 || res.StatusCode == 407) && p.opts.Password != "" {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.opts.User, Password: p.opts.Password})
		if err != nil {
			return 0, "", fmt.Errorf("sipphone: %s %s with credentials: %w", method, r.To, err)
		}
	}
	return res.StatusCode, res.Reason, nil
}

// Register registers the phone's listener as its contact for ten minutes.
func (p *Phone) Register(ctx context.Context) error {
	return p.RegisterContact(ctx, "sip:"+p.opts.User+"@"+p.addr)
}

// RegisterContact registers contact (such as a SIPp answerer's address) for the phone's
// user, for ten minutes.
func (p *Phone) RegisterContact(ctx context.Context, contact string) error {
	var c sip.Uri
	if err := sip.ParseUri(contact, &c); err != nil {
		return fmt.Errorf("sipphone: contact %q: %w", contact, err)
	}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: p.opts.Domain})
	aor := sip.Uri{Scheme: "sip", User: p.opts.User, Host: p.opts.Domain}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: c})
	req.AppendHeader(sip.NewHeader("Expires", "600"))
	req.SetDestination(p.opts.Proxy)
	req.SetTransport("UDP")
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	res, err := p.client.Do(ctx, req)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.opts.User, Password: p.opts.Password})
	}
	if err != nil {
		return fmt.Errorf("sipphone: register %s: %w", p.AOR(), err)
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("sipphone: register %s: %d %s", p.AOR(), res.StatusCode, res.Reason)
	}
	return nil
}

// Received is every request received so far with method (all when empty).
func (p *Phone) Received(method string) []*sip.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*sip.Request
	for _, r := range p.got {
		if method == "" || string(r.Method) == method {
			out = append(out, r)
		}
	}
	return out
}

// Wait waits until a received request matches, and returns it.
func (p *Phone) Wait(ctx context.Context, what string, match func(*sip.Request) bool) (*sip.Request, error) {
	for {
		p.mu.Lock()
		for _, r := range p.got {
			if match(r) {
				p.mu.Unlock()
				return r, nil
			}
		}
		ch := p.notify
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("sipphone: %s: no %s: %w", p.AOR(), what, ctx.Err())
		}
	}
}
