package mailparse

import (
	"strings"
	"testing"
)

// message builds a message from header lines and a body, with CRLF line endings.
func message(header, body string) []byte {
	s := "From: a@x.example\nTo: b@y.example\nSubject: t\n" + header + "\n" + body
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

func TestParseBodies(t *testing.T) {
	tests := []struct {
		name, header, body string
		text, html         string // html "" means none; "*" means any
		files              []string
	}{
		{
			name:   "alternative takes the last text and the last html",
			header: "Content-Type: multipart/alternative; boundary=b\n",
			body:   "--b\nContent-Type: text/plain\n\nplain\n--b\nContent-Type: text/html\n\n<p>rich</p>\n--b--\n",
			text:   "plain", html: "<p>rich</p>",
		},
		{
			name:   "only html: text derived",
			header: "Content-Type: text/html; charset=utf-8\n",
			body:   "<h1>Title</h1><p>One<br>two &amp; <a href=\"https://x.example/\">link</a></p><ul><li>a</li><li>b</li></ul><blockquote>q</blockquote>",
			text:   "Title\n\nOne\ntwo & link <https://x.example/>\n\n- a\n- b\n\n> q", html: "*",
		},
		{
			name:   "unquoted boundary with '=' and transport padding",
			header: "Content-Type: multipart/mixed; boundary=----=_NextPart_000\n",
			body:   "preamble\n------=_NextPart_000  \nContent-Type: text/plain\n\nhello\n------=_NextPart_000--\nepilogue",
			text:   "hello",
		},
		{
			name:   "missing close delimiter",
			header: "Content-Type: multipart/mixed; boundary=\"x\"\n",
			body:   "--x\n\nfirst\n--x\nContent-Type: text/plain\n\nsecond\n",
			text:   "first\n\nsecond",
		},
		{
			name:   "boundary never found: body read as text",
			header: "Content-Type: multipart/mixed; boundary=nope\n",
			body:   "just text",
			text:   "just text",
		},
		{
			name:   "no boundary parameter",
			header: "Content-Type: multipart/mixed\n",
			body:   "just text",
			text:   "just text",
		},
		{
			name:   "unknown charset with latin-1 bytes",
			header: "Content-Type: text/plain; charset=x-bogus\n",
			body:   "Gr\xfc\xdfe",
			text:   "Grüße",
		},
		{
			name:   "declared utf-8 with invalid bytes",
			header: "Content-Type: text/plain; charset=utf-8\n",
			body:   "ok \xff\xfe end",
			text:   "ok \uFFFD end",
		},
		{
			name:   "koi8-r",
			header: "Content-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: quoted-printable\n",
			body:   "=F0=D2=C9=D7=C5=D4",
			text:   "Привет",
		},
		{
			name:   "broken base64 and quoted-printable",
			header: "Content-Type: multipart/mixed; boundary=b\n",
			body: "--b\nContent-Transfer-Encoding: base64\n\naGVs bG8g\n!!d29y\nbGQ=\n" +
				"--b\nContent-Transfer-Encoding: quoted-printable\n\na=3Db =ZZ c=\n d=C3=\n=A4\n--b--\n",
			text: "hello world\n\na=b =ZZ c dä",
		},
		{
			name:   "mixed text and html pieces keep their order",
			header: "Content-Type: multipart/mixed; boundary=b\n",
			body:   "--b\nContent-Type: text/html\n\n<p>one</p>\n--b\nContent-Type: text/plain\n\ntwo <three>\n--b--\n",
			text:   "one\n\ntwo <three>", html: "<p>one</p>\ntwo &lt;three&gt;",
		},
		{
			name:   "signature of multipart/signed dropped",
			header: "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; boundary=s\n",
			body:   "--s\nContent-Type: text/plain\n\nsigned text\n--s\nContent-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\n--s--\n",
			text:   "signed text",
		},
		{
			name:   "rfc 2231 latin-1 filename and non-text part without name",
			header: "Content-Type: multipart/mixed; boundary=b\n",
			body: "--b\n\nbody\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename*=iso-8859-1'de'Gr%FC%DFe.bin\n\nx\n" +
				"--b\nContent-Type: image/jpeg\n\nx\n--b\nContent-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\n--b--\n",
			text:  "body",
			files: []string{"Grüße.bin", "attachment.jpg", "attachment.ics"},
		},
		{
			name:   "path in filename stripped",
			header: "Content-Type: application/pdf; name=\"..\\\\..\\\\evil.pdf\"\n",
			body:   "x",
			files:  []string{"evil.pdf"},
		},
		{
			name:   "inline image not shown by html becomes an attachment",
			header: "Content-Type: multipart/related; boundary=r\n",
			body: "--r\nContent-Type: text/html\n\n<p>no image <img src=\"cid:other\"></p>\n" +
				"--r\nContent-Type: image/png\nContent-ID: <pic>\n\nPNG\n--r--\n",
			text: "no image", html: "<p>no image </p>", files: []string{"attachment.png"},
		},
		{
			name:   "digest parts default to message/rfc822",
			header: "Content-Type: multipart/digest; boundary=d\n",
			body:   "--d\n\nSubject: one\n\nfirst\n--d--\n",
			files:  []string{"one.eml"},
		},
		{
			name:   "format=flowed with delsp",
			header: "Content-Type: text/plain; format=flowed; delsp=yes\n",
			body:   "long lin \ne joined\n>quoted \n>more\n-- \nsig",
			text:   "long line joined\n> quotedmore\n-- \nsig",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(message(tt.header, tt.body), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if m.Text != tt.text {
				t.Errorf("Text = %q\nwant %q", m.Text, tt.text)
			}
			if tt.html != "*" && m.HTML != tt.html {
				t.Errorf("HTML = %q\nwant %q", m.HTML, tt.html)
			}
			var files []string
			for _, p := range m.Attachments {
				files = append(files, p.FileName)
			}
			if strings.Join(files, "|") != strings.Join(tt.files, "|") {
				t.Errorf("attachments = %q, want %q", files, tt.files)
			}
		})
	}
}

func TestParseHeaders(t *testing.T) {
	raw := []byte("From: a@x.example\nCc: =?iso-8859-1?q?J=FCrgen?= <j@x.example>, broken <<, \"Q, R\" <q@x.example>, undisclosed-recipients:;\n" +
		"Reply-To: <reply@x.example>\nMessage-ID: no-brackets@x.example\nIn-Reply-To: <a@x> <b@x>\n" +
		"References: <bad id@x> <ok@x>\nDate: Mon, 1 Apr 2024 10:00:00 +0200 (CEST)\n" +
		"Subject: =?utf-8?q?line=0Abreak?= =?x-unknown?q?=E4?=\nPrecedence: bulk\n\nx")
	m, err := Parse(raw, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Address{{"Jürgen", "j@x.example"}, {"Q, R", "q@x.example"}}
	if len(m.Cc) != 2 || m.Cc[0] != want[0] || m.Cc[1] != want[1] {
		t.Errorf("Cc = %v, want %v", m.Cc, want)
	}
	if len(m.ReplyTo) != 1 || m.ReplyTo[0].Email != "reply@x.example" {
		t.Errorf("ReplyTo = %v", m.ReplyTo)
	}
	if m.MessageID != "no-brackets@x.example" || m.InReplyTo != "a@x" || strings.Join(m.References, " ") != "ok@x" {
		t.Errorf("ids = %q %q %q", m.MessageID, m.InReplyTo, m.References)
	}
	if m.Date.IsZero() || m.Date.UTC().Hour() != 8 {
		t.Errorf("Date = %v", m.Date)
	}
	if m.Subject != "line breakä" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if !m.Auto {
		t.Error("Precedence: bulk is not Auto")
	}
}

func TestAuto(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"Auto-Submitted: no\n", false},
		{"Auto-Submitted: No ; comment\n", false},
		{"Auto-Submitted: auto-generated\n", true},
		{"Precedence: list\n", true},
		{"Precedence: first-class\n", false},
		{"List-Id: <ops.lists.example>\n", true},
		{"X-Auto-Response-Suppress: OOF\n", true},
		{"", false},
	}
	for _, tt := range tests {
		m, err := Parse(message(tt.header, "x"), Options{})
		if err != nil || m.Auto != tt.want {
			t.Errorf("%q: Auto = %v, %v; want %v", tt.header, m.Auto, err, tt.want)
		}
	}
}

func TestSanitizeHTML(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"script and handlers", `<p onclick="x()">a<script>alert(1)</script></p>`, "<p>a</p>"},
		{"remote image to alt", `<img src="https://t.example/p.gif" alt="pixel"><img src="http://x/y">`, "pixel"},
		{"data image dropped", `<img src="data:image/png;base64,AAAA" alt="d">`, "d"},
		{"link schemes", `<a href="javascript:x">j</a><a href="cid:pic">c</a><a href="mailto:a@x.example">m</a>`,
			`jc<a href="mailto:a@x.example">m</a>`},
		{"style dropped", `<style>p{}</style><p style="color:red" class="x">t</p>`, "<p>t</p>"},
		{"table kept", `<table><tr><td>1</td></tr></table>`, "<table><tbody><tr><td>1</td></tr></tbody></table>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := parseHTMLBody(tt.in)
			fixImages(root, nil)
			fixLinks(root)
			if got := sanitizeHTML(root); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
