package email

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-smtp"
	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email/compose"
	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

// TestFitContent reproduces issue 10 item 6: a mail with about 40 KB of text and its
// HTML made an event over Matrix's 64 KiB limit, which the homeserver refused. Every
// content now fits maxContentBytes, and what was shortened is reported for the files.
func TestFitContent(t *testing.T) {
	long := strings.Repeat("Zeile mit Umlauten äöü, ganz gewöhnlich.\n", 1000) // ~45 KB
	tests := []struct {
		name             string
		body, html       string
		force            bool
		wantHTMLDropped  bool
		wantBodyCut      bool
		wantBodyUnchange bool
	}{
		{"small stays as it is", "Hallo", "<b>Hallo</b>", false, false, false, true},
		{"text and html over the limit: html dropped, text kept", long, "<p>" + strings.ReplaceAll(long, "\n", "<br>") + "</p>", false, true, false, false},
		{"text alone over the limit: cut", long + long + long, "", false, false, true, false},
		{"forced: html dropped although it fits", "Hallo", "<b>Hallo</b>", true, true, false, false},
		{"escapes count: control characters", strings.Repeat("\x01", 20000), "", false, false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &event.MessageEventContent{MsgType: event.MsgText, Body: tt.body}
			if tt.html != "" {
				c.Format, c.FormattedBody = event.FormatHTML, tt.html
			}
			dropped, cut := fitContent(c, maxContentBytes, trimNoteMail, tt.force)
			if size := contentSize(c); size > maxContentBytes {
				t.Errorf("content is %d bytes, want at most %d", size, maxContentBytes)
			}
			if dropped != tt.wantHTMLDropped || cut != tt.wantBodyCut {
				t.Errorf("dropped %t cut %t, want %t %t", dropped, cut, tt.wantHTMLDropped, tt.wantBodyCut)
			}
			if tt.wantBodyUnchange {
				if c.Body != tt.body {
					t.Errorf("body changed to %q", c.Body)
				}
				return
			}
			if !strings.HasSuffix(c.Body, trimNoteMail) || c.FormattedBody != "" {
				t.Errorf("want the note at the end and no formatted body; body ends %q", c.Body[max(0, len(c.Body)-200):])
			}
			if cut && contentSize(c) < maxContentBytes-1024 {
				t.Errorf("cut to %d bytes, want close to %d", contentSize(c), maxContentBytes)
			}
		})
	}
}

// TestThreadRecipients reproduces issue 10 item 7: a reply went to the Reply-To or From
// of the thread's latest mail, so anyone who knew a Message-ID received the next answer.
// The recipients are now fixed by the mail that opened the conversation; others are
// newcomers.
func TestThreadRecipients(t *testing.T) {
	mb := &MailboxConfig{Address: "post@box.test"}
	tests := []struct {
		name          string
		root          mailMeta
		later         mailparse.Mail
		wantRcpts     []string
		wantNewcomers []string
	}{
		{"the same sender again", mailMeta{From: "alice@ext.test"}, mailparse.Mail{From: mailparse.Address{Email: "alice@EXT.test"}},
			[]string{"alice@ext.test"}, nil},
		{"a stranger joins by Message-ID", mailMeta{From: "alice@ext.test"}, mailparse.Mail{From: mailparse.Address{Email: "mallory@evil.test"}},
			[]string{"alice@ext.test"}, []string{"mallory@evil.test"}},
		{"a known sender with a new Reply-To", mailMeta{From: "alice@ext.test"},
			mailparse.Mail{From: mailparse.Address{Email: "alice@ext.test"}, ReplyTo: []mailparse.Address{{Email: "mallory@evil.test"}}},
			[]string{"alice@ext.test"}, []string{"mallory@evil.test"}},
		{"the root's Reply-To is where replies go", mailMeta{From: "noreply@ext.test", ReplyTo: []string{"team@ext.test"}},
			mailparse.Mail{From: mailparse.Address{Email: "noreply@ext.test"}}, []string{"team@ext.test"}, nil},
		{"a mail the room opened: its recipients", mailMeta{From: "post@box.test", ReplyTo: []string{"carol@ext.test", "dave@ext.test"}},
			mailparse.Mail{From: mailparse.Address{Email: "dave@ext.test"}}, []string{"carol@ext.test", "dave@ext.test"}, nil},
		{"the mailbox itself is no newcomer", mailMeta{From: "alice@ext.test"}, mailparse.Mail{From: mailparse.Address{Email: "post@box.test"}},
			[]string{"alice@ext.test"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newThreadState(mb, tt.root)
			if strings.Join(st.Recipients, ",") != strings.Join(tt.wantRcpts, ",") {
				t.Errorf("recipients %v, want %v", st.Recipients, tt.wantRcpts)
			}
			if got := newcomers(mb, st, &tt.later); strings.Join(got, ",") != strings.Join(tt.wantNewcomers, ",") {
				t.Errorf("newcomers %v, want %v", got, tt.wantNewcomers)
			}
		})
	}
}

// TestClassifySMTPKeepsEnhancedCode reproduces issue 10 item 9: the enhanced status code
// (5.1.1), which go-smtp takes out of the message, was missing from the notice.
func TestClassifySMTPKeepsEnhancedCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"with enhanced code", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<bob@ext.test>: recipient rejected"},
			"the mail server refused it (550 5.1.1 <bob@ext.test>: recipient rejected)"},
		{"without enhanced code", &smtp.SMTPError{Code: 554, EnhancedCode: smtp.NoEnhancedCode, Message: "no"}, "the mail server refused it (554 no)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classifySMTP("send", tt.err)
			var ue appservice.UserError
			if !errors.As(err, &ue) || ue.UserMessage() != tt.want || !errors.Is(err, appservice.ErrPermanent) {
				t.Errorf("got %v, want %q, permanent", err, tt.want)
			}
		})
	}
	if err := classifySMTP("send", &smtp.SMTPError{Code: 451, Message: "later"}); errors.Is(err, appservice.ErrPermanent) {
		t.Errorf("a 4xx answer is permanent: %v", err)
	}
}

// TestErrorsLogNoAddresses (issue 10 item 4): the text of a failure, which the core
// logs, holds no address, subject or body; the room still sees the details.
func TestErrorsLogNoAddresses(t *testing.T) {
	var cmd compose.Outgoing
	tests := []struct {
		name     string
		err      error
		inRoom   string
		internal string
	}{
		{"5xx reply", classifySMTP("send", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "<bob@ext.test>: no such user"}), "bob@ext.test", "bob@ext.test"},
		{"4xx reply", classifySMTP("send", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "<bob@ext.test>: mailbox busy"}), "", "bob@ext.test"},
		{"!mail with a bad address", roomError{what: "invalid !mail command", msg: parseMailCommand("!mail to=alice@ext.test,not-an-address subject=Geheim", &cmd).Error(), permanent: true}, "not-an-address", "alice@ext.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.err.Error(), tt.internal) || strings.Contains(tt.err.Error(), "Geheim") {
				t.Errorf("the logged text %q holds user data", tt.err.Error())
			}
			var ue appservice.UserError
			if tt.inRoom != "" && (!errors.As(tt.err, &ue) || !strings.Contains(ue.UserMessage(), tt.inRoom)) {
				t.Errorf("the room's text of %v does not show %q", tt.err, tt.inRoom)
			}
		})
	}
}

// TestCAFile (issue 10 item 9): with ca_file, a server whose certificate a private CA
// issued is trusted, and one that CA did not issue is not.
func TestCAFile(t *testing.T) {
	dir := t.TempDir()
	caPEM, serverCert := newTestCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_ = c.Close()
		}
	}()
	otherPEM, _ := newTestCA(t)
	otherFile := filepath.Join(dir, "other.pem")
	if err := os.WriteFile(otherFile, otherPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		caFile string
		wantOK bool
	}{
		{"the issuing CA", caFile, true},
		{"another CA", otherFile, false},
		{"the system's CAs", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tlsConfig(ServerConfig{Address: ln.Addr().String(), CAFile: tt.caFile})
			if err != nil {
				t.Fatal(err)
			}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
			if err == nil {
				conn.Close()
			}
			if (err == nil) != tt.wantOK {
				t.Errorf("handshake error %v, want success %t", err, tt.wantOK)
			}
		})
	}
	if _, err := loadCAFile(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing CA file is accepted")
	}
}

// newTestCA makes a CA and a certificate it issued for 127.0.0.1.
func newTestCA(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mail"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// FuzzFitContent: whatever a mail's text and HTML, the fitted content is within the
// limit, its body valid UTF-8, and it is shortened only when it had to be.
func FuzzFitContent(f *testing.F) {
	f.Add("Hallo", "<b>Hallo</b>", 200, false)
	f.Add(strings.Repeat("<&\"\x01ä", 300), "", 400, false)
	f.Add(strings.Repeat("x", 5000), "<p>x</p>", 300, true)
	f.Fuzz(func(t *testing.T, body, html string, limit int, force bool) {
		limit = 200 + (limit&0xffff)%(maxContentBytes-200)
		c := &event.MessageEventContent{MsgType: event.MsgText, Body: strings.ToValidUTF8(body, "?")}
		if html != "" {
			c.Format, c.FormattedBody = event.FormatHTML, html
		}
		before := contentSize(c)
		dropped, cut := fitContent(c, limit, trimNoteNotice, force)
		if size := contentSize(c); size > limit {
			t.Fatalf("content %d bytes, limit %d", size, limit)
		}
		if !utf8.ValidString(c.Body) {
			t.Fatal("body is not valid UTF-8")
		}
		if !force && before <= limit && (dropped || cut) {
			t.Fatal("shortened content that fitted")
		}
	})
}
