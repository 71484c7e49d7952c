package component_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/syncbuf"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
	sbstanza "github.com/switchboard-matrix/switchboard/bridges/xmpp/stanza"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/prosody"
)

func TestNewValidates(t *testing.T) {
	h := func(context.Context, []byte) error { return nil }
	tests := []struct {
		name    string
		cfg     component.Config
		h       component.Handler
		wantErr string // "" means valid
	}{
		{"valid", component.Config{Addr: "127.0.0.1:5347", Domain: "matrix.localhost", Secret: "s3cr3t-value"}, h, ""},
		{"missing addr", component.Config{Domain: "matrix.localhost", Secret: "s3cr3t-value"}, h, "addr is required"},
		{"bad addr", component.Config{Addr: "localhost", Domain: "matrix.localhost", Secret: "s3cr3t-value"}, h, "host:port"},
		{"missing domain", component.Config{Addr: "127.0.0.1:5347", Secret: "s3cr3t-value"}, h, "domain is required"},
		{"domain with localpart", component.Config{Addr: "127.0.0.1:5347", Domain: "a@matrix.localhost", Secret: "s3cr3t-value"}, h, "not a domain JID"},
		{"one-label domain needs server domain", component.Config{Addr: "127.0.0.1:5347", Domain: "matrix", Secret: "s3cr3t-value"}, h, "server_domain is required"},
		{"missing secret", component.Config{Addr: "127.0.0.1:5347", Domain: "matrix.localhost"}, h, "secret is required"},
		{"missing handler", component.Config{Addr: "127.0.0.1:5347", Domain: "matrix.localhost", Secret: "s3cr3t-value"}, nil, "handler is required"},
		{"inverted backoff", component.Config{Addr: "127.0.0.1:5347", Domain: "matrix.localhost", Secret: "s3cr3t-value", MinBackoff: time.Minute, MaxBackoff: time.Second}, h, "max_backoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := component.New(tt.cfg, tt.h)
			if tt.wantErr == "" {
				if err != nil || c == nil {
					t.Fatalf("New: %v", err)
				}
				if c.Connected() || c.LastError() != "" {
					t.Errorf("new Conn: connected %v, last error %q", c.Connected(), c.LastError())
				}
				return
			}
			if !errors.Is(err, component.ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New error %v, want ErrConfig mentioning %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cr3t-value") {
				t.Errorf("error contains the secret: %v", err)
			}
		})
	}
}

func TestSendRejectsNonStanzas(t *testing.T) {
	c, err := component.New(component.Config{Addr: "127.0.0.1:1", Domain: "matrix.localhost", Secret: "x"}, func(context.Context, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, raw string }{
		{"empty", ""},
		{"not a stanza", "<foo/>"},
		{"two stanzas", "<message/><message/>"},
		{"unclosed", "<message>"},
		{"text after", "<message/>junk"},
		{"foreign namespace", "<message xmlns='urn:other'/>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := c.Send(ctx, []byte(tt.raw)); !errors.Is(err, component.ErrStanza) {
				t.Errorf("Send(%q) = %v, want ErrStanza", tt.raw, err)
			}
		})
	}
}

// chat is a message as alice's client sees it.
type chat struct {
	From, To, ID, Type string
	Body               string
	Condition          string // first child of <error>, for type='error'
}

// login opens a client session as user@Domain with SASL PLAIN over loopback TCP and
// delivers its messages on the returned channel.
func login(ctx context.Context, t *testing.T, srv *prosody.Server, user, password string) (*xmpp.Session, <-chan chat) {
	t.Helper()
	sess, err := srv.DialClient(ctx, user, password)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan chat, 64)
	go func() {
		_ = sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			var m struct {
				From  string `xml:"from,attr"`
				To    string `xml:"to,attr"`
				ID    string `xml:"id,attr"`
				Type  string `xml:"type,attr"`
				Body  string `xml:"body"`
				Error struct {
					Inner []struct{ XMLName xml.Name } `xml:",any"`
				} `xml:"error"`
			}
			d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r))
			if err := d.Decode(&m); err != nil {
				return err
			}
			c := chat{From: m.From, To: m.To, ID: m.ID, Type: m.Type, Body: m.Body}
			if len(m.Error.Inner) > 0 {
				c.Condition = m.Error.Inner[0].XMLName.Local
			}
			select {
			case msgs <- c:
			default:
			}
			return nil
		}))
	}()
	// Available presence, so that the server routes messages to this resource.
	if err := sess.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		t.Fatalf("presence: %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess, msgs
}

func sendChat(ctx context.Context, sess *xmpp.Session, to jid.JID, id, body string) error {
	msg := stanza.Message{To: to, ID: id, Type: stanza.ChatMessage}
	return sess.Send(ctx, msg.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}})))
}

func waitChat(t *testing.T, msgs <-chan chat, what string, ok func(chat) bool) chat {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m := <-msgs:
			if ok(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("alice did not receive %s", what)
		}
	}
}

// runConn starts c.Run until the test ends and returns a function that waits for it.
func runConn(t *testing.T, ctx context.Context, c *component.Conn) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

func waitConnected(t *testing.T, c *component.Conn, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for !c.Connected() {
		if time.Since(start) > within {
			t.Fatalf("not connected after %v; last error %q", within, c.LastError())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// inboundMsg is what the test Handler records of a message.
type inboundMsg struct {
	From, To, ID string
	Body         string
	Raw          []byte
}

func decodeInbound(raw []byte) (inboundMsg, bool) {
	var m struct {
		XMLName xml.Name
		From    string `xml:"from,attr"`
		To      string `xml:"to,attr"`
		ID      string `xml:"id,attr"`
		Body    string `xml:"body"`
	}
	if err := xml.Unmarshal(raw, &m); err != nil || m.XMLName.Local != "message" {
		return inboundMsg{}, false
	}
	return inboundMsg{From: m.From, To: m.To, ID: m.ID, Body: m.Body, Raw: raw}, true
}

func TestComponent(t *testing.T) {
	srv := prosody.StartTest(t, prosody.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.Register(ctx, "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}

	inbound := make(chan inboundMsg, 64)
	h := func(ctx context.Context, raw []byte) error {
		m, ok := decodeInbound(raw)
		if !ok {
			return nil
		}
		if m.Body == "please fail" {
			return errors.New("matrix is down")
		}
		inbound <- m
		return nil
	}
	c, err := component.New(component.Config{Addr: srv.ComponentAddr, Domain: srv.ComponentDomain, Secret: srv.ComponentSecret}, h)
	if err != nil {
		t.Fatal(err)
	}
	runConn(t, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.DebugLevel).WithContext(ctx), c)
	t.Logf("connected in %v", waitConnected(t, c, 10*time.Second))
	alice, aliceMsgs := login(ctx, t, srv, "alice", "alice-pw")
	someone := jid.MustParse("someone@" + srv.ComponentDomain)

	t.Run("inbound message reaches the handler", func(t *testing.T) {
		start := time.Now()
		if err := sendChat(ctx, alice, someone, "in-1", "hello bridge"); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-inbound:
			t.Logf("delivered in %v: %s", time.Since(start), m.Raw)
			if m.Body != "hello bridge" || m.ID != "in-1" || m.To != someone.String() || !strings.HasPrefix(m.From, "alice@"+srv.Domain) {
				t.Errorf("got %+v", m)
			}
			if _, err := sbstanza.Parse(m.Raw, 0); err != nil {
				t.Errorf("raw stanza does not pass stanza.Parse: %v\n%s", err, m.Raw)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("handler did not get the message")
		}
	})

	t.Run("pings to the component are answered without the handler", func(t *testing.T) {
		before := len(inbound)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for _, to := range []string{srv.ComponentDomain, "someone@" + srv.ComponentDomain} {
			payload := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: "urn:xmpp:ping", Local: "ping"}})
			resp, err := alice.SendIQElement(pctx, payload, stanza.IQ{To: jid.MustParse(to), Type: stanza.GetIQ})
			if err != nil {
				t.Fatalf("ping %s: %v", to, err)
			}
			tok, err := resp.Token()
			resp.Close()
			start, ok := tok.(xml.StartElement)
			if err != nil || !ok {
				t.Fatalf("ping %s: answer %v, %v", to, tok, err)
			}
			for _, a := range start.Attr {
				if a.Name.Local == "type" && a.Value != "result" {
					t.Errorf("ping %s answered with type %q", to, a.Value)
				}
			}
		}
		if len(inbound) != before {
			t.Error("the handler saw a ping")
		}
	})

	t.Run("send is confirmed and delivered", func(t *testing.T) {
		raw := fmt.Sprintf(`<message from='bob@%s' to='alice@%s' type='chat' id='out-1'><body>hi alice</body></message>`, srv.ComponentDomain, srv.Domain)
		start := time.Now()
		if err := c.Send(ctx, []byte(raw)); err != nil {
			t.Fatalf("Send: %v", err)
		}
		t.Logf("Send confirmed in %v", time.Since(start))
		m := waitChat(t, aliceMsgs, "bob's message", func(m chat) bool { return m.Body == "hi alice" })
		if m.From != "bob@"+srv.ComponentDomain || m.ID != "out-1" {
			t.Errorf("alice got %+v", m)
		}
	})

	t.Run("concurrent sends are all confirmed", func(t *testing.T) {
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				raw := fmt.Sprintf(`<message from='bob@%s' to='alice@%s' type='chat' id='burst-%d'><body>burst %d</body></message>`, srv.ComponentDomain, srv.Domain, i, i)
				errs <- c.Send(ctx, []byte(raw))
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Send: %v", err)
			}
		}
		seen := map[string]bool{}
		for len(seen) < n {
			m := waitChat(t, aliceMsgs, "the burst", func(m chat) bool { return strings.HasPrefix(m.ID, "burst-") })
			if seen[m.ID] {
				t.Errorf("alice got %s twice", m.ID)
			}
			seen[m.ID] = true
		}
	})

	t.Run("handler failure returns a message error", func(t *testing.T) {
		if err := sendChat(ctx, alice, someone, "fail-1", "please fail"); err != nil {
			t.Fatal(err)
		}
		m := waitChat(t, aliceMsgs, "a message error", func(m chat) bool { return m.Type == "error" && m.ID == "fail-1" })
		if m.From != someone.String() || m.Condition != "internal-server-error" {
			t.Errorf("alice got error %+v, want from %s with internal-server-error", m, someone)
		}
	})

	t.Run("wrong secret keeps retrying without leaking it", func(t *testing.T) {
		const secret = "definitely-wrong-secret-4711"
		var logBuf syncBuffer
		logger := zerolog.New(&logBuf)
		c, err := component.New(component.Config{
			Addr: srv.ComponentAddr, Domain: srv.ComponentDomain, Secret: secret,
			MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
		}, func(context.Context, []byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		runConn(t, logger.WithContext(ctx), c)
		deadline := time.Now().Add(15 * time.Second)
		for strings.Count(logBuf.String(), "component connection failed") < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("fewer than 3 attempts; last error %q", c.LastError())
			}
			time.Sleep(20 * time.Millisecond)
		}
		last := c.LastError()
		t.Logf("last error: %s", last)
		if c.Connected() || !strings.Contains(last, "authentication failed") {
			t.Errorf("connected %v, last error %q; want not connected, authentication failed", c.Connected(), last)
		}
		if strings.Contains(last, secret) || strings.Contains(logBuf.String(), secret) {
			t.Error("the secret appears in LastError or the log")
		}
	})
}

func TestReconnectAfterRestart(t *testing.T) {
	srv := prosody.StartTest(t, prosody.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.Register(ctx, "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	c, err := component.New(component.Config{Addr: srv.ComponentAddr, Domain: srv.ComponentDomain, Secret: srv.ComponentSecret},
		func(context.Context, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	runConn(t, ctx, c)
	waitConnected(t, c, 10*time.Second)
	_, aliceMsgs := login(ctx, t, srv, "alice", "alice-pw")
	send := func(id, body string) error {
		raw := fmt.Sprintf(`<message from='bob@%s' to='alice@%s' type='chat' id='%s'><body>%s</body></message>`, srv.ComponentDomain, srv.Domain, id, body)
		return c.Send(ctx, []byte(raw))
	}
	if err := send("before", "before restart"); err != nil {
		t.Fatalf("Send before restart: %v", err)
	}
	waitChat(t, aliceMsgs, "the message before the restart", func(m chat) bool { return m.ID == "before" })

	// A Send issued while the component is disconnected waits and completes after the
	// reconnect.
	var sawDown atomic.Bool
	outage := make(chan error, 1)
	go func() {
		for c.Connected() {
			if ctx.Err() != nil {
				outage <- ctx.Err()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		sawDown.Store(true)
		outage <- send("during", "during outage")
	}()
	start := time.Now()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("prosody restarted in %v", time.Since(start))
	waitConnected(t, c, 30*time.Second)
	t.Logf("reconnected %v after the restart began", time.Since(start))
	select {
	case err := <-outage:
		if err != nil {
			t.Errorf("Send during the outage: %v", err)
		}
		t.Logf("send during the outage confirmed %v after the restart began", time.Since(start))
	case <-time.After(30 * time.Second):
		t.Fatal("Send during the outage did not complete")
	}
	if !sawDown.Load() {
		t.Error("Connected() never reported the outage")
	}

	_, aliceMsgs2 := login(ctx, t, srv, "alice", "alice-pw")
	if err := send("after", "after restart"); err != nil {
		t.Fatalf("Send after restart: %v", err)
	}
	waitChat(t, aliceMsgs2, "the message after the restart", func(m chat) bool { return m.ID == "after" })
}

type syncBuffer = syncbuf.Buffer
