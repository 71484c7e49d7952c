package sipmsg

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// crlf turns the LF line ends of a test body into CRLF, as on the wire.
func crlf(s string) []byte { return []byte(strings.ReplaceAll(s, "\n", "\r\n")) }

func TestParseText(t *testing.T) {
	tests := []struct {
		name, ct, body string
		want           Content
	}{
		{"plain without charset", "text/plain", "hello", Content{Kind: KindText, Plain: "hello"}},
		{"plain utf-8 upper case", "Text/Plain; charset=UTF-8", "grüß dich", Content{Kind: KindText, Plain: "grüß dich"}},
		{"plain us-ascii quoted", `text/plain;charset="us-ascii"`, "hi", Content{Kind: KindText, Plain: "hi"}},
		{"plain CRLF to LF", "text/plain", "a\r\nb\r\n", Content{Kind: KindText, Plain: "a\nb\n"}},
		{"plain empty", "text/plain", "", Content{Kind: KindText}},
		{"html sanitized, plain derived", "text/html;charset=utf-8",
			`<p>Hi <b>there</b><script>alert(1)</script> <a href="javascript:x()">x</a></p>`,
			Content{Kind: KindText, Plain: "Hi there x", HTML: `<p>Hi <b>there</b> x</p>`}},
		{"html link", "text/html", `see <a href="https://example.org/a">the docs</a>`,
			Content{Kind: KindText, Plain: "see the docs (https://example.org/a)", HTML: `see <a href="https://example.org/a">the docs</a>`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.ct, []byte(tt.body), 0)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if *got != tt.want {
				t.Errorf("Parse =\n%+v\nwant\n%+v", *got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, ct string
		body     []byte
		max      int
		want     error
		msg      string // a part of the error text
	}{
		{"no content type", "", []byte("x"), 0, ErrUnsupportedType, "no content type"},
		{"bad content type", "text/plain;;charset", []byte("x"), 0, ErrMalformed, "content type"},
		{"octet-stream", "application/octet-stream", []byte("x"), 0, ErrUnsupportedType, "application/octet-stream"},
		{"pidf is not a message", TypePIDF, []byte("<x/>"), 0, ErrUnsupportedType, "pidf"},
		{"too large", "text/plain", bytes.Repeat([]byte("a"), 11), 10, ErrTooLarge, "11 bytes, the limit is 10"},
		{"default limit", "text/plain", bytes.Repeat([]byte("a"), DefaultMaxBytes+1), 0, ErrTooLarge, "limit is 65536"},
		{"invalid UTF-8", "text/plain", []byte("a\xffb"), 0, ErrMalformed, "not valid UTF-8"},
		{"invalid UTF-8 html", "text/html", []byte("<b>\xc3</b>"), 0, ErrMalformed, "text/html body is not valid UTF-8"},
		{"us-ascii with 8 bit", "text/plain;charset=us-ascii", []byte("ab\xc3\xa9"), 0, ErrMalformed, "offset 2"},
		{"latin-1", "text/plain;charset=iso-8859-1", []byte("caf\xe9"), 0, ErrUnsupportedType, `charset "iso-8859-1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.ct, tt.body, tt.max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %+v, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestAccept(t *testing.T) {
	for _, ct := range strings.Split(Accept(), ", ") {
		if _, err := Parse(ct, []byte("x"), 0); errors.Is(err, ErrUnsupportedType) {
			t.Errorf("Accept lists %s, which Parse refuses: %v", ct, err)
		}
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		name, plain, html, wantType, wantBody string
	}{
		{"plain", "hi *there*", "", "text/plain;charset=utf-8", "hi *there*"},
		{"html asked", "hi there", "hi <b>there</b><img src=x onerror=y>", "text/html;charset=utf-8", "hi <b>there</b>"},
		{"html sanitizes to nothing", "fallback", "<script>x</script>", "text/plain;charset=utf-8", "fallback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := Text(tt.plain, tt.html)
			if ct != tt.wantType || string(body) != tt.wantBody {
				t.Errorf("Text = %q, %q; want %q, %q", ct, body, tt.wantType, tt.wantBody)
			}
			if _, err := Parse(ct, body, 0); err != nil {
				t.Errorf("Parse of Text's output: %v", err)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindText: "text", KindComposing: "composing", KindNotification: "notification", 0: "Kind(0)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// mustTime parses an RFC 3339 time for a test.
func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
