package mailparse

import (
	"encoding/base64"
	"runtime"
	"strings"
	"testing"
)

// bigMail is a mail of about size bytes whose body has the given content type and
// transfer encoding, the content made of repeats of unit.
func bigMail(size int, ctype, enc, unit string) []byte {
	var body strings.Builder
	for body.Len() < size*3/4 {
		body.WriteString(unit)
	}
	content := body.String()
	if enc == "base64" {
		b64 := base64.StdEncoding.EncodeToString([]byte(content))
		var wrapped strings.Builder
		for len(b64) > 76 {
			wrapped.WriteString(b64[:76] + "\r\n")
			b64 = b64[76:]
		}
		wrapped.WriteString(b64 + "\r\n")
		content = wrapped.String()
	}
	return []byte("From: a@b.test\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: " + ctype +
		"\r\nContent-Transfer-Encoding: " + enc + "\r\n\r\n" + content)
}

// TestParseMemoryBounded reproduces issue 10 item 8: parsing a large HTML mail allocated
// about 60 times its size (a 20 MiB mail, 1.3 GB). Parse now renders at most MaxHTMLBytes
// of HTML and hands the rest back whole in FullHTML, so what it allocates in all (an upper
// bound of its peak) stays a small multiple of the mail's size.
func TestParseMemoryBounded(t *testing.T) {
	const size = 8 << 20
	const maxFactor = 10 // bytes allocated per byte of mail, in all
	tests := []struct {
		name       string
		raw        []byte
		wantFullHT bool
	}{
		{"html, 8bit", bigMail(size, "text/html; charset=utf-8", "8bit",
			"<p>Hello <b>world</b> <a href=\"https://example.org/x\">link</a> <span style=\"color:red\">text</span></p>\r\n"), true},
		{"html, base64", bigMail(size, "text/html; charset=utf-8", "base64",
			"<div><table><tr><td>cell</td><td><i>x</i></td></tr></table></div>\r\n"), true},
		{"html, deeply nested", bigMail(size, "text/html; charset=utf-8", "8bit", "<div><span><b>deep "), true},
		{"plain text, flowed", bigMail(size, "text/plain; charset=utf-8; format=flowed", "8bit",
			"Ein recht langer Satz, der weich umbrochen ist, \r\nund hier endet.\r\n> zitiert\r\n"), false},
		{"plain text, quoted-printable latin-1", bigMail(size, "text/plain; charset=iso-8859-1", "quoted-printable",
			"Gr=FC=DFe aus der Stra=DFe, viele Zeilen lang.\r\n"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			m, err := Parse(tt.raw, Options{})
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			factor := float64(alloc) / float64(len(tt.raw))
			t.Logf("mail %d bytes: %d bytes allocated (%.1fx); text %d, HTML %d, full HTML %d", len(tt.raw), alloc, factor, len(m.Text), len(m.HTML), len(m.FullHTML))
			if factor > maxFactor {
				t.Errorf("parsing allocated %.1f times the mail's size, want at most %d", factor, maxFactor)
			}
			if (m.FullHTML != "") != tt.wantFullHT {
				t.Errorf("FullHTML has %d bytes, want it set: %t", len(m.FullHTML), tt.wantFullHT)
			}
			if len(m.HTML) > 2*DefaultMaxHTMLBytes {
				t.Errorf("HTML has %d bytes, want at most about %d", len(m.HTML), DefaultMaxHTMLBytes)
			}
		})
	}
}

// TestAttachmentNameBidi reproduces issue 10 item 9: "Rechnung" + U+202E + "fdp.exe"
// showed as "Rechnungexe.pdf". Control and format characters are dropped from file names,
// as bridges/xmpp/fetch does.
func TestAttachmentNameBidi(t *testing.T) {
	tests := []struct{ name, disposition, want string }{
		{"right-to-left override", "attachment; filename=\"Rechnung\u202Efdp.exe\"", "Rechnungfdp.exe"},
		{"RFC 2231 encoded override", "attachment; filename*=UTF-8''Rechnung%E2%80%AEfdp.exe", "Rechnungfdp.exe"},
		{"isolates and zero-width", "attachment; filename=\"a\u2067b\u2069\u200Bc.pdf\"", "abc.pdf"},
		{"C1 control", "attachment; filename=\"x\u0085y.txt\"", "xy.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "From: a@b.test\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n" +
				"Content-Type: text/plain\r\n\r\nsee\r\n--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: " +
				tt.disposition + "\r\n\r\ndata\r\n--B--\r\n"
			m, err := Parse([]byte(raw), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Attachments) != 1 || m.Attachments[0].FileName != tt.want {
				t.Fatalf("attachments %+v, want one named %q", m.Attachments, tt.want)
			}
		})
	}
}

// TestBounceOriginalEnvelopeID: the report's Original-Envelope-Id is read, so that a
// bounce can be matched with the ENVID the bridge gave at MAIL FROM.
func TestBounceOriginalEnvelopeID(t *testing.T) {
	raw := "From: MAILER-DAEMON@ext.test\r\nSubject: failure\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n" +
		"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; ext.test\r\nOriginal-Envelope-Id: abc.123@box.test\r\n\r\n" +
		"Final-Recipient: rfc822; carol@ext.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n"
	m, err := Parse([]byte(raw), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Bounce == nil || m.Bounce.OriginalEnvelopeID != "abc.123@box.test" || len(m.Bounce.Recipients) != 1 || m.Bounce.Recipients[0].Status != "5.1.1" {
		t.Fatalf("bounce %+v", m.Bounce)
	}
}
