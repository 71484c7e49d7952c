package sipmsg

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// fuzzTypes are the content types FuzzParse picks from.
var fuzzTypes = []string{
	"text/plain", "text/plain;charset=us-ascii", "text/html", TypeCPIM, TypeComposing, TypeIMDN, TypePIDF,
	"text/plain;charset=latin1", "image/png", "",
}

// FuzzParse checks that Parse and ParsePIDF never panic, stay within the limit, fail only
// with the package's errors and return what a caller relies on.
func FuzzParse(f *testing.F) {
	const max = 4096
	for i, seed := range []string{
		"hello", "<b>hi</b>", rfc5438Request, rfc3862Example, rfc5438Envelope(rfc5438Delivery),
		rfc3994Active, rfc3994Idle, rfc5438Delivery, rfc5438Display, rfc3863Basic, rfc3863Extended, rpidBusy,
		"From: <sip:a@b>\n\nContent-Type: message/cpim\n\nx",
		`<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`,
	} {
		f.Add(uint8(i), []byte(seed))
		f.Add(uint8(i), crlf(seed))
	}
	f.Fuzz(func(t *testing.T, pick uint8, body []byte) {
		ct := fuzzTypes[int(pick)%len(fuzzTypes)]
		if ct == TypePIDF {
			p, err := ParsePIDF(body, max)
			if err != nil {
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("ParsePIDF: unexpected error %v", err)
				}
				return
			}
			if p.Entity == "" {
				t.Fatalf("ParsePIDF accepted a document without entity")
			}
			return
		}
		c, err := Parse(ct, body, max)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupportedType) {
				t.Fatalf("Parse(%q): unexpected error %v", ct, err)
			}
			if len(body) > max && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Parse(%q) of %d bytes: %v, want ErrTooLarge", ct, len(body), err)
			}
			return
		}
		if len(body) > max {
			t.Fatalf("Parse(%q) accepted %d bytes", ct, len(body))
		}
		switch c.Kind {
		case KindText:
			if !utf8.ValidString(c.Plain) || !utf8.ValidString(c.HTML) {
				t.Fatalf("Parse(%q): text not UTF-8", ct)
			}
			if c.HTML != "" && SanitizeHTML(c.HTML) != c.HTML {
				t.Fatalf("Parse(%q): HTML not sanitized: %q", ct, c.HTML)
			}
		case KindComposing:
			if c.Composing == nil || !c.Composing.Active() && c.Composing.State != "idle" {
				t.Fatalf("Parse(%q): bad composing %+v", ct, c.Composing)
			}
		case KindNotification:
			if c.IMDN == nil || c.IMDN.MessageID == "" || c.IMDN.Status == "" {
				t.Fatalf("Parse(%q): bad IMDN %+v", ct, c.IMDN)
			}
		default:
			t.Fatalf("Parse(%q): kind %v", ct, c.Kind)
		}
	})
}

// FuzzHTMLToPlain checks that HTMLToPlain never panics and returns valid UTF-8 for valid
// UTF-8 input, with no markup of skipped elements.
func FuzzHTMLToPlain(f *testing.F) {
	for _, seed := range []string{
		"<p>a<br>b</p>", `<a href="https://x">y</a>`, "<ul><li>a<ol><li>b</li></ol></li></ul>",
		"<blockquote><blockquote>q</blockquote></blockquote>", "<pre>x\n y</pre>",
		"<mx-reply><blockquote>r</blockquote></mx-reply>t", "&amp;&lt;&#0;&#xD800;", "<table><tr><td>1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<14 {
			return
		}
		out := HTMLToPlain(s)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("HTMLToPlain(%q) = %q, not UTF-8", s, out)
		}
		_ = HTMLToPlain(SanitizeHTML(s))
	})
}
