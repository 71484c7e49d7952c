package compose

import (
	"strings"
	"testing"

	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

// FuzzBuild: Build never panics, and what it builds parses back to the same subject,
// Message-ID and text.
func FuzzBuild(f *testing.F) {
	f.Add("Grüße", "Hallo\nWelt", "", "a@x.example", "Jürgen", "ev1", false)
	f.Add(" =?utf-8?q?x?= ", "line\r\nbreak\rcr", "<p>x</p>", "b@y.example", "", "ev2", true)
	f.Add("a\x00b\tc", "\x00\x01 trailing   \n\n", "", "\"q\"@x.example", "Name, with \"quotes\"", "", false)
	f.Add(strings.Repeat("long", 40), "=3D=\n.\nFrom x", "", "c@z.example", "=?utf-8?q?n?=", "x", true)
	f.Fuzz(func(t *testing.T, subject, text, html, email, name, seed string, attach bool) {
		o := Outgoing{
			From:      Address{Name: name, Email: email},
			To:        []Address{{Email: "dispatch@example.org"}},
			Subject:   subject,
			MessageID: NewMessageID(seed, "example.org"),
			Text:      text,
			HTML:      html,
		}
		if attach {
			o.Attachments = []Attachment{{FileName: name + ".bin", ContentType: subject, Data: []byte(text)}}
		}
		raw, err := Build(o)
		if err != nil {
			return
		}
		m, err := mailparse.Parse(raw, mailparse.Options{})
		if err != nil {
			t.Fatalf("Parse of built mail: %v\n%s", err, raw)
		}
		wantText := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
		wantText = strings.TrimRight(strings.TrimLeft(wantText, "\n"), " \t\n")
		if m.Subject != subject || m.MessageID != o.MessageID || m.Text != wantText {
			t.Fatalf("round trip = %q, %q, %q; want %q, %q, %q\n%s", m.Subject, m.MessageID, m.Text, subject, o.MessageID, wantText, raw)
		}
	})
}
