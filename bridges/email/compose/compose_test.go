package compose

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

func base() Outgoing {
	return Outgoing{
		From:      Address{Name: "Leitstelle Süd", Email: "leitstelle@example.org"},
		To:        []Address{{Name: "Jürgen", Email: "juergen@beispiel.example"}},
		Subject:   "Grüße",
		MessageID: NewMessageID("$event:example.org", "example.org"),
		Date:      time.Date(2024, 4, 4, 10, 0, 0, 0, time.UTC),
		Text:      "Hallo",
	}
}

func TestBuildRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Outgoing)
		check  func(*testing.T, []byte, *mailparse.Mail)
	}{
		{"plain with umlauts", func(o *Outgoing) {
			o.Subject = "Re: Straßensperrung „Brücke“ – dringend"
			o.Text = "Die Brücke ist ab Montag gesperrt.\nBitte   umfahren.\n\nLeitstelle"
		}, func(t *testing.T, raw []byte, m *mailparse.Mail) {
			if !bytes.Contains(raw, []byte("Content-Type: text/plain; charset=utf-8")) ||
				!bytes.Contains(raw, []byte("Content-Transfer-Encoding: quoted-printable")) {
				t.Errorf("not a quoted-printable text/plain mail:\n%s", raw)
			}
		}},
		{"html alternative", func(o *Outgoing) {
			o.Text = "Hello *world*"
			o.HTML = "<p>Hello <strong>wörld</strong></p>"
		}, func(t *testing.T, raw []byte, m *mailparse.Mail) {
			if !bytes.Contains(raw, []byte("multipart/alternative")) || m.HTML != "<p>Hello <strong>wörld</strong></p>" {
				t.Errorf("HTML = %q in\n%s", m.HTML, raw)
			}
		}},
		{"attachments", func(o *Outgoing) {
			o.HTML = "<p>see attached</p>"
			o.Attachments = []Attachment{
				{FileName: "Bericht März.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4\x00\xff binary")},
				{FileName: "note.txt", ContentType: "not a type", Data: []byte("n")},
				{FileName: "old.eml", ContentType: "message/rfc822", Data: []byte("Subject: x\r\n\r\ny")},
			}
		}, func(t *testing.T, raw []byte, m *mailparse.Mail) {
			if !bytes.Contains(raw, []byte("multipart/mixed")) || !bytes.Contains(raw, []byte("Content-Transfer-Encoding: base64")) {
				t.Errorf("not multipart/mixed with base64:\n%s", raw)
			}
			want := []mailparse.Part{
				{FileName: "Bericht März.pdf", ContentType: "application/pdf", Data: []byte("%PDF-1.4\x00\xff binary"), Size: 17},
				{FileName: "note.txt", ContentType: "application/octet-stream", Data: []byte("n"), Size: 1},
				{FileName: "old.eml", ContentType: "application/octet-stream", Data: []byte("Subject: x\r\n\r\ny"), Size: 15},
			}
			if !reflect.DeepEqual(m.Attachments, want) {
				t.Errorf("Attachments = %+v\nwant %+v", m.Attachments, want)
			}
			if m.HTML != "<p>see attached</p>" {
				t.Errorf("HTML = %q", m.HTML)
			}
		}},
		{"threading and extra headers", func(o *Outgoing) {
			o.Subject = ReplySubject("Schichtplan")
			o.InReplyTo = "c2@example.org"
			o.References = ReplyReferences([]string{"c1@example.org"}, "c2@example.org")
			o.Cc = []Address{{Email: "cc@example.org"}}
			o.Headers = map[string]string{"X-Switchboard-Event": "$abc:example.org", "Auto-Submitted": "auto-replied"}
		}, func(t *testing.T, raw []byte, m *mailparse.Mail) {
			if m.InReplyTo != "c2@example.org" || !reflect.DeepEqual(m.References, []string{"c1@example.org", "c2@example.org"}) {
				t.Errorf("threading = %q, %q", m.InReplyTo, m.References)
			}
			if len(m.Cc) != 1 || m.Cc[0].Email != "cc@example.org" || !m.Auto {
				t.Errorf("Cc = %v, Auto = %v", m.Cc, m.Auto)
			}
			if !bytes.Contains(raw, []byte("\r\nX-Switchboard-Event: $abc:example.org\r\n")) {
				t.Errorf("extra header missing:\n%s", raw)
			}
		}},
		{"subject that looks encoded", func(o *Outgoing) { o.Subject = " =?utf-8?q?not_encoded?= " }, nil},
		{"long subject", func(o *Outgoing) {
			o.Subject = strings.Repeat("Einsatz ", 20) + strings.Repeat("x", 120) + " Ende"
		}, func(t *testing.T, raw []byte, m *mailparse.Mail) {
			for _, line := range strings.Split(string(raw), "\r\n") {
				if len(line) > 78 && !strings.HasPrefix(line, "Message-Id") {
					t.Errorf("header line longer than 78: %q", line)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			tt.modify(&o)
			raw, err := Build(o)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
				t.Fatalf("bare LF in\n%s", raw)
			}
			m, err := mailparse.Parse(raw, mailparse.Options{})
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, raw)
			}
			if m.Subject != o.Subject || m.MessageID != o.MessageID || m.Text != o.Text {
				t.Errorf("round trip = %q, %q, %q; want %q, %q, %q", m.Subject, m.MessageID, m.Text, o.Subject, o.MessageID, o.Text)
			}
			if m.From != o.From || !reflect.DeepEqual(m.To, o.To) || !m.Date.Equal(o.Date) {
				t.Errorf("From, To, Date = %v, %v, %v", m.From, m.To, m.Date)
			}
			if tt.check != nil {
				tt.check(t, raw, m)
			}
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	tests := []struct {
		name      string
		modify    func(*Outgoing)
		injection bool
	}{
		{"no From", func(o *Outgoing) { o.From = Address{} }, false},
		{"no To", func(o *Outgoing) { o.To = nil }, false},
		{"no Message-ID", func(o *Outgoing) { o.MessageID = "" }, false},
		{"Message-ID with brackets", func(o *Outgoing) { o.MessageID = "<a@b>" }, false},
		{"Message-ID without @", func(o *Outgoing) { o.MessageID = "abc" }, false},
		{"invalid address", func(o *Outgoing) { o.To = []Address{{Email: "not an address"}} }, false},
		{"display name in Email", func(o *Outgoing) { o.To = []Address{{Email: "A <a@x.example>"}} }, false},
		{"reserved extra header", func(o *Outgoing) { o.Headers = map[string]string{"bcc": "x@y.example"} }, false},
		{"content header", func(o *Outgoing) { o.Headers = map[string]string{"Content-Type": "text/html"} }, false},
		{"bad header name", func(o *Outgoing) { o.Headers = map[string]string{"X Bad": "v"} }, false},
		{"invalid UTF-8 text", func(o *Outgoing) { o.Text = "\xff" }, false},
		{"attachment without name", func(o *Outgoing) { o.Attachments = []Attachment{{Data: []byte("x")}} }, false},
		{"CRLF in subject", func(o *Outgoing) { o.Subject = "hi\r\nBcc: victim@x.example" }, true},
		{"LF in subject", func(o *Outgoing) { o.Subject = "hi\nX: y" }, true},
		{"CR in From name", func(o *Outgoing) { o.From.Name = "A\rB" }, true},
		{"LF in To address", func(o *Outgoing) { o.To = []Address{{Email: "a@x.example\nBcc: b@y.example"}} }, true},
		{"CRLF in In-Reply-To", func(o *Outgoing) { o.InReplyTo = "a@x>\r\nBcc: <b@y" }, true},
		{"LF in References", func(o *Outgoing) { o.References = []string{"a@x", "b@y\nX: z"} }, true},
		{"LF in extra header value", func(o *Outgoing) { o.Headers = map[string]string{"X-A": "v\nBcc: b@y.example"} }, true},
		{"LF in extra header name", func(o *Outgoing) { o.Headers = map[string]string{"X-A\nBcc": "b@y.example"} }, true},
		{"LF in attachment name", func(o *Outgoing) { o.Attachments = []Attachment{{FileName: "a\n.pdf"}} }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			tt.modify(&o)
			raw, err := Build(o)
			if !errors.Is(err, ErrInvalid) || tt.injection != errors.Is(err, ErrHeaderInjection) {
				t.Fatalf("Build = %v; want ErrInvalid (injection %v); wrote\n%s", err, tt.injection, raw)
			}
		})
	}
}

func TestReplySubject(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Schichtplan", "Re: Schichtplan"},
		{"Re: Schichtplan", "Re: Schichtplan"},
		{"RE: Schichtplan", "RE: Schichtplan"},
		{"re:Schichtplan", "re:Schichtplan"},
		{"AW: Schichtplan", "AW: Schichtplan"},
		{"Aw: Schichtplan", "Aw: Schichtplan"},
		{"SV: Schichtplan", "SV: Schichtplan"},
		{"Antw: Schichtplan", "Antw: Schichtplan"},
		{"VS: Schichtplan", "VS: Schichtplan"},
		{"Re[2]: Schichtplan", "Re[2]: Schichtplan"},
		{"RE : Schichtplan", "RE : Schichtplan"},
		{"Fwd: Schichtplan", "Re: Fwd: Schichtplan"},
		{"WG: Schichtplan", "Re: WG: Schichtplan"},
		{"Reply needed", "Re: Reply needed"},
		{"Report: März", "Re: Report: März"},
		{"  padded  ", "Re: padded"},
		{"", "Re:"},
	}
	for _, tt := range tests {
		if got := ReplySubject(tt.in); got != tt.want {
			t.Errorf("ReplySubject(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestReplyReferences(t *testing.T) {
	var long []string
	for i := range 30 {
		long = append(long, string(rune('a'+i%26))+strings.Repeat("x", i/26)+"@x")
	}
	tests := []struct {
		name   string
		refs   []string
		parent string
		want   []string
	}{
		{"new thread", nil, "p@x", []string{"p@x"}},
		{"appends parent", []string{"a@x", "b@x"}, "p@x", []string{"a@x", "b@x", "p@x"}},
		{"dedup and brackets", []string{"<a@x>", "b@x", "a@x", " "}, "<b@x>", []string{"a@x", "b@x"}},
		{"no parent id", []string{"a@x"}, "", []string{"a@x"}},
		{"capped, root kept", long, "parent@x", append([]string{long[0]}, append(long[len(long)-18:], "parent@x")...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReplyReferences(tt.refs, tt.parent)
			if !reflect.DeepEqual(got, tt.want) || len(got) > 20 {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestNewMessageID(t *testing.T) {
	a, b := NewMessageID("$ev1", "Example.org"), NewMessageID("$ev1", "example.org")
	if a != b || !strings.HasSuffix(a, "@example.org") || len(a) != 32+len("@example.org") {
		t.Errorf("NewMessageID = %q, %q", a, b)
	}
	if NewMessageID("$ev2", "example.org") == a {
		t.Error("different seeds give the same id")
	}
	if got := NewMessageID("x", ""); !strings.HasSuffix(got, "@localhost") {
		t.Errorf("empty domain: %q", got)
	}
}
