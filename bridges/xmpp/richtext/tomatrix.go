package richtext

import (
	"bytes"
	"encoding/xml"
	"html"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	nethtml "golang.org/x/net/html"
)

// matrixPolicy allows the HTML that the Matrix spec lists for m.room.message, without
// images (an XMPP image URL is not an mxc: URI) and with links limited to safe schemes.
var matrixPolicy = func() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a",
		"ul", "ol", "sup", "sub", "li", "b", "i", "u", "strong", "em", "s", "strike", "code", "hr",
		"br", "div", "table", "thead", "tbody", "tr", "th", "td", "caption", "pre", "span",
		"details", "summary")
	p.AllowAttrs("href").OnElements("a")
	p.AllowURLSchemes("http", "https", "mailto", "xmpp")
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(false)
	p.AllowAttrs("data-mx-color", "data-mx-bg-color").Matching(hexColor).OnElements("font", "span")
	p.AllowAttrs("color").Matching(hexColor).OnElements("font")
	p.AllowAttrs("start").Matching(regexp.MustCompile(`^[0-9]{1,9}$`)).OnElements("ol")
	return p
}()

// ToMatrix turns an XMPP body and optional XHTML-IM inner XML into a Matrix body and
// formatted_body; formatted is "" when plain text suffices.
//
// With xhtml, formatted is its content mapped onto the HTML that Matrix clients allow
// (span styles for bold, italic, underline, strike-through and colors become the matching
// elements; images become links) and sanitized with bluemonday; plain is body (or the
// text of xhtml when body is empty). Without xhtml, body is read as XEP-0393 Message
// Styling (*strong*, _emphasis_, ~strike~, `code`, ```pre``` blocks and > quotes), with
// everything else HTML-escaped; formatted is "" when body has no styling.
func ToMatrix(body, xhtml string) (plain, formatted string) {
	if strings.TrimSpace(xhtml) == "" {
		formatted, styled := styleToHTML(body)
		if !styled {
			return body, ""
		}
		return body, matrixPolicy.Sanitize(formatted)
	}
	root := parseXHTMLTree(xhtml)
	var b strings.Builder
	writeMatrixHTML(&b, root)
	formatted = matrixPolicy.Sanitize(b.String())
	if !strings.Contains(formatted, "<") {
		formatted = ""
	}
	plain = body
	if strings.TrimSpace(plain) == "" {
		plain = plainText(root)
	}
	return plain, formatted
}

// parseXHTMLTree reads XHTML-IM inner XML into an HTML tree; what is not well-formed XML
// is read as HTML instead.
func parseXHTMLTree(s string) *nethtml.Node {
	root := &nethtml.Node{Type: nethtml.ElementNode, Data: "div"}
	d := xml.NewDecoder(strings.NewReader("<body>" + s + "</body>"))
	cur := root
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF && depth == 0 {
			return root
		}
		if err != nil {
			return fragment(parseHTML(s))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 || depth > maxNesting+1 {
				continue // the wrapper, or content too deep to keep its elements
			}
			n := &nethtml.Node{Type: nethtml.ElementNode, Data: strings.ToLower(t.Name.Local)}
			for _, a := range t.Attr {
				if a.Name.Space == "" && a.Name.Local != "xmlns" {
					n.Attr = append(n.Attr, nethtml.Attribute{Key: strings.ToLower(a.Name.Local), Val: a.Value})
				}
			}
			cur.AppendChild(n)
			cur = n
		case xml.EndElement:
			if depth > 1 && depth <= maxNesting+1 {
				cur = cur.Parent
			}
			depth--
		case xml.CharData:
			if depth >= 1 {
				cur.AppendChild(&nethtml.Node{Type: nethtml.TextNode, Data: string(bytes.Clone(t))})
			}
		}
	}
}

// matrixElements pass from XHTML-IM to Matrix HTML as they are, without attributes.
var matrixElements = map[string]bool{
	"p": true, "blockquote": true, "ul": true, "li": true, "strong": true, "em": true, "b": true,
	"i": true, "u": true, "del": true, "s": true, "strike": true, "code": true, "pre": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "sup": true, "sub": true,
	"div": true, "table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true,
	"caption": true, "details": true, "summary": true,
}

// writeMatrixHTML writes the children of an XHTML-IM node as Matrix HTML.
func writeMatrixHTML(b *strings.Builder, n *nethtml.Node) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case c.Type == nethtml.TextNode:
			b.WriteString(html.EscapeString(c.Data))
			continue
		case c.Type != nethtml.ElementNode || skipContent[c.Data]:
			continue
		}
		open, end := styleWrappers(attr(c, "style"))
		b.WriteString(open)
		switch name := c.Data; {
		case name == "br" || name == "hr":
			b.WriteString("<" + name + ">")
		case name == "a":
			if href := strings.TrimSpace(attr(c, "href")); safeURL(href) {
				b.WriteString(`<a href="` + html.EscapeString(href) + `">`)
				writeMatrixHTML(b, c)
				b.WriteString("</a>")
			} else {
				writeMatrixHTML(b, c)
			}
		case name == "img":
			alt := attr(c, "alt")
			if src := strings.TrimSpace(attr(c, "src")); safeURL(src) && strings.HasPrefix(strings.ToLower(src), "http") {
				if alt == "" {
					alt = src
				}
				b.WriteString(`<a href="` + html.EscapeString(src) + `">` + html.EscapeString(alt) + "</a>")
			} else {
				b.WriteString(html.EscapeString(alt))
			}
		case name == "cite":
			b.WriteString("<em>")
			writeMatrixHTML(b, c)
			b.WriteString("</em>")
		case name == "ol":
			b.WriteString("<ol")
			if s, err := strconv.Atoi(attr(c, "start")); err == nil && s >= 0 && s < 1e9 {
				b.WriteString(` start="` + strconv.Itoa(s) + `"`)
			}
			b.WriteString(">")
			writeMatrixHTML(b, c)
			b.WriteString("</ol>")
		case matrixElements[name]:
			b.WriteString("<" + name + ">")
			writeMatrixHTML(b, c)
			b.WriteString("</" + name + ">")
		default:
			writeMatrixHTML(b, c)
		}
		b.WriteString(end)
	}
}

// styleWrappers reads the XHTML-IM style attribute and returns the Matrix elements that
// express it: bold, italic, underline, line-through and hex colors. Other CSS is dropped.
func styleWrappers(style string) (open, end string) {
	var fg, bg string
	var tags []string
	for decl := range strings.SplitSeq(style, ";") {
		prop, val, ok := strings.Cut(decl, ":")
		if !ok {
			continue
		}
		prop, val = strings.ToLower(strings.TrimSpace(prop)), strings.ToLower(strings.TrimSpace(val))
		switch prop {
		case "font-weight":
			if n, err := strconv.Atoi(val); val == "bold" || val == "bolder" || err == nil && n >= 600 {
				tags = append(tags, "strong")
			}
		case "font-style":
			if val == "italic" || val == "oblique" {
				tags = append(tags, "em")
			}
		case "text-decoration", "text-decoration-line":
			if strings.Contains(val, "underline") {
				tags = append(tags, "u")
			}
			if strings.Contains(val, "line-through") {
				tags = append(tags, "del")
			}
		case "color":
			fg = cssHex(val)
		case "background-color", "background":
			bg = cssHex(val)
		}
	}
	if fg != "" || bg != "" {
		open = "<font"
		if fg != "" {
			open += ` data-mx-color="` + fg + `"`
		}
		if bg != "" {
			open += ` data-mx-bg-color="` + bg + `"`
		}
		open += ">"
		end = "</font>"
	}
	for _, t := range tags {
		open += "<" + t + ">"
		end = "</" + t + ">" + end
	}
	return open, end
}

// cssHex is a CSS #rgb or #rrggbb color as #rrggbb, "" for anything else.
func cssHex(v string) string {
	if len(v) == 4 && v[0] == '#' {
		v = "#" + strings.Repeat(v[1:2], 2) + strings.Repeat(v[2:3], 2) + strings.Repeat(v[3:4], 2)
	}
	if hexColor.MatchString(v) {
		return v
	}
	return ""
}
