package richtext

import (
	"regexp"
	"strings"

	"golang.org/x/net/html"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// hexColor is the only color syntax carried over in either direction.
var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// writeXHTMLIM writes the children of a Matrix HTML node as XHTML-IM inner XML, with the
// elements of the XEP-0071 recommended profile (plus code and pre): a, blockquote, br,
// cite, code, em, li, ol, p, pre, span, strong and ul. Other formatting maps onto these
// (b to strong, del to a line-through span, headings to bold paragraphs, Matrix colors to
// span styles); anything else keeps only its content, images their alt text.
func writeXHTMLIM(b *strings.Builder, n *html.Node) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case c.Type == html.TextNode:
			xmsg.Escape(b, c.Data, false)
			continue
		case c.Type != html.ElementNode || skipContent[c.Data]:
			continue
		}
		switch c.Data {
		case "br", "hr":
			b.WriteString("<br/>")
		case "img":
			xmsg.Escape(b, attr(c, "alt"), false)
		case "strong", "b":
			element(b, c, "strong")
		case "em", "i":
			element(b, c, "em")
		case "del", "s", "strike":
			element(b, c, "span", "style", "text-decoration: line-through")
		case "u", "ins":
			element(b, c, "span", "style", "text-decoration: underline")
		case "cite", "code", "pre", "p", "blockquote", "ul", "ol", "li":
			element(b, c, c.Data)
		case "h1", "h2", "h3", "h4", "h5", "h6":
			var inner strings.Builder
			element(&inner, c, "strong")
			if inner.Len() > 0 {
				b.WriteString("<p>" + inner.String() + "</p>")
			}
		case "a":
			if href := strings.TrimSpace(attr(c, "href")); safeURL(href) {
				element(b, c, "a", "href", href)
			} else {
				writeXHTMLIM(b, c)
			}
		case "span", "font":
			if style := colorStyle(c); style != "" {
				element(b, c, "span", "style", style)
			} else {
				writeXHTMLIM(b, c)
			}
		case "div", "tr", "caption", "summary", "details", "dt", "dd", "table":
			writeXHTMLIM(b, c)
			if c.NextSibling != nil {
				b.WriteString("<br/>")
			}
		case "td", "th":
			writeXHTMLIM(b, c)
			if c.NextSibling != nil {
				b.WriteByte(' ')
			}
		default:
			writeXHTMLIM(b, c)
		}
	}
}

// element writes <name attrs>content</name> for n's content, or nothing when the content
// is empty. attrs are name, value pairs; an empty name is skipped.
func element(b *strings.Builder, n *html.Node, name string, attrs ...string) {
	var inner strings.Builder
	writeXHTMLIM(&inner, n)
	if inner.Len() == 0 {
		return
	}
	b.WriteString("<" + name)
	for i := 0; i+1 < len(attrs); i += 2 {
		if attrs[i] == "" {
			continue
		}
		b.WriteString(" " + attrs[i] + `="`)
		xmsg.Escape(b, attrs[i+1], true)
		b.WriteByte('"')
	}
	b.WriteString(">" + inner.String() + "</" + name + ">")
}

// colorStyle is the CSS for the Matrix colors of a <font/> or <span/>, "" when it has none.
func colorStyle(n *html.Node) string {
	var decls []string
	fg := attr(n, "data-mx-color")
	if fg == "" && n.Data == "font" {
		fg = attr(n, "color")
	}
	if hexColor.MatchString(fg) {
		decls = append(decls, "color: "+fg)
	}
	if bg := attr(n, "data-mx-bg-color"); hexColor.MatchString(bg) {
		decls = append(decls, "background-color: "+bg)
	}
	return strings.Join(decls, "; ")
}
