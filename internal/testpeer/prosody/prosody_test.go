package prosody_test

import (
	"context"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/switchboard-matrix/switchboard/internal/testpeer/prosody"
)

// received is a message as the component sees it.
type received struct {
	From, To string
	Body     string
}

// connectComponent completes the XEP-0114 handshake with srv and serves the stream in the
// background, delivering chat messages on msgs. done closes when the stream ends.
func connectComponent(ctx context.Context, t *testing.T, srv *prosody.Server, msgs chan<- received) (sess *xmpp.Session, done <-chan error) {
	t.Helper()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", srv.ComponentAddr)
	if err != nil {
		t.Fatalf("dial component port: %v", err)
	}
	sess, err = component.NewSession(ctx, jid.MustParse(srv.ComponentDomain), []byte(srv.ComponentSecret), conn)
	if err != nil {
		conn.Close()
		t.Fatalf("component handshake: %v", err)
	}
	ch := make(chan error, 1)
	go func() {
		ch <- sess.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			var m struct {
				From string `xml:"from,attr"`
				To   string `xml:"to,attr"`
				Body string `xml:"body"`
			}
			// r continues after start, so the decoder is given start again.
			d := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(*start), r))
			if err := d.Decode(&m); err != nil {
				return err
			}
			select {
			case msgs <- received(m):
			default:
			}
			return nil
		}))
	}()
	t.Cleanup(func() { sess.Close() })
	return sess, ch
}

// login logs user in and serves the session until the test ends.
func login(ctx context.Context, t *testing.T, srv *prosody.Server, user, password string) *xmpp.Session {
	t.Helper()
	sess, err := srv.DialClient(ctx, user, password)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = sess.Serve(nil) }()
	t.Cleanup(func() { sess.Close() })
	return sess
}

func sendChat(ctx context.Context, sess *xmpp.Session, to jid.JID, body string) error {
	msg := stanza.Message{To: to, Type: stanza.ChatMessage}
	return sess.Send(ctx, msg.Wrap(xmlstream.Wrap(xmlstream.Token(xml.CharData(body)), xml.StartElement{Name: xml.Name{Local: "body"}})))
}

func waitMessage(t *testing.T, msgs <-chan received, done <-chan error, body string) received {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-msgs:
			if m.Body == body {
				return m
			}
		case err := <-done:
			t.Fatalf("component stream ended before the message %q arrived: %v", body, err)
		case <-timeout:
			t.Fatalf("component did not receive the message %q", body)
		}
	}
}

func TestProsody(t *testing.T) {
	srv := prosody.StartTest(t, prosody.Options{EnableUpload: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if err := srv.Register(ctx, "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	msgs := make(chan received, 16)
	_, compDone := connectComponent(ctx, t, srv, msgs)
	alice := login(ctx, t, srv, "alice", "alice-pw")

	someone := jid.MustParse("someone@" + srv.ComponentDomain)
	if err := sendChat(ctx, alice, someone, "hello bridge"); err != nil {
		t.Fatalf("send: %v", err)
	}
	m := waitMessage(t, msgs, compDone, "hello bridge")
	if from, err := jid.Parse(m.From); err != nil || from.Bare().String() != "alice@"+srv.Domain || m.To != someone.String() {
		t.Errorf("got message from %q to %q, want from alice@%s/… to %s", m.From, m.To, srv.Domain, someone)
	}

	t.Run("wrong secret is refused", func(t *testing.T) {
		conn, err := net.Dial("tcp", srv.ComponentAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := component.NewSession(ctx, jid.MustParse(srv.ComponentDomain), []byte("wrong"), conn); err == nil {
			t.Error("handshake with a wrong secret succeeded")
		}
	})

	t.Run("upload service answers", func(t *testing.T) {
		resp, err := http.Get(srv.UploadURL + "/file_share/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("GET upload base: %s", resp.Status)
		}
	})

	start := time.Now()
	if err := srv.Restart(ctx); err != nil {
		t.Fatalf("restart: %v", err)
	}
	t.Logf("restart took %v", time.Since(start))
	select {
	case err := <-compDone:
		t.Logf("old component stream ended with %v", err)
	case <-time.After(10 * time.Second):
		t.Error("old component stream still open after restart")
	}

	// Same ports, secret and accounts after the restart.
	msgs2 := make(chan received, 16)
	_, compDone2 := connectComponent(ctx, t, srv, msgs2)
	alice2 := login(ctx, t, srv, "alice", "alice-pw")
	if err := sendChat(ctx, alice2, someone, "after restart"); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	waitMessage(t, msgs2, compDone2, "after restart")
}

func TestStopIsIdempotent(t *testing.T) {
	if err := prosody.Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := prosody.Start(ctx, prosody.Options{Domain: "example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if srv.MUCDomain != "conference.example.test" || srv.ComponentDomain != "matrix.example.test" || srv.ComponentSecret == "" {
		t.Errorf("defaults: MUC %q, component %q, secret set %v", srv.MUCDomain, srv.ComponentDomain, srv.ComponentSecret != "")
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", srv.C2SAddr, time.Second); err == nil {
		conn.Close()
		t.Error("c2s port still open after Stop")
	}
	if err := srv.Restart(ctx); err == nil {
		t.Error("Restart after Stop succeeded")
	}
}
