package component_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/component"
)

// holdServer is a minimal XEP-0114 server: it accepts any handshake, reports the id of
// each ping it reads on pings and answers a ping only when the test says so.
type holdServer struct {
	ln    net.Listener
	pings chan string // ids of the pings read, in order
	pong  chan string // ids to answer
}

func newHoldServer(t *testing.T) *holdServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &holdServer{ln: ln, pings: make(chan string, 16), pong: make(chan string, 16)}
	t.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

func (s *holdServer) serve() {
	nc, err := s.ln.Accept()
	if err != nil {
		return
	}
	defer nc.Close()
	go func() {
		for id := range s.pong {
			fmt.Fprintf(nc, `<iq type='result' id='%s' from='localhost' to='bridge.localhost'/>`, id)
		}
	}()
	d := xml.NewDecoder(nc)
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1: // the stream header
				fmt.Fprint(nc, `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='bridge.localhost'>`)
			case depth == 2 && tok.Name.Local == "handshake":
				if err := d.Skip(); err != nil {
					return
				}
				depth--
				fmt.Fprint(nc, `<handshake/>`)
			case depth == 2 && tok.Name.Local == "iq":
				var id string
				for _, a := range tok.Attr {
					if a.Name.Local == "id" {
						id = a.Value
					}
				}
				if err := d.Skip(); err != nil {
					return
				}
				depth--
				s.pings <- id
			case depth == 2:
				if err := d.Skip(); err != nil {
					return
				}
				depth--
			}
		case xml.EndElement:
			depth--
		}
	}
}

// TestSendDoesNotWaitForAnEarlierPing: a stanza written while the ping confirming an
// earlier one is unanswered gets its own ping at once and is confirmed by its answer,
// without waiting for the earlier answer and another round trip (a crash in that wait
// would make the bridge send the stanza again after restart).
func TestSendDoesNotWaitForAnEarlierPing(t *testing.T) {
	s := newHoldServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := component.New(component.Config{
		Addr: s.ln.Addr().String(), Domain: "bridge.localhost", Secret: "secret",
	}, func(context.Context, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	runConn(t, ctx, c)
	waitConnected(t, c, 10*time.Second)

	send := func(id string) <-chan error {
		done := make(chan error, 1)
		go func() {
			done <- c.Send(ctx, []byte(fmt.Sprintf(`<message from='bob@bridge.localhost' to='alice@localhost' type='chat' id='%s'><body>x</body></message>`, id)))
		}()
		return done
	}
	nextPing := func() string {
		t.Helper()
		select {
		case id := <-s.pings:
			if !strings.HasPrefix(id, "sb-confirm-") {
				t.Fatalf("iq %q is not a confirming ping", id)
			}
			return id
		case <-time.After(5 * time.Second):
			t.Fatal("no confirming ping")
		}
		return ""
	}

	first := send("m-1")
	ping1 := nextPing() // held: not answered yet
	second := send("m-2")
	ping2 := nextPing() // must come without the answer to ping1
	s.pong <- ping2
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("second Send: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second Send waited for the first ping's answer")
	}
	s.pong <- ping1
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("first Send: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first Send was not confirmed by its ping's answer")
	}
}
