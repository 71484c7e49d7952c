package sipua

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/internal/syncbuf"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	// Short RFC 3261 timers: a transaction without answer ends after
	// 64*T1 = 3.2 s instead of 32 s.
	sip.SetTimers(50*time.Millisecond, 200*time.Millisecond, 250*time.Millisecond)
	os.Exit(m.Run())
}

type syncBuffer = syncbuf.Buffer

// testCtx returns a context with a debug-level zerolog logger writing to buf.
func testCtx(t *testing.T) (context.Context, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	log := zerolog.New(buf).Level(zerolog.DebugLevel)
	ctx, cancel := context.WithCancel(log.WithContext(context.Background()))
	t.Cleanup(cancel)
	return ctx, buf
}

// startUA runs a UA until the test ends and waits until it is bound.
func startUA(t *testing.T, ctx context.Context, cfg Config, h Handler) *UA {
	t.Helper()
	u, err := New(cfg, h)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-u.Ready():
	case err := <-done:
		t.Fatalf("Run ended before ready: %v", err)
	}
	return u
}

// receiverConfig is a bridge-side UA on loopback trusting 127.0.0.1.
func receiverConfig(listen ...Listener) Config {
	return Config{
		Domain: "bridge.test",
		Listen: listen,
		Proxy:  "sip:127.0.0.1:9",
	}
}

// okHandler records requests and answers 200.
type okHandler struct {
	mu   sync.Mutex
	reqs []*Request
}

func (h *okHandler) ServeSIP(_ context.Context, r *Request) Response {
	h.mu.Lock()
	h.reqs = append(h.reqs, r)
	h.mu.Unlock()
	return Response{Code: 200, Headers: []Header{{"X-Test", "yes"}}}
}

func (h *okHandler) last() *Request {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.reqs) == 0 {
		return nil
	}
	return h.reqs[len(h.reqs)-1]
}

// rawClient sends hand-written requests over UDP.
type rawClient struct {
	t    *testing.T
	conn net.PacketConn
	to   net.Addr
}

func newRawClient(t *testing.T, to string) *rawClient {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	addr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, conn: conn, to: addr}
}

var branchSeq struct {
	sync.Mutex
	n int
}

// request formats a request; headers replace the defaults by name ("" value drops one).
func (c *rawClient) request(method, ruri string, headers map[string]string, body string) string {
	branchSeq.Lock()
	branchSeq.n++
	n := branchSeq.n
	branchSeq.Unlock()
	def := []struct{ k, v string }{
		{"Via", fmt.Sprintf("SIP/2.0/UDP %s;branch=z9hG4bK-raw-%d", c.conn.LocalAddr(), n)},
		{"From", "<sip:alice@example.org>;tag=ft1"},
		{"To", "<" + ruri + ">"},
		{"Call-ID", fmt.Sprintf("raw-call-%d", n)},
		{"CSeq", "1 " + method},
		{"Max-Forwards", "70"},
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	for _, h := range def {
		v := h.v
		if o, ok := headers[h.k]; ok {
			v = o
		}
		if v != "" {
			fmt.Fprintf(&b, "%s: %s\r\n", h.k, v)
		}
	}
	for k, v := range headers {
		switch k {
		case "Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards":
		default:
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if body != "" {
		b.WriteString("Content-Type: text/plain\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// roundTrip sends raw and returns the first final response.
func (c *rawClient) roundTrip(raw string) *sip.Response {
	c.t.Helper()
	if _, err := c.conn.WriteTo([]byte(raw), c.to); err != nil {
		c.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	// The deadline only guards against a hung test.
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			c.t.Fatalf("no response: %v", err)
		}
		msg, err := sip.ParseMessage(buf[:n])
		if err != nil {
			c.t.Fatalf("parse response: %v", err)
		}
		res, ok := msg.(*sip.Response)
		if !ok || res.IsProvisional() {
			continue
		}
		return res
	}
}

// testPKI writes a CA and a server certificate for 127.0.0.1 to dir.
func testPKI(t *testing.T, dir, name string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, b []byte) string {
		p := filepath.Join(dir, name+"-"+file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", der), write("key.pem", "EC PRIVATE KEY", keyDER)
}

// waitFor polls cond (for conditions only observable from outside, e.g.
// what a peer received) with a generous bound against hung tests.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
