package richtext

import (
	"strings"
)

// FromMatrix turns Matrix message content into an XMPP body and XHTML-IM inner XML. format
// is the content's "format" (FormatHTML or ""); without HTML, plain is body and xhtml "".
//
// With HTML, plain is derived from formattedBody: links as "text <url>" (just the URL when
// it is the text, just the text for a Matrix mention), lists as "• item" or "1. item",
// <br/> and paragraphs as line breaks, blockquote lines prefixed "> ", code as `code` and
// pre as a ```…``` block, strong/b as *x*, em/i as _x_, del/s as ~x~ (XEP-0393), and the
// <mx-reply/> reply fallback removed. xhtml is the same content as well-formed XHTML-IM
// inner XML (see writeXHTMLIM), or "" when it would carry no markup.
func FromMatrix(body, format, formattedBody string) (plain, xhtml string) {
	if format != FormatHTML || strings.TrimSpace(formattedBody) == "" {
		return body, ""
	}
	root := fragment(parseHTML(formattedBody))
	plain = plainText(root)
	if strings.TrimSpace(plain) == "" {
		plain = body
	}
	var b strings.Builder
	writeXHTMLIM(&b, root)
	xhtml = b.String()
	if !strings.Contains(xhtml, "<") {
		xhtml = ""
	}
	return plain, xhtml
}

// StripMatrixReply removes a Matrix reply fallback: the leading lines of body that start
// with ">" (and the blank line after them), and the <mx-reply>…</mx-reply> element from
// formattedBody. Call it for replies only: a plain message may start with a quote.
func StripMatrixReply(body, formattedBody string) (string, string) {
	lines := strings.Split(body, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], ">") {
		i++
	}
	if i > 0 {
		if i < len(lines) && strings.TrimSpace(lines[i]) == "" {
			i++
		}
		body = strings.Join(lines[i:], "\n")
	}
	lower := asciiLower(formattedBody) // same length as formattedBody, unlike strings.ToLower
	if start := strings.Index(lower, "<mx-reply>"); start >= 0 {
		if end := strings.Index(lower[start:], "</mx-reply>"); end >= 0 {
			end += start + len("</mx-reply>")
			formattedBody = formattedBody[:start] + formattedBody[end:]
		}
	}
	return body, formattedBody
}

// asciiLower lower-cases the ASCII letters of s and leaves every other byte alone.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
