package muc

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewConfig(t *testing.T) {
	h := make(recorder, 1)
	ok := Config{Address: "127.0.0.1:5222", JID: "w@example.org", Password: "pw"}
	tests := []struct {
		name    string
		edit    func(*Config)
		domain  string
		wantErr string // "" for success
	}{
		{"defaults", func(*Config) {}, "conference.example.org", ""},
		{"none on loopback name", func(c *Config) { c.TLS, c.Address = TLSNone, "localhost:5222" }, "muc.example.org", ""},
		{"none on IPv6 loopback", func(c *Config) { c.TLS, c.Address = TLSNone, "[::1]:5222" }, "muc.example.org", ""},
		{"none elsewhere", func(c *Config) { c.TLS, c.Address = TLSNone, "xmpp.example.org:5222" }, "muc.example.org", `tls "none" is accepted only for a loopback address`},
		{"none on a public IP", func(c *Config) { c.TLS, c.Address = TLSNone, "192.0.2.1:5222" }, "muc.example.org", "loopback"},
		{"unknown tls", func(c *Config) { c.TLS = "ssl" }, "muc.example.org", `tls "ssl" is not one of`},
		{"missing fields", func(c *Config) { *c = Config{} }, "muc.example.org", "jid is required; password is required; address is required"},
		{"full JID", func(c *Config) { c.JID = "w@example.org/res" }, "muc.example.org", "not a bare account JID"},
		{"domain JID", func(c *Config) { c.JID = "example.org" }, "muc.example.org", "not a bare account JID"},
		{"address without port", func(c *Config) { c.Address = "example.org" }, "muc.example.org", "not host:port"},
		{"bad MUC domain", func(c *Config) {}, "room@muc.example.org", "is not a domain"},
		{"no MUC domain", func(c *Config) {}, "", "is not a domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			w, err := New(cfg, tt.domain, h)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if w.cfg.Nick != DefaultNick || len(w.ignore) != 1 || !w.ignored("FOCUS") {
					t.Errorf("defaults not applied: %+v", w.cfg)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want ErrConfig with %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "pw") && cfg.Password == "pw" {
				t.Errorf("the password is in the error: %v", err)
			}
		})
	}
	if _, err := New(ok, "muc.example.org", nil); !errors.Is(err, ErrConfig) {
		t.Errorf("nil handler: %v", err)
	}
}

// starttlsServer accepts clients, offers required StartTLS and does the TLS handshake
// with a self-signed certificate for example.org; it returns the address and the
// certificate's PEM. With plainOnly it offers SASL PLAIN without StartTLS instead (a
// downgrade) and sends on sawAuth whether the client then tried to authenticate.
func starttlsServer(t *testing.T, plainOnly bool, sawAuth chan<- bool) (addr string, certPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.org"}, DNSNames: []string{"example.org"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				br := bufio.NewReader(c)
				if readUntil(br, "<stream:stream", ">") != nil {
					return
				}
				header := `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='example.org' version='1.0'>`
				if plainOnly {
					_, _ = c.Write([]byte(header + `<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`))
					// mellium tries StartTLS even when not offered (RFC 7590); a server
					// without it fails that, and the client must not then authenticate.
					var seen strings.Builder
					for !strings.Contains(seen.String(), "<auth") && !strings.Contains(seen.String(), "<starttls") {
						b, err := br.ReadByte()
						if err != nil {
							break
						}
						seen.WriteByte(b)
					}
					if strings.Contains(seen.String(), "<starttls") {
						_, _ = c.Write([]byte(`<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>`))
						rest, _ := io.ReadAll(br)
						seen.Write(rest)
					}
					sawAuth <- strings.Contains(seen.String(), "<auth")
					return
				}
				_, _ = c.Write([]byte(header + `<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>`))
				if readUntil(br, "<starttls", ">") != nil {
					return
				}
				_, _ = c.Write([]byte(`<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`))
				tc := tls.Server(&bufConn{Conn: c, r: br}, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
				_ = tc.Handshake()
			}()
		}
	}()
	return ln.Addr().String(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// readUntil reads br past the first occurrence of start followed by end.
func readUntil(br *bufio.Reader, start, end string) error {
	var seen strings.Builder
	for {
		b, err := br.ReadByte()
		if err != nil {
			return err
		}
		seen.WriteByte(b)
		s := seen.String()
		if i := strings.Index(s, start); i >= 0 && strings.HasSuffix(s[i:], end) {
			return nil
		}
	}
}

// bufConn reads through a bufio.Reader that may hold bytes already.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func TestStartTLSVerifies(t *testing.T) {
	addr, certPEM := starttlsServer(t, false, nil)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		cfg        Config
		wantTLSErr bool
	}{
		{"untrusted certificate refused", Config{}, true},
		{"wrong server name refused", Config{CAFile: caFile, ServerName: "other.example.org"}, true},
		{"CA file trusted", Config{CAFile: caFile}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Address, cfg.JID, cfg.Password = addr, "w@example.org", "pw"
			w, err := New(cfg, "muc.example.org", make(recorder, 1))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, _, err = w.dial(ctx)
			if err == nil {
				t.Fatal("dial succeeded against a server that does not log in")
			}
			t.Logf("dial: %v", err)
			if errors.Is(err, ErrTLS) != tt.wantTLSErr {
				t.Fatalf("err = %v; want ErrTLS: %v", err, tt.wantTLSErr)
			}
		})
	}
}

func TestStartTLSNotOffered(t *testing.T) {
	sawAuth := make(chan bool, 1)
	addr, _ := starttlsServer(t, true, sawAuth)
	w, err := New(Config{Address: addr, JID: "w@example.org", Password: "pw"}, "muc.example.org", make(recorder, 1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := w.dial(ctx); err == nil {
		t.Fatal("logged in without TLS")
	} else {
		t.Logf("dial: %v", err)
	}
	if <-sawAuth {
		t.Fatal("the client authenticated on a stream without TLS")
	}
}

func TestLimitConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	lc := &limitConn{Conn: a}
	lc.refill()
	go func() {
		chunk := make([]byte, 32<<10)
		for {
			if _, err := b.Write(chunk); err != nil {
				return
			}
		}
	}()
	read := func(n int) error {
		buf := make([]byte, 4<<10)
		for n > 0 {
			m, err := lc.Read(buf[:min(len(buf), n)])
			if err != nil {
				return err
			}
			n -= m
		}
		return nil
	}
	if err := read(connBudget); err != nil {
		t.Fatalf("reading the budget: %v", err)
	}
	if err := read(1); !errors.Is(err, errTooLarge) {
		t.Fatalf("reading past the budget: %v, want errTooLarge", err)
	}
	lc.refill()
	if err := read(connBudget); err != nil {
		t.Fatalf("reading after a refill: %v", err)
	}
}
