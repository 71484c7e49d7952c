package sipua

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// A huge Content-Length is refused by sipgo's stream parser before it
// allocates the body: the connection is closed.
func TestTCPHugeContentLengthClosesConnection(t *testing.T) {
	ctx, _ := testCtx(t)
	h := &okHandler{}
	recv := startUA(t, ctx, receiverConfig(Listener{Transport: "tcp", Addr: "127.0.0.1:0"}), h)
	c, err := net.Dial("tcp", recv.Addrs()["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "MESSAGE sip:a@bridge.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK-huge\r\n"+
		"From: <sip:a@example.org>;tag=1\r\nTo: <sip:a@bridge.test>\r\nCall-ID: huge\r\nCSeq: 1 MESSAGE\r\n"+
		"Content-Length: 4000000000\r\n\r\nabc")
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // guard only
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != 0 {
		t.Fatalf("read %d bytes, err %v; want the connection closed without answer", n, err)
	}
	if h.last() != nil {
		t.Error("handler called")
	}
}

// A header section that never ends is dropped once it exceeds the
// parser's limit (MaxBodyBytes + 16 KiB).
func TestTCPEndlessHeadersClosesConnection(t *testing.T) {
	ctx, _ := testCtx(t)
	cfg := receiverConfig(Listener{Transport: "tcp", Addr: "127.0.0.1:0"})
	cfg.MaxBodyBytes = 1024
	recv := startUA(t, ctx, cfg, &okHandler{})
	c, err := net.Dial("tcp", recv.Addrs()["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "MESSAGE sip:a@bridge.test SIP/2.0\r\n")
	line := "X-Filler: " + strings.Repeat("y", 1000) + "\r\n"
	var werr error
	for i := 0; i < 200 && werr == nil; i++ { // 200 KB, far over the 17 KiB limit
		_, werr = w.WriteString(line)
		if werr == nil {
			werr = w.Flush()
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // guard only
	if werr == nil || isReset(werr) || strings.Contains(werr.Error(), "broken pipe") {
		if n, err := io.Copy(io.Discard, c); (err != nil && !isReset(err)) || n != 0 {
			t.Fatalf("read %d bytes, err %v; want the connection closed", n, err)
		}
		return
	}
	t.Fatalf("write: %v", werr)
}

// Inbound TCP connections over MaxConnections are closed at accept; a
// closed connection frees its slot.
func TestTCPConnectionLimit(t *testing.T) {
	ctx, _ := testCtx(t)
	cfg := receiverConfig(Listener{Transport: "tcp", Addr: "127.0.0.1:0"})
	cfg.MaxConnections = 1
	recv := startUA(t, ctx, cfg, &okHandler{})
	addr := recv.Addrs()["tcp"]
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !optionsOK(addr, first) {
		t.Fatal("first connection not served")
	}
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(10 * time.Second)) // guard only
	if _, err := second.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Fatalf("connection over the limit: %v, want it closed", err)
	}
	first.Close()
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		return optionsOK(addr, c)
	})
}

// A silent connection is closed after TCPIdleTimeout.
func TestTCPIdleTimeout(t *testing.T) {
	ctx, _ := testCtx(t)
	cfg := receiverConfig(Listener{Transport: "tcp", Addr: "127.0.0.1:0"})
	cfg.TCPIdleTimeout = 100 * time.Millisecond
	recv := startUA(t, ctx, cfg, &okHandler{})
	c, err := net.Dial("tcp", recv.Addrs()["tcp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second)) // guard only
	if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Fatalf("idle connection: %v, want it closed by the UA", err)
	}
}

// optionsOK sends an OPTIONS on c and reports whether a 200 came back.
func optionsOK(addr string, c net.Conn) bool {
	fmt.Fprintf(c, "OPTIONS sip:bridge.test SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-opt-%s\r\n"+
		"From: <sip:a@example.org>;tag=1\r\nTo: <sip:bridge.test>\r\nCall-ID: opt-%s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		c.LocalAddr(), c.LocalAddr(), c.LocalAddr())
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second)) // guard only
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.HasPrefix(line, "SIP/2.0 200")
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "reset")
}
