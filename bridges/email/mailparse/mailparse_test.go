package mailparse

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// partSummary is what a test compares of a Part.
type partSummary struct{ ContentID, FileName, ContentType string }

func summarize(parts []Part) []partSummary {
	var out []partSummary
	for _, p := range parts {
		out = append(out, partSummary{p.ContentID, p.FileName, p.ContentType})
	}
	return out
}

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file        string
		opts        Options
		malformed   bool
		messageID   string
		inReplyTo   string
		references  []string
		from        Address
		to          []Address
		subject     string
		date        time.Time
		text        string
		htmlHas     []string
		htmlLacks   []string
		attachments []partSummary
		inline      []partSummary
		auto        bool
		bounce      *Bounce
	}{
		{
			file:      "latin1.eml",
			messageID: "20240514071200.GA1234@beispiel.example",
			from:      Address{"Jürgen Müller", "juergen@beispiel.example"},
			to:        []Address{{"Leitstelle", "leitstelle@example.org"}},
			subject:   "Grüße aus München",
			date:      time.Date(2024, 5, 14, 7, 12, 0, 0, time.UTC),
			text: "Hallo zusammen,\n\ndie Straße vor dem Gebäude ist ab Montag gesperrt. Bitte über die\n" +
				"Nebeneinfahrt anfahren – Danke!\n\nViele Grüße\nJürgen",
		},
		{
			file:      "html_inline_pdf.eml",
			messageID: "report-2024-03@ops.example",
			from:      Address{"Dispatch Centre", "dispatch@ops.example"},
			to:        []Address{{"", "alice@example.org"}, {"Bob B.", "bob@example.org"}},
			subject:   "Einsatzbericht März",
			date:      time.Date(2024, 4, 3, 16, 45, 10, 0, time.UTC),
			text:      "Guten Tag,\n\nanbei der Einsatzbericht für März.\n\n[Logo]",
			htmlHas: []string{"<b>Einsatzbericht</b> für März", `src="cid:logo@ops.example"`, `alt="Logo"`,
				"<p>tracking</p>", `<a href="https://ops.example/r/42">Bericht online</a>`},
			htmlLacks:   []string{"tracker.example", "script", "alert", "onload", "javascript", "color: red"},
			attachments: []partSummary{{"", "Bericht März 2024.pdf", "application/pdf"}},
			inline:      []partSummary{{"logo@ops.example", "logo.png", "image/png"}},
		},
		{
			file:       "reply.eml",
			messageID:  "c3@example.org",
			inReplyTo:  "c2@example.org",
			references: []string{"c1@example.org", "c2@example.org"},
			from:       Address{"Bob", "bob@example.org"},
			to:         []Address{{"Alice", "alice@example.org"}},
			subject:    "Re: Re: Schichtplan",
			date:       time.Date(2024, 4, 4, 6, 0, 0, 0, time.UTC),
			text: "Passt, ich nehme die Frühschicht am Samstag und tausche dafür die Spätschicht am Sonntag.\n\n" +
				"On Wed, 3 Apr 2024 at 19:30, Alice <alice@example.org>\nwrote:\n> Kannst du am Samstag?\n>\n>> Wer übernimmt das Wochenende?",
		},
		{
			file:       "reply.eml",
			opts:       Options{StripQuoted: true},
			messageID:  "c3@example.org",
			inReplyTo:  "c2@example.org",
			references: []string{"c1@example.org", "c2@example.org"},
			from:       Address{"Bob", "bob@example.org"},
			to:         []Address{{"Alice", "alice@example.org"}},
			subject:    "Re: Re: Schichtplan",
			date:       time.Date(2024, 4, 4, 6, 0, 0, 0, time.UTC),
			text:       "Passt, ich nehme die Frühschicht am Samstag und tausche dafür die Spätschicht am Sonntag.",
		},
		{
			file:      "bounce.eml",
			messageID: "20240404080000.4XyZ2@mail.example.org",
			from:      Address{"Mail Delivery System", "MAILER-DAEMON@mail.example.org"},
			to:        []Address{{"", "leitstelle@example.org"}},
			subject:   "Undelivered Mail Returned to Sender",
			date:      time.Date(2024, 4, 4, 8, 0, 0, 0, time.UTC),
			text: "This is the mail system at host mail.example.org.\n\nI'm sorry to have to inform you that your message could not\n" +
				"be delivered to one or more recipients. It's attached below.\n\n" +
				"<nobody@remote.example>: host mx.remote.example[198.51.100.7] said: 550 5.1.1\n" +
				"    <nobody@remote.example>: Recipient address rejected: User unknown (in reply\n    to RCPT TO command)",
			attachments: []partSummary{{"", "attachment.txt", "text/rfc822-headers"}},
			auto:        true,
			bounce: &Bounce{OriginalMessageID: "$event1.switchboard@example.org", Recipients: []BounceRecipient{
				{"nobody@remote.example", "failed", "5.1.1", "550 5.1.1 <nobody@remote.example>: Recipient address rejected: User unknown"},
				{"slow@other.example", "delayed", "4.4.1", "connect to mx.other.example[203.0.113.5]:25: Connection timed out"},
			}},
		},
		{
			file:      "autoreply.eml",
			messageID: "ooo-1@example.net",
			inReplyTo: "$event2.switchboard@example.org",
			from:      Address{"Carol", "carol@example.net"},
			to:        []Address{{"", "leitstelle@example.org"}},
			subject:   "Abwesenheitsnotiz: “Urlaub”",
			date:      time.Date(2024, 4, 5, 7, 0, 0, 0, time.UTC),
			text:      "Ich bin bis 12. April nicht im Büro – in dringenden Fällen „Leitstelle“ anrufen.",
			auto:      true,
		},
		{
			file:      "malformed.eml",
			malformed: true,
			messageID: "broken-1@example.com",
			from:      Address{"Mallory", "mallory@example.com"},
			to:        []Address{{"", "leitstelle@example.org"}},
			subject:   "broken header",
			text:      "Body survives.",
		},
		{
			file:      "outlook.eml",
			opts:      Options{StripQuoted: true},
			messageID: "AM0PR01MB1234@corp.example",
			from:      Address{"Dave", "dave@corp.example"},
			to:        []Address{{"", "alice@example.org"}},
			subject:   "RE: Termin",
			date:      time.Date(2024, 4, 8, 12, 0, 0, 0, time.UTC),
			text:      "Geht klar – bis dann.",
			htmlHas:   []string{"<div>Geht klar – bis dann.</div>"},
			htmlLacks: []string{"Passt Dienstag", "<hr", "From:"},
		},
		{
			file:      "forward.eml",
			messageID: "fwd-1@example.org",
			from:      Address{"Erin", "erin@example.org"},
			to:        []Address{{"", "leitstelle@example.org"}},
			subject:   "Fwd: Lagebild",
			date:      time.Date(2024, 4, 9, 8, 0, 0, 0, time.UTC),
			text:      "Siehe Anhang, schöne Grüße.",
			attachments: []partSummary{
				{"", "Lagebild 09:00.eml", "message/rfc822"},
				{"", "Straßenliste.txt", "text/plain"},
			},
		},
		{
			file:      "nocontenttype.eml",
			messageID: "notype@example.org",
			from:      Address{"", "grace@example.org"},
			to:        []Address{{"", "leitstelle@example.org"}},
			subject:   "ohne Typ",
			text:      "Käse und Brötchen.",
		},
	}
	for _, tt := range tests {
		name := strings.TrimSuffix(tt.file, ".eml")
		if tt.opts.StripQuoted {
			name += " stripped"
		}
		t.Run(name, func(t *testing.T) {
			m, err := Parse(readSample(t, tt.file), tt.opts)
			if tt.malformed != errors.Is(err, ErrMalformed) || !tt.malformed && err != nil {
				t.Fatalf("Parse error = %v, want malformed %v", err, tt.malformed)
			}
			if m.MessageID != tt.messageID || m.InReplyTo != tt.inReplyTo || !reflect.DeepEqual(m.References, tt.references) {
				t.Errorf("ids = %q, %q, %q; want %q, %q, %q", m.MessageID, m.InReplyTo, m.References, tt.messageID, tt.inReplyTo, tt.references)
			}
			if m.From != tt.from || !reflect.DeepEqual(m.To, tt.to) {
				t.Errorf("From, To = %v, %v; want %v, %v", m.From, m.To, tt.from, tt.to)
			}
			if m.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", m.Subject, tt.subject)
			}
			if !m.Date.Equal(tt.date) {
				t.Errorf("Date = %v, want %v", m.Date, tt.date)
			}
			if m.Text != tt.text {
				t.Errorf("Text = %q\nwant %q", m.Text, tt.text)
			}
			if len(tt.htmlHas) == 0 && m.HTML != "" {
				t.Errorf("HTML = %q, want none", m.HTML)
			}
			for _, s := range tt.htmlHas {
				if !strings.Contains(m.HTML, s) {
					t.Errorf("HTML %q lacks %q", m.HTML, s)
				}
			}
			for _, s := range tt.htmlLacks {
				if strings.Contains(m.HTML, s) {
					t.Errorf("HTML %q has %q", m.HTML, s)
				}
			}
			if got := summarize(m.Attachments); !reflect.DeepEqual(got, tt.attachments) {
				t.Errorf("Attachments = %+v, want %+v", got, tt.attachments)
			}
			if got := summarize(m.Inline); !reflect.DeepEqual(got, tt.inline) {
				t.Errorf("Inline = %+v, want %+v", got, tt.inline)
			}
			if m.Auto != tt.auto {
				t.Errorf("Auto = %v, want %v", m.Auto, tt.auto)
			}
			if !reflect.DeepEqual(m.Bounce, tt.bounce) {
				t.Errorf("Bounce = %+v, want %+v", m.Bounce, tt.bounce)
			}
			if !strings.HasPrefix(m.RawHeader, "") || strings.Contains(m.RawHeader, "\r\n\r\n") || m.RawHeader == "" {
				t.Errorf("RawHeader = %q", m.RawHeader)
			}
		})
	}
}

func TestParseAttachmentData(t *testing.T) {
	m, err := Parse(readSample(t, "html_inline_pdf.eml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if pdf := m.Attachments[0]; !strings.HasPrefix(string(pdf.Data), "%PDF-1.4\n") || pdf.Size != int64(len(pdf.Data)) {
		t.Errorf("PDF data = %q (size %d)", pdf.Data, pdf.Size)
	}
	if png := m.Inline[0]; !strings.HasPrefix(string(png.Data), "\x89PNG\r\n") {
		t.Errorf("PNG data = %q", png.Data)
	}

	// The limit also cuts the HTML body, so the logo may end up an attachment.
	m, _ = Parse(readSample(t, "html_inline_pdf.eml"), Options{MaxPartBytes: 70})
	parts := map[string]Part{}
	for _, p := range append(m.Attachments, m.Inline...) {
		parts[p.FileName] = p
	}
	if pdf := parts["Bericht März 2024.pdf"]; !pdf.Truncated || pdf.Data != nil || pdf.Size != 77 {
		t.Errorf("PDF over the limit = truncated %v, data %q, size %d; want truncated, nil, 77", pdf.Truncated, pdf.Data, pdf.Size)
	}
	if png := parts["logo.png"]; png.Truncated || png.Data == nil {
		t.Errorf("PNG under the limit truncated")
	}
}

func TestParseMalformedKeepsRawHeader(t *testing.T) {
	raw := readSample(t, "malformed.eml")
	m, err := Parse(raw, Options{})
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
	head, _, _ := strings.Cut(string(raw), "\n\n")
	if m.RawHeader != head+"\n" {
		t.Errorf("RawHeader = %q, want %q", m.RawHeader, head+"\n")
	}
	if strings.Contains(err.Error(), "no colon") && strings.Contains(err.Error(), "This line") {
		t.Errorf("error %q quotes the header", err)
	}

	for name, raw := range map[string]string{
		"empty":        "",
		"no From":      "To: a@x.example\r\n\r\nhi",
		"garbage":      "\x00\xff\xfe garbage",
		"only a blank": "\r\n\r\nbody",
	} {
		if m, err := Parse([]byte(raw), Options{}); !errors.Is(err, ErrMalformed) || m == nil {
			t.Errorf("%s: Parse = %v, %v; want a Mail and ErrMalformed", name, m, err)
		}
	}
}

func TestRawHeaderCap(t *testing.T) {
	raw := "From: a@x.example\r\nX-Long: " + strings.Repeat("é", MaxRawHeader) + "\r\n\r\nbody"
	m, err := Parse([]byte(raw), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.RawHeader) > MaxRawHeader || !strings.HasPrefix(m.RawHeader, "From: a@x.example") {
		t.Errorf("RawHeader is %d bytes", len(m.RawHeader))
	}
	if m.Text != "body" {
		t.Errorf("Text = %q", m.Text)
	}
}
