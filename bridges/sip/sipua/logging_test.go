package sipua

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestLogsNeverCarryBodies(t *testing.T) {
	const secret = "SECRET-BODY-4711"
	ctx, logs := testCtx(t) // debug level
	h := &okHandler{}
	recv := startUA(t, ctx, receiverConfig(
		Listener{Transport: "udp", Addr: "127.0.0.1:0"},
		Listener{Transport: "tcp", Addr: "127.0.0.1:0"},
	), h)
	send := startUA(t, ctx, Config{
		Domain: "sender.test",
		Listen: []Listener{{Transport: "udp", Addr: "127.0.0.1:0"}},
		Proxy:  "sip:" + recv.Addrs()["udp"],
	}, &okHandler{})
	if res, err := sendMessage(ctx, send, secret); err != nil || res.Code != 200 {
		t.Fatalf("Send = %+v, %v", res, err)
	}
	// Garbage with the secret makes sipgo log "failed to parse" with the raw data.
	c := newRawClient(t, recv.Addrs()["udp"])
	if _, err := c.conn.WriteTo([]byte("GARBAGE "+secret+"\r\n\r\n"), c.to); err != nil {
		t.Fatal(err)
	}
	tc, err := net.Dial("tcp", recv.Addrs()["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(tc, "MESSAGE sip:a@bridge.test SIP/2.0\r\nVia: nonsense %s\r\nContent-Length: 3\r\n\r\nabc", secret)
	_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(io.Discard, tc) // sipgo closes the connection on the parse error
	tc.Close()
	// The OPTIONS answer proves the UDP garbage was processed before.
	if res := c.roundTrip(c.request("OPTIONS", "sip:bridge.test", nil, "")); res.StatusCode != 200 {
		t.Fatalf("OPTIONS: %d", res.StatusCode)
	}
	out := logs.String()
	if strings.Contains(out, secret) {
		t.Fatalf("the body appears in the log:\n%s", out)
	}
	if !strings.Contains(out, "failed to parse") {
		t.Errorf("sipgo's parse error was not forwarded (without data):\n%s", out)
	}
}

func TestSlogHandlerFilters(t *testing.T) {
	var buf syncBuffer
	log := zerolog.New(&buf).Level(zerolog.TraceLevel)
	sl := newSlogLogger(&log).With("caller", "Transport<UDP>")
	sl.Debug("debug record", "msg", "INVITE sip:x SIP/2.0 body")
	sl.Info("info record")
	sl.Error("failed to parse", "data", "MESSAGE ... body-secret", "raddr", "127.0.0.1:5060")
	sl.Error("Failed to close listener", "error", "boom")
	sl.WithGroup("g").Warn("grouped", "raddr", "hidden-in-group")
	sl.Warn("multi\nline message with body-secret")
	out := buf.String()
	for _, bad := range []string{"debug record", "info record", "body-secret", "hidden-in-group"} {
		if strings.Contains(out, bad) {
			t.Errorf("log contains %q:\n%s", bad, out)
		}
	}
	for _, good := range []string{`"level":"error","source":"sipgo","sipgo_caller":"Transport<UDP>","message":"Failed to close listener"`,
		`"level":"debug","source":"sipgo","sipgo_caller":"Transport<UDP>","sipgo_raddr":"127.0.0.1:5060","message":"failed to parse"`, `"sipgo_raddr":"127.0.0.1:5060"`, `"sipgo_caller":"Transport<UDP>"`, "grouped", "withheld"} {
		if !strings.Contains(out, good) {
			t.Errorf("log lacks %q:\n%s", good, out)
		}
	}
	if sl.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("info is enabled")
	}
}
