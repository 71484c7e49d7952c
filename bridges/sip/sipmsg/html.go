package sipmsg

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
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

// Blocks of the plain text: paragraphs are set apart by an empty line, lines by a line break.
var (
	paragraphs = map[string]bool{
		"p": true, "blockquote": true, "ul": true, "ol": true, "pre": true, "hr": true, "table": true,
		"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	}
	lines = map[string]bool{
		"div": true, "li": true, "tr": true, "caption": true, "details": true, "summary": true,
		"dl": true, "dt": true, "dd": true, "section": true, "article": true, "header": true,
		"footer": true, "figure": true, "figcaption": true, "center": true, "main": true,
		"thead": true, "tbody": true, "tfoot": true, "address": true, "aside": true, "nav": true,
	}
)

// HTMLToPlain degrades HTML (a Matrix formatted_body) to readable plain text: paragraphs
// and <br> become line breaks, list items "- " or "1. ", quotes "> " lines, links
// "text (url)" or the URL alone when the text is the URL, code and preformatted text are
// kept as they are, the reply fallback <mx-reply> is dropped and entities are decoded.
// Mentions (links to a matrix.to user) keep their text only.
func HTMLToPlain(s string) string {
	body := &html.Node{Type: html.ElementNode, DataAtom: atom.Body, Data: "body"}
	nodes, err := html.ParseFragment(strings.NewReader(s), body)
	if err != nil {
		return strings.TrimSpace(s) // the parser errs only on read errors; not with a string
	}
	for _, n := range nodes {
		body.AppendChild(n)
	}
	var r plainRenderer
	return strings.TrimSpace(r.render(body))
}

// block is one block of rendered text.
type block struct {
	text string
	para bool
}

// plainRenderer renders HTML nodes as plain text.
type plainRenderer struct {
	depth int // nesting of elements, to bound recursion on hostile input
	lists int // nesting of lists: inside one, paragraphs are lines
}

// maxDepth bounds the rendered nesting; deeper content is rendered as its bare text.
const maxDepth = 64

// render is the plain text of n's children.
func (r *plainRenderer) render(n *html.Node) string {
	r.depth++
	defer func() { r.depth-- }()
	if r.depth > maxDepth {
		return collapseSpace(textContent(n))
	}
	var out []block
	var inline strings.Builder
	flush := func() {
		if s := cleanInline(inline.String()); s != "" {
			out = append(out, block{text: s})
		}
		inline.Reset()
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch {
		case c.Type == html.TextNode:
			inline.WriteString(collapseSpace(c.Data))
		case c.Type != html.ElementNode || skipped[c.Data]:
		case c.Data == "br":
			inline.WriteByte('\n')
		case paragraphs[c.Data] || lines[c.Data]:
			flush()
			if text := r.block(c); text != "" {
				out = append(out, block{text: text, para: paragraphs[c.Data] && r.lists == 0})
			}
		default:
			inline.WriteString(r.inline(c))
		}
	}
	flush()
	var b strings.Builder
	for i, bl := range out {
		if i > 0 {
			if bl.para || out[i-1].para {
				b.WriteString("\n\n")
			} else {
				b.WriteByte('\n')
			}
		}
		b.WriteString(bl.text)
	}
	return b.String()
}

// block renders a block element.
func (r *plainRenderer) block(n *html.Node) string {
	switch n.Data {
	case "blockquote":
		return prefixLines(r.render(n), "> ", ">")
	case "pre":
		return strings.TrimRight(strings.ReplaceAll(textContent(n), "\r\n", "\n"), "\n")
	case "hr":
		return "---"
	case "ul", "ol":
		return r.list(n)
	case "tr":
		var cells []string
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
				cells = append(cells, strings.ReplaceAll(r.render(c), "\n", " "))
			}
		}
		return strings.Join(cells, " | ")
	}
	return r.render(n)
}

// list renders the items of a <ul> ("- ") or <ol> ("1. ", from its start attribute);
// nested lists are indented under their item.
func (r *plainRenderer) list(n *html.Node) string {
	r.lists++
	defer func() { r.lists-- }()
	num := 1
	if s, err := strconv.Atoi(attr(n, "start")); err == nil && s >= 0 && s < 1e9 {
		num = s
	}
	var items []string
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		var text string
		switch {
		case c.Type == html.TextNode:
			text = strings.TrimSpace(collapseSpace(c.Data))
		case c.Type != html.ElementNode || skipped[c.Data]:
			continue
		case c.Data == "li":
			text = r.render(c)
		default:
			text = r.block(c)
		}
		if text == "" {
			continue
		}
		marker := "- "
		if n.Data == "ol" {
			marker = strconv.Itoa(num) + ". "
			num++
		}
		items = append(items, hangingIndent(marker, text))
	}
	return strings.Join(items, "\n")
}

// inline renders an inline element, keeping a space where its content begins or ends with
// white space.
func (r *plainRenderer) inline(n *html.Node) string {
	var s string
	switch n.Data {
	case "code":
		return textContent(n)
	case "img":
		return attr(n, "alt")
	case "a":
		s = r.link(n)
	default:
		s = r.render(n)
	}
	if s == "" {
		return ""
	}
	text := textContent(n)
	if strings.TrimLeft(text, " \t\n\r\f") != text {
		s = " " + s
	}
	if strings.TrimRight(text, " \t\n\r\f") != text {
		s += " "
	}
	return s
}

// link renders a link as "text (url)", or the URL alone when the text is the URL, or the
// text alone for a mention or a link that is not safe to show as one.
func (r *plainRenderer) link(n *html.Node) string {
	text := strings.TrimSpace(r.render(n))
	href := strings.TrimSpace(attr(n, "href"))
	switch {
	case href == "" || !safeURL(href):
		return text
	case strings.HasPrefix(href, "https://matrix.to/#/@") && text != "":
		return text
	case text == "" || text == href || "mailto:"+text == href || text+"/" == href ||
		strings.TrimPrefix(strings.TrimPrefix(href, "https://"), "http://") == text:
		return href
	}
	return text + " (" + href + ")"
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

// attr is n's attribute key, or "".
func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textContent is the text of n and its descendants, without skipped elements.
func textContent(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			switch {
			case c.Type == html.TextNode:
				b.WriteString(c.Data)
			case c.Type == html.ElementNode && !skipped[c.Data]:
				if c.Data == "br" {
					b.WriteByte('\n')
				}
				walk(c)
			}
		}
	}
	walk(n)
	return b.String()
}

// prefixLines prefixes each line of s with prefix, or empty lines with empty.
func prefixLines(s, prefix, empty string) string {
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		if l == "" {
			ls[i] = empty
		} else {
			ls[i] = prefix + l
		}
	}
	return strings.Join(ls, "\n")
}

// hangingIndent puts marker before the first line of s and indents the others to match.
func hangingIndent(marker, s string) string {
	indent := strings.Repeat(" ", utf8.RuneCountInString(marker))
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		switch {
		case i == 0:
			ls[i] = marker + l
		case l != "":
			ls[i] = indent + l
		}
	}
	return strings.Join(ls, "\n")
}

// collapseSpace turns each run of HTML white space into one space.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for _, c := range s {
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(c)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// cleanInline tidies a run of inline text: runs of spaces become one, lines lose their
// leading and trailing spaces, the run its leading and trailing line breaks.
func cleanInline(s string) string {
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		for strings.Contains(l, "  ") {
			l = strings.ReplaceAll(l, "  ", " ")
		}
		ls[i] = strings.Trim(l, " ")
	}
	return strings.Trim(strings.Join(ls, "\n"), "\n")
}
