package baresip_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// received is a request the fake proxy got.
type received struct {
	Method, From, To, ContentType, Body string
}

// fakeProxy is a tiny registrar and proxy for domain sip.test, on sipgo: REGISTER with a
// digest challenge, MESSAGE and PUBLISH answered 200, SUBSCRIBE answered 200 and followed
// by a NOTIFY saying the subscribed URI is open.
type fakeProxy struct {
	Addr     string // TCP host:port; immutable
	password string // immutable
	client   *sipgo.Client

	mu       sync.Mutex
	reqs     []received         // guarded by mu
	contacts map[string]sip.Uri // guarded by mu; AOR user -> registered Contact
	changed  chan struct{}      // guarded by mu
}

const realm = "sip.test"

func startFakeProxy(t *testing.T, password string) *fakeProxy {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("fakeproxy"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeProxy{Addr: l.Addr().String(), password: password, client: client,
		contacts: map[string]sip.Uri{}, changed: make(chan struct{})}
	srv.OnRegister(p.register)
	srv.OnMessage(p.record(200))
	srv.OnPublish(p.record(200))
	srv.OnSubscribe(p.subscribe)
	go func() { _ = srv.ServeTCP(l) }()
	t.Cleanup(func() {
		l.Close()
		ua.Close()
	})
	return p
}

func (p *fakeProxy) add(r received) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, r)
	close(p.changed)
	p.changed = make(chan struct{})
}

// wait waits for a request that match accepts.
func (p *fakeProxy) wait(ctx context.Context, match func(received) bool) (received, error) {
	for {
		p.mu.Lock()
		reqs, changed := p.reqs, p.changed
		p.mu.Unlock()
		for _, r := range reqs {
			if match(r) {
				return r, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return received{}, fmt.Errorf("fake proxy got %d requests, none matching: %w", len(reqs), ctx.Err())
		}
	}
}

func describe(req *sip.Request) received {
	r := received{Method: string(req.Method), Body: string(req.Body())}
	if h := req.From(); h != nil {
		r.From = h.Address.String()
	}
	if h := req.To(); h != nil {
		r.To = h.Address.String()
	}
	if h := req.ContentType(); h != nil {
		r.ContentType = h.Value()
	}
	return r
}

func (p *fakeProxy) record(code int) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		p.add(describe(req))
		res := sip.NewResponseFromRequest(req, code, "OK", nil)
		if req.Method == sip.PUBLISH {
			res.AppendHeader(sip.NewHeader("SIP-ETag", "etag1"))
			res.AppendHeader(sip.NewHeader("Expires", "600"))
		}
		_ = tx.Respond(res)
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// digestOK checks an Authorization header (RFC 2617 without qop, or qop=auth).
func (p *fakeProxy) digestOK(method, auth string) bool {
	params := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, "Digest "), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		params[k] = strings.Trim(v, `"`)
	}
	ha1 := md5hex(params["username"] + ":" + realm + ":" + p.password)
	ha2 := md5hex(method + ":" + params["uri"])
	want := md5hex(ha1 + ":" + params["nonce"] + ":" + ha2)
	if params["qop"] != "" {
		want = md5hex(ha1 + ":" + params["nonce"] + ":" + params["nc"] + ":" + params["cnonce"] + ":" + params["qop"] + ":" + ha2)
	}
	return params["response"] == want
}

func (p *fakeProxy) register(req *sip.Request, tx sip.ServerTransaction) {
	auth := req.GetHeader("Authorization")
	if auth == nil {
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="`+realm+`", nonce="n0nce", algorithm=MD5`))
		_ = tx.Respond(res)
		return
	}
	if !p.digestOK("REGISTER", auth.Value()) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}
	r := describe(req)
	if c := req.Contact(); c != nil {
		p.mu.Lock()
		p.contacts[req.To().Address.User] = c.Address
		p.mu.Unlock()
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if c := req.Contact(); c != nil {
		res.AppendHeader(sip.NewHeader("Contact", c.Value()+";expires=3600"))
	}
	_ = tx.Respond(res)
	p.add(r)
}

// subscribe accepts a presence subscription and notifies "open" for the subscribed URI.
func (p *fakeProxy) subscribe(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Expires", "600"))
	res.AppendHeader(sip.NewHeader("Contact", "<sip:presence@"+p.Addr+";transport=tcp>"))
	if err := tx.Respond(res); err != nil {
		return
	}
	p.add(describe(req))
	contact := req.Contact()
	if contact == nil {
		return
	}
	entity := req.To().Address.String()
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="` + entity + `"><tuple id="t1"><status><basic>open</basic></status></tuple></presence>`
	notify := sip.NewRequest(sip.NOTIFY, contact.Address)
	from := res.To().AsFrom()
	to := req.From().AsTo()
	notify.AppendHeader(&from)
	notify.AppendHeader(&to)
	notify.AppendHeader(req.CallID())
	notify.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.NOTIFY})
	notify.AppendHeader(sip.NewHeader("Contact", "<sip:presence@"+p.Addr+";transport=tcp>"))
	notify.AppendHeader(sip.NewHeader("Event", "presence"))
	notify.AppendHeader(sip.NewHeader("Subscription-State", "active;expires=600"))
	notify.AppendHeader(sip.NewHeader("Content-Type", "application/pidf+xml"))
	notify.SetBody([]byte(body))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = p.client.Do(ctx, notify)
	}()
}

// contact returns the Contact user registered.
func (p *fakeProxy) contact(user string) (sip.Uri, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.contacts[user]
	return c, ok
}

// sendMessage sends a MESSAGE from fromAOR to the URI target and returns the answer's code.
func (p *fakeProxy) sendMessage(ctx context.Context, target sip.Uri, fromAOR, toAOR, ctype, body string) (int, error) {
	req := sip.NewRequest(sip.MESSAGE, target)
	var fromURI, toURI sip.Uri
	if err := sip.ParseUri(fromAOR, &fromURI); err != nil {
		return 0, err
	}
	if err := sip.ParseUri(toAOR, &toURI); err != nil {
		return 0, err
	}
	from := &sip.FromHeader{Address: fromURI}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: toURI})
	req.AppendHeader(sip.NewHeader("Content-Type", ctype))
	req.SetBody([]byte(body))
	res, err := p.client.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}
