// Package htmltext renders HTML as readable plain text: paragraphs set apart by an empty
// line, <br> and block elements as line breaks, lists as "- item" or "1. item" with nested
// lists indented under their item, quotes as "> " lines, links as "text (url)" or the URL
// alone, tables as "a | b" rows, entities decoded and white space collapsed as a browser
// would. With Options.Styling the text carries XEP-0393 Message Styling directives
// (*strong*, _emphasis_, ~strike~, `code`, ``` blocks) as well.
//
// It is the one HTML-to-text renderer of the bridges (the XMPP bridge's styled body, the
// SIP bridge's text/plain); what differs between them is an Option. The package knows no
// protocol and no Matrix: which links are safe to show, which are mentions and which
// elements (a reply fallback) are dropped are the caller's to say.
package htmltext

import (
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// DefaultMaxDepth is the nesting of rendered elements (the root counting as one) beyond
// which an element's content is rendered as its bare text, when Options.MaxDepth is 0.
const DefaultMaxDepth = 64

// Options say how HTML is rendered. The zero value renders plain text without styling,
// with "- " bullets, links as "text (url)" shown only for http, https and mailto URLs, and
// scripts, styles and other content a browser does not show dropped.
type Options struct {
	// Styling writes XEP-0393 Message Styling: strong/b and headings as *x*, em/i as _x_,
	// del/s/strike as ~x~ (spans only where the text is on one line), inline code on one
	// line as `x` (bare when it holds a backtick) and pre as a ```…``` block keeping all but
	// its last line break. Without it, inline markup is dropped, inline code is kept as it
	// is and pre keeps its text without its trailing line breaks.
	Styling bool

	// Bullet is the marker of an unordered list item, "- " when empty.
	Bullet string

	// LinkFormat writes a link whose text is not its URL, with fmt verbs for the text and
	// then the URL; "%s (%s)" when empty. A link whose text is its URL (with or without
	// the scheme, "mailto:" or a trailing slash) or that has no text is written as the URL.
	LinkFormat string

	// SafeURL reports whether a link's (trimmed) href may be shown; other links are
	// written as their text alone. nil allows http and https URLs with a host and mailto
	// URLs with an address.
	SafeURL func(href string) bool

	// TextOnly reports whether a link with text is written as its text alone, such as a
	// Matrix mention; nil for none. May be nil.
	TextOnly func(href string) bool

	// Skip holds the element names dropped together with their content; nil means script,
	// style and the other elements whose content a browser does not show as text (see
	// DefaultSkip). Read only.
	Skip map[string]bool

	// MaxDepth bounds the nesting of rendered elements, to keep hostile input from deep
	// recursion: content deeper than this (the root counting as one) is rendered as its
	// bare text. 0 means DefaultMaxDepth; a negative value means no bound, for trees the
	// caller has bounded already.
	MaxDepth int
}

// DefaultSkip reports whether Options.Skip nil drops the element name with its content.
func DefaultSkip(name string) bool { return defaultSkip[name] }

// defaultSkip are the elements dropped with their content when Options.Skip is nil.
var defaultSkip = map[string]bool{
	"script": true, "style": true, "head": true, "title": true, "template": true,
	"iframe": true, "object": true, "embed": true, "noscript": true, "svg": true, "math": true,
	"textarea": true, "select": true, "button": true, "frame": true, "frameset": true, "noembed": true,
	"noframes": true, "xmp": true, "plaintext": true, "applet": true, "audio": true, "video": true,
}

// Plain renders the HTML fragment s (parsed as the content of a <body>) as plain text
// without leading or trailing white space.
func Plain(s string, o Options) string {
	body := &html.Node{Type: html.ElementNode, DataAtom: atom.Body, Data: "body"}
	nodes, err := html.ParseFragment(strings.NewReader(s), body)
	if err != nil {
		return strings.TrimSpace(s) // the parser errs only on read errors; not with a string
	}
	for _, n := range nodes {
		body.AppendChild(n)
	}
	return strings.TrimSpace(Render(body, o))
}

// Render renders the children of n as plain text. It does not modify n.
func Render(n *html.Node, o Options) string {
	r := renderer{Options: o}
	if r.Bullet == "" {
		r.Bullet = "- "
	}
	if r.LinkFormat == "" {
		r.LinkFormat = "%s (%s)"
	}
	if r.SafeURL == nil {
		r.SafeURL = defaultSafeURL
	}
	if r.Skip == nil {
		r.Skip = defaultSkip
	}
	if r.MaxDepth == 0 {
		r.MaxDepth = DefaultMaxDepth
	}
	return r.render(n)
}

// defaultSafeURL reports whether href is an http or https URL with a host or a mailto URL
// with an address.
func defaultSafeURL(href string) bool {
	u, err := url.Parse(href)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "mailto":
		return u.Opaque != "" || u.Path != ""
	}
	return false
}

// link renders a link: see Options.LinkFormat, SafeURL and TextOnly.
func (r *renderer) link(n *html.Node) string {
	text := strings.TrimSpace(r.render(n))
	href := strings.TrimSpace(attr(n, "href"))
	switch {
	case href == "" || !r.SafeURL(href):
		return text
	case text != "" && r.TextOnly != nil && r.TextOnly(href):
		return text
	case text == "" || text == href || "mailto:"+text == href || text+"/" == href ||
		strings.TrimPrefix(strings.TrimPrefix(href, "https://"), "http://") == text:
		return href
	}
	return fmt.Sprintf(r.LinkFormat, text, href)
}

// attr is n's attribute key, or "".
func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}
