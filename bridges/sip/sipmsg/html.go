package sipmsg

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"

	"github.com/switchboard-matrix/switchboard/internal/htmltext"
)

// policy allows the HTML the Matrix spec lists for m.room.message bodies, without images
// (a SIP peer's image URL is not an mxc: URI) and with links limited to safe schemes.
var policy = func() *bluemonday.Policy {
	hexColor := regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	p := bluemonday.NewPolicy()
	p.AllowElements("font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a",
		"ul", "ol", "sup", "sub", "li", "b", "i", "u", "strong", "em", "s", "strike", "code", "hr",
		"br", "div", "table", "thead", "tbody", "tr", "th", "td", "caption", "pre", "span",
		"details", "summary")
	p.AllowAttrs("href").OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto", "sip", "sips", "tel", "xmpp", "matrix")
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(false)
	p.AllowAttrs("data-mx-color", "data-mx-bg-color").Matching(hexColor).OnElements("font", "span")
	p.AllowAttrs("color").Matching(hexColor).OnElements("font")
	p.AllowAttrs("start").Matching(regexp.MustCompile(`^[0-9]{1,9}$`)).OnElements("ol")
	p.AllowAttrs("class").Matching(regexp.MustCompile(`^language-[A-Za-z0-9_+-]{1,32}$`)).OnElements("code")
	return p
}()

// SanitizeHTML keeps of s the HTML that Matrix clients render (the m.room.message subset,
// without images; links only to http, https, mailto, sip, sips, tel, xmpp and matrix URIs)
// and drops the rest, scripts and styles with their content.
func SanitizeHTML(s string) string {
	return policy.Sanitize(s)
}

// skipped elements are dropped with their content: the Matrix reply fallback and what is
// not shown.
var skipped = map[string]bool{
	"mx-reply": true, "script": true, "style": true, "head": true, "title": true, "template": true,
}

// HTMLToPlain degrades HTML (a Matrix formatted_body) to readable plain text: paragraphs
// and <br> become line breaks, list items "- " or "1. ", quotes "> " lines, links
// "text (url)" or the URL alone when the text is the URL, code and preformatted text are
// kept as they are, the reply fallback <mx-reply> is dropped and entities are decoded.
// Mentions (links to a matrix.to user) keep their text only.
func HTMLToPlain(s string) string {
	return htmltext.Plain(s, plainOptions)
}

// plainOptions render HTML for a SIP peer: no styling, "- " bullets, links "text (url)".
var plainOptions = htmltext.Options{
	LinkFormat: "%s (%s)",
	Bullet:     "- ",
	SafeURL:    safeURL,
	TextOnly:   isMention,
	Skip:       skipped,
}

// isMention reports whether href is a Matrix mention: a matrix.to link to a user.
func isMention(href string) bool {
	return strings.HasPrefix(href, "https://matrix.to/#/@")
}

// safeURL reports whether href is an absolute URL of a scheme fit to show.
func safeURL(href string) bool {
	u, err := url.Parse(href)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "mailto", "sip", "sips", "tel", "xmpp", "matrix":
		return true
	}
	return false
}
