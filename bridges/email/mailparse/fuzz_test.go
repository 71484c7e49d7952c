package mailparse

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// checkHTML fails when markup has a script, an event handler attribute or an image
// whose source is not a cid: URL.
func checkHTML(t *testing.T, markup string) {
	t.Helper()
	if strings.Contains(strings.ToLower(markup), "<script") {
		t.Fatalf("HTML %q has a script", markup)
	}
	z := html.NewTokenizer(strings.NewReader(markup))
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return
		}
		if tt != html.StartTagToken && tt != html.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		for _, a := range tok.Attr {
			if strings.HasPrefix(strings.ToLower(a.Key), "on") {
				t.Fatalf("HTML %q has attribute %s", markup, a.Key)
			}
			if tok.Data == "img" && a.Key == "src" && !strings.HasPrefix(a.Val, "cid:") {
				t.Fatalf("HTML %q has a remote image %q", markup, a.Val)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.eml"))
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, false)
	}
	f.Add([]byte("From: a@x\r\nContent-Type: text/html\r\n\r\n<img src=x onerror=alert(1)><svg onload=x><a href=\"javascript:x\">j</a><img src=\"cid:p\">"), true)
	f.Add([]byte("From: a@x\nContent-Type: multipart/related; boundary=b\n\n--b\nContent-Type: text/html\n\n<img src=cid:p%40x>\n--b\nContent-ID: <P@x>\nContent-Type: image/png\n\nx\n--b--"), false)
	f.Add([]byte("From: a@x\nContent-Type: multipart/mixed; boundary=\"\"\n\n--\n--\n"), true)
	f.Add([]byte("Subject: =?utf-8?b?/w==?=\nFrom: =?x?q?=FF?= <a@x>\nContent-Type: text/plain; charset*0*=utf-8''%ff; format=flowed\n\n> a \n>b"), true)
	f.Fuzz(func(t *testing.T, raw []byte, strip bool) {
		m, err := Parse(raw, Options{StripQuoted: strip, MaxPartBytes: 1 << 16})
		if m == nil {
			t.Fatal("Parse returned no Mail")
		}
		if errors.Is(err, errPanic) {
			t.Fatalf("Parse panicked: %v", err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		for what, s := range map[string]string{"Text": m.Text, "HTML": m.HTML, "Subject": m.Subject, "RawHeader": m.RawHeader, "From": m.From.String()} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s %q is not valid UTF-8", what, s)
			}
		}
		checkHTML(t, m.HTML)
	})
}
