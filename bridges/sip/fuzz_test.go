package sip

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipua"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
)

// fuzzBridge is a bridge for the inbound path without a host (everyone may use it).
func fuzzBridge(t testing.TB) *Bridge {
	b, err := New(Config{
		Domain: "matrix.test", Listen: []ListenConfig{{Transport: "udp", Address: "127.0.0.1:0"}},
		Proxy: "sip:127.0.0.1:5060", Domains: []string{"sip.test"}, MaxMessageBytes: 4096,
	})
	if err != nil {
		t.Fatal(err)
	}
	b.mapper = sipuri.Mapper{Homeserver: "localhost", Domain: "matrix.test", Prefix: DefaultPrefix}
	return b
}

// FuzzInboundMessage drives the bridge's inbound MESSAGE path up to the store (classify:
// addressing, access, body parsing, Matrix size): it never panics, every refusal is a
// final SIP answer with a one-line reason, and what it accepts fits a Matrix event and
// comes from a permitted domain to a user on the bridge's domain.
func FuzzInboundMessage(f *testing.F) {
	f.Add("sip:bob@sip.test", "sip:alice@matrix.test", "text/plain;charset=utf-8", []byte("hello"))
	f.Add("sip:bob@sip.test", "sip:alice@matrix.test", "text/html", []byte("<b>hi</b> <a href='https://x'>x</a>"))
	f.Add("sip:bob@sip.test", "sip:alice=40other.example@matrix.test", "message/cpim",
		[]byte("From: <sip:bob@sip.test>\r\nTo: <sip:alice@matrix.test>\r\nNS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: 34jk324j\r\nimdn.Disposition-Notification: positive-delivery, display\r\n\r\nContent-Type: text/plain\r\n\r\nhi"))
	f.Add("sip:bob@sip.test", "sip:alice@matrix.test", "application/im-iscomposing+xml",
		[]byte(`<?xml version="1.0"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><refresh>60</refresh></isComposing>`))
	f.Add("sip:x@evil.test", "sip:alice@matrix.test", "text/plain", []byte("spam"))
	f.Add("tel:+4930123", "sip:_sip_loop=40sip.test@matrix.test", "image/png", []byte{0x89, 'P', 'N', 'G'})
	b := fuzzBridge(f)
	f.Fuzz(func(t *testing.T, from, to, ct string, body []byte) {
		req := &sipua.Request{Method: "MESSAGE", RequestURI: to, From: sipua.Addr{URI: from, Tag: "t"}, To: sipua.Addr{URI: to},
			CallID: "c", CSeq: 1, ContentType: ct, Body: body}
		in, c, content, refused := b.classify(req)
		if refused != nil {
			if refused.Code < 400 || refused.Code > 699 {
				t.Fatalf("refusal with %d", refused.Code)
			}
			r := sipua.SafeReason(refused.Reason)
			if strings.ContainsAny(r, "\r\n") || !utf8.ValidString(r) || len(r) > 200 {
				t.Fatalf("unsafe reason %q", r)
			}
			return
		}
		if in == nil || c == nil {
			t.Fatal("accepted without sender or content")
		}
		if back, err := b.mapper.UserAOR(in.user.String()); err != nil || back.URI() != mustAOR(t, to).URI() {
			t.Fatalf("accepted for %s, which is not %q", in.user, to)
		}
		if a, err := sipuri.ParseAOR(from); err != nil || a.Host != "sip.test" {
			t.Fatalf("accepted from %q", from)
		}
		if content != nil && len(content.Body)+len(content.FormattedBody) > maxMatrixText {
			t.Fatalf("content of %d bytes", len(content.Body)+len(content.FormattedBody))
		}
	})
}

func mustAOR(t *testing.T, s string) sipuri.AOR {
	a, err := sipuri.ParseAOR(s)
	if err != nil {
		t.Fatalf("accepted an unparsable address %q: %v", s, err)
	}
	return a
}
