package sipe2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/sip"
	"github.com/switchboard-matrix/switchboard/internal/store"
	"github.com/switchboard-matrix/switchboard/internal/store/storetest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/matrixtest"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sbcore"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipp"
	"github.com/switchboard-matrix/switchboard/internal/testpeer/sipphone"
)

// hostileMaxBytes is the bridge's message size limit in TestHostileInput: small enough
// that a phone's oversized MESSAGE, digest credentials included, stays under the 1300
// bytes sipgo sends over UDP (RFC 3261 §18.1.1), on its way through Kamailio.
const hostileMaxBytes = 512

// TestHostileInput feeds the running bridge what a broken or hostile peer sends: malformed
// requests straight to its listeners, oversized and unknown bodies through Kamailio, a
// spoofed From from an untrusted address, a flood, and a domain outside the allow list.
// Each is answered with a clear 4xx (or 503 under load) or dropped, nothing of it reaches
// Matrix, the bridge keeps serving, and the core's debug log holds no message body.
func TestHostileInput(t *testing.T) {
	cfg := bridgeConfig()
	cfg.MaxMessageBytes = hostileMaxBytes
	logs := &logSink{}
	startBridgeTuned(t, cfg, tuning{log: logs, level: "debug"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	victim := newMatrixUser(t, "hostile")
	to := sipURIOf(t, victim.UserID)
	from := "sip:hostile@" + sipDomain
	var bodies []string // every body sent in this test, none may be in the log
	marker := func(what string) string {
		b := unique("hostile-" + what + "-")
		bodies = append(bodies, b)
		return b
	}

	t.Run("malformed", func(t *testing.T) {
		huge := strings.Repeat("x", hostileMaxBytes+512) + marker("toolarge")
		overParser := strings.Repeat("y", hostileMaxBytes+20<<10) + marker("overparser")
		for _, tt := range []struct {
			name      string
			transport string
			raw       []byte
			want      int // final status code; 0: dropped without an answer
		}{
			{"garbage over UDP", "udp", []byte("\x00\x01 this is not SIP at all \xff\xfe\r\n\r\n" + marker("garbage")), 0},
			{"garbage over TCP", "tcp", []byte("GARBAGE GARBAGE\r\n\r\n" + marker("garbage")), 0},
			{"request line without SIP/2.0", "udp", rawMessage(rawReq{to: to, from: from, body: marker("noversion"), noVersion: true}), 0},
			{"missing Call-ID", "udp", rawMessage(rawReq{to: to, from: from, body: marker("nocallid"), drop: "Call-ID"}), 400},
			{"missing CSeq", "udp", rawMessage(rawReq{to: to, from: from, body: marker("nocseq"), drop: "CSeq"}), 400},
			{"missing From", "udp", rawMessage(rawReq{to: to, from: from, body: marker("nofrom"), drop: "From"}), 400},
			{"missing Call-ID over TCP", "tcp", rawMessage(rawReq{to: to, from: from, body: marker("nocallid"), drop: "Call-ID", transport: "TCP"}), 400},
			{"huge Content-Length, short body, TCP", "tcp", rawMessage(rawReq{to: to, from: from, body: marker("short"), length: 50 << 20, transport: "TCP"}), 0},
			{"body over the bridge's limit, UDP", "udp", rawMessage(rawReq{to: to, from: from, body: huge}), 413},
			{"body over the bridge's limit, TCP", "tcp", rawMessage(rawReq{to: to, from: from, body: huge, transport: "TCP"}), 413},
			{"body over the parser's limit, TCP", "tcp", rawMessage(rawReq{to: to, from: from, body: overParser, transport: "TCP"}), 0},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got := sendRawStatus(t, tt.transport, tt.raw)
				if got != tt.want {
					t.Errorf("status %d, want %d (0: dropped)", got, tt.want)
				}
			})
		}
	})

	t.Run("oversized body through Kamailio", func(t *testing.T) {
		phone := newPhone(t, "hostile")
		body := strings.Repeat("z", hostileMaxBytes+64) + marker("kam-oversized")
		code, reason, err := phone.Send(ctx, sipphone.Request{To: to, ContentType: "text/plain", Body: []byte(body)})
		if err != nil || code != 413 {
			t.Fatalf("oversized MESSAGE: %d %s %v, want 413", code, reason, err)
		}
	})

	t.Run("unknown content type", func(t *testing.T) {
		phone := newPhone(t, "hostile")
		for _, ct := range []string{"application/octet-stream", "image/png"} {
			t.Run(ct, func(t *testing.T) {
				body := marker("ctype")
				code, reason, err := phone.Send(ctx, sipphone.Request{To: to, ContentType: ct, Body: []byte(body)})
				if err != nil || code != 415 {
					t.Fatalf("through Kamailio: %d %s %v, want 415", code, reason, err)
				}
				res := exchangeUDP(t, "127.0.0.1", func(via string) []byte {
					return rawMessage(rawReq{to: to, from: from, via: via, ctype: ct, body: marker("ctype")})
				})
				if res.code != 415 || !strings.Contains(res.header("Accept"), "text/plain") {
					t.Errorf("direct: %d, Accept %q; want 415 with an Accept header listing text/plain", res.code, res.header("Accept"))
				}
			})
		}
	})

	t.Run("spoofed From from an untrusted address", func(t *testing.T) {
		res := exchangeUDP(t, "127.0.0.2", func(via string) []byte {
			return rawMessage(rawReq{to: to, from: "sip:bob@" + sipDomain, via: via, body: marker("spoofed")})
		})
		if res.code != 403 {
			t.Errorf("status %d, want 403", res.code)
		}
	})

	t.Run("nothing reached Matrix", func(t *testing.T) {
		resp, err := matrixtest.InitialSync(ctx, victim)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.Rooms.Invite) + len(resp.Rooms.Join); n != 0 {
			t.Errorf("the test user is in %d rooms after hostile input only, want none", n)
		}
	})

	t.Run("a normal MESSAGE afterwards", func(t *testing.T) {
		for _, tr := range []string{"udp", "tcp"} {
			body := unique("normal over " + tr + " ")
			tp := strings.ToUpper(tr)
			if got := sendRawStatus(t, tr, rawMessage(rawReq{to: to, from: from, body: body, transport: tp})); got != 202 {
				t.Fatalf("normal MESSAGE over %s: %d, want 202", tr, got)
			}
			if tr == "udp" {
				matrixtest.AcceptInvite(t, victim)
			}
		}
		room := dmOf(t, victim)
		ghost := ghostOf(t, "hostile")
		matrixtest.WaitFor(t, 30*time.Second, "both normal messages", func() (bool, error) {
			evts, err := matrixtest.RoomMessages(ctx, victim, room)
			if err != nil {
				return false, err
			}
			got := matrixtest.Bodies(evts, ghost)
			for _, b := range got {
				if !strings.HasPrefix(b, "normal over ") {
					return false, fmt.Errorf("unexpected message in the room: %.60q", b)
				}
			}
			return len(got) == 2, fmt.Errorf("%d messages", len(got))
		})
	})

	t.Run("flood", func(t *testing.T) {
		sipp.Skip(t)
		reader := newMatrixUser(t, "flood")
		fto := sipURIOf(t, reader.UserID)
		body := marker("flood")
		st, err := sipp.SendMessages(ctx, sipp.Options{Target: bridgeAddr(), Transport: sipp.UDP,
			From: "sip:flood@" + sipDomain, To: fto, Count: 300, Rate: 1000, Body: body,
			CallIDPrefix: unique("flood-"), Timeout: 60 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for code, n := range st.Codes {
			if (code < 200 || code >= 300) && code != 503 {
				t.Errorf("%d answers %d, want only 2xx and 503", n, code)
			}
		}
		// Accepted are the calls with a 2xx answer: under load SIPp retransmits over UDP, and
		// a retransmission gets an answer of its own (the same message, queued once).
		accepted := 0
		for _, c := range st.Calls {
			for _, code := range c.Codes {
				if code >= 200 && code < 300 {
					accepted++
					break
				}
			}
		}
		t.Logf("flood: %d calls, answers %v, %d timed out", len(st.Calls), st.Codes, st.TimedOut)
		if len(st.Calls) != 300 || st.TimedOut != 0 {
			t.Errorf("%d calls, %d without an answer; want 300, all answered", len(st.Calls), st.TimedOut)
		}
		if accepted == 0 {
			t.Fatal("no MESSAGE of the flood was accepted")
		}
		room := matrixtest.AcceptInvite(t, reader)
		// A normal message after the flood: the bridge still serves, and once it is in the
		// room every accepted message of the flood (queued before it) is too.
		last := unique("after the flood ")
		if got := sendRawStatus(t, "udp", rawMessage(rawReq{to: fto, from: "sip:flood@" + sipDomain, body: last})); got != 202 {
			t.Fatalf("MESSAGE after the flood: %d, want 202", got)
		}
		ghost := ghostOf(t, "flood")
		matrixtest.WaitEvent(t, reader, room, "the message after the flood", bodyIs(ghost, last))
		var n int
		matrixtest.WaitFor(t, 60*time.Second, "every accepted flood message", func() (bool, error) {
			evts, err := matrixtest.RoomMessages(ctx, reader, room)
			if err != nil {
				return false, err
			}
			n = countBody(evts, body)
			return n >= accepted, fmt.Errorf("%d of %d in the room", n, accepted)
		})
		if n != accepted {
			t.Errorf("the flood's message is in the room %d times, want %d (once per call answered 2xx)", n, accepted)
		}
	})

	t.Run("domain outside the allow list", func(t *testing.T) {
		res := exchangeUDP(t, "127.0.0.1", func(via string) []byte {
			return rawMessage(rawReq{to: to, from: "sip:x@evil.test", via: via, body: marker("evil")})
		})
		if res.code != 403 {
			t.Errorf("status %d, want 403", res.code)
		}
	})

	t.Run("no message body in the debug log", func(t *testing.T) {
		log := logs.String()
		if log == "" {
			t.Fatal("the core logged nothing")
		}
		for _, b := range bodies {
			if strings.Contains(log, b) {
				t.Errorf("the core's log at debug holds the body marker %s", b)
			}
		}
	})
}

// tuning is what startBridgeTuned sets beyond the bridge's config.
type tuning struct {
	log   *logSink            // may be nil: receives the core's log too
	level string              // zerolog level name; default the package's logLevel()
	retry appservice.Retry    // zero: sbcore's default
	st    *store.Store        // may be nil: a new SQLite store
	scan  appservice.Scanning // zero: scanning off
}

// startBridgeTuned is startBridgeWith with the core's log, log level, retries, store and
// virus scanning chosen.
func startBridgeTuned(t testing.TB, cfg sip.Config, o tuning) *running {
	t.Helper()
	st := o.st
	if st == nil {
		st = storetest.Open(t, store.SQLite)
	}
	bridge, err := sip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	opts := sbcore.Options{
		Registration: onHS.Reg, HomeserverURL: onHS.URL, Domain: domain, ASPort: onHS.ASPort, Store: st,
		Modules: []appservice.Module{bridge}, Version: "sipe2e", LogLevel: logLevel(), Retry: o.retry,
		Scanning: o.scan,
	}
	if o.log != nil {
		opts.Log = o.log
	}
	if o.level != "" {
		if l, err := zerolog.ParseLevel(o.level); err == nil {
			opts.LogLevel = l
		}
	}
	core, _ := sbcore.Start(t, opts)
	select {
	case <-bridge.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("the bridge's SIP listeners did not start")
	}
	return &running{core: core, bridge: bridge, st: st}
}

// logSink collects the core's log.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// dmOf is the only room the user is joined to.
func dmOf(t testing.TB, cli *mautrix.Client) id.RoomID {
	t.Helper()
	rooms, err := cli.JoinedRooms(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rooms.JoinedRooms) != 1 {
		t.Fatalf("%s is in %d rooms, want 1", cli.UserID, len(rooms.JoinedRooms))
	}
	return rooms.JoinedRooms[0]
}

// rawReq describes a MESSAGE written by hand, correct unless told otherwise.
type rawReq struct {
	to, from  string
	via       string // sent-by of the Via; default 127.0.0.1:5060 (answers go to the source: rport)
	transport string // of the Via; default UDP
	ctype     string // default text/plain
	body      string
	drop      string // a header left out
	length    int    // Content-Length when not the body's length
	noVersion bool   // a request line without SIP/2.0
}

func rawMessage(r rawReq) []byte {
	if r.via == "" {
		r.via = "127.0.0.1:5060"
	}
	if r.transport == "" {
		r.transport = "UDP"
	}
	if r.ctype == "" {
		r.ctype = "text/plain"
	}
	if r.length == 0 {
		r.length = len(r.body)
	}
	var b strings.Builder
	version := " SIP/2.0"
	if r.noVersion {
		version = ""
	}
	fmt.Fprintf(&b, "MESSAGE %s%s\r\n", r.to, version)
	for _, h := range [][2]string{
		{"Via", fmt.Sprintf("SIP/2.0/%s %s;branch=z9hG4bK%s;rport", r.transport, r.via, unique(""))},
		{"Max-Forwards", "70"},
		{"From", fmt.Sprintf("<%s>;tag=%s", r.from, unique(""))},
		{"To", "<" + r.to + ">"},
		{"Call-ID", unique("raw-")},
		{"CSeq", "1 MESSAGE"},
		{"Content-Type", r.ctype},
		{"Content-Length", strconv.Itoa(r.length)},
	} {
		if h[0] != r.drop {
			fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
		}
	}
	b.WriteString("\r\n")
	b.WriteString(r.body)
	return []byte(b.String())
}

// sendRawStatus sends raw to the bridge with sipp.SendRaw and returns the final status
// code, or 0 when none came within a few seconds (dropped).
func sendRawStatus(t testing.TB, transport string, raw []byte) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	line, err := sipp.SendRaw(ctx, transport, bridgeAddr(), raw)
	if errors.Is(err, sipp.ErrNoAnswer) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	code, err := strconv.Atoi(strings.Fields(line)[1])
	if err != nil {
		t.Fatalf("status line %q: %v", line, err)
	}
	return code
}

// rawAnswer is the final answer to a request exchangeUDP sent.
type rawAnswer struct {
	code    int
	headers map[string]string // canonical lower-case names; the first of each
}

func (a rawAnswer) header(name string) string { return a.headers[strings.ToLower(name)] }

// exchangeUDP sends the request build makes (given the socket's host:port for its Via) from
// a UDP socket bound to localIP to the bridge and returns the final answer; Linux routes
// all of 127/8 to the loopback interface, so 127.0.0.2 is another source address.
func exchangeUDP(t testing.TB, localIP string, build func(via string) []byte) rawAnswer {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", bridgeAddr())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(localIP)}, raddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(build(conn.LocalAddr().String())); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no answer from the bridge: %v", err)
		}
		head, _, _ := strings.Cut(string(buf[:n]), "\r\n\r\n")
		lines := strings.Split(head, "\r\n")
		f := strings.Fields(lines[0])
		if len(f) < 2 || f[0] != "SIP/2.0" {
			t.Fatalf("not a SIP answer: %q", lines[0])
		}
		code, err := strconv.Atoi(f[1])
		if err != nil {
			t.Fatalf("status line %q: %v", lines[0], err)
		}
		if code < 200 {
			continue
		}
		a := rawAnswer{code: code, headers: map[string]string{}}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, ":"); ok {
				k = strings.ToLower(strings.TrimSpace(k))
				if _, seen := a.headers[k]; !seen {
					a.headers[k] = strings.TrimSpace(v)
				}
			}
		}
		return a
	}
}
