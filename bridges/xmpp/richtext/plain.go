package richtext

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// block is a rendered block of plain text; paragraphs are set apart by a blank line,
// other blocks by a line break.
type block struct {
	text string
	para bool
}

// plainRenderer turns Matrix HTML into XEP-0393 styled plain text.
type plainRenderer struct {
	lists int // depth of the list being rendered
}

// paraElements are rendered as paragraphs; lineElements as lines of their own.
var (
	paraElements = map[string]bool{
		"p": true, "blockquote": true, "ul": true, "ol": true, "pre": true, "hr": true, "table": true,
		"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	}
	lineElements = map[string]bool{
		"div": true, "li": true, "tr": true, "caption": true, "details": true, "summary": true,
		"dl": true, "dt": true, "dd": true, "section": true, "article": true, "header": true,
		"footer": true, "nav": true, "aside": true, "address": true, "figure": true,
		"figcaption": true, "center": true, "main": true, "thead": true, "tbody": true, "tfoot": true,
	}
)

// render is the plain text of n's children.
func (r *plainRenderer) render(n *html.Node) string {
	blocks := r.blocks(n)
	var b strings.Builder
	for i, bl := range blocks {
		if i > 0 {
			if bl.para || blocks[i-1].para {
				b.WriteString("\n\n")
			} else {
				b.WriteByte('\n')
			}
		}
		b.WriteString(bl.text)
	}
	return b.String()
}

// blocks renders n's children: runs of inline content become line blocks, block elements
// their own blocks.
func (r *plainRenderer) blocks(n *html.Node) []block {
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
		case c.Type != html.ElementNode || skipContent[c.Data]:
		case c.Data == "br":
			inline.WriteByte('\n')
		case paraElements[c.Data] || lineElements[c.Data]:
			flush()
			if bl := r.block(c); bl.text != "" {
				out = append(out, bl)
			}
		default:
			inline.WriteString(r.inline(c))
		}
	}
	flush()
	return out
}

// block renders one block element.
func (r *plainRenderer) block(n *html.Node) block {
	para := paraElements[n.Data] && r.lists == 0
	switch n.Data {
	case "h1", "h2", "h3", "h4", "h5", "h6":
		return block{text: wrap("*", r.render(n)), para: para}
	case "blockquote":
		return block{text: prefixLines(r.render(n), "> ", ">"), para: para}
	case "pre":
		code := strings.TrimSuffix(strings.ReplaceAll(textContent(n), "\r\n", "\n"), "\n")
		return block{text: "```\n" + code + "\n```", para: para}
	case "hr":
		return block{text: "---", para: para}
	case "ul", "ol":
		return block{text: r.list(n), para: para}
	case "li":
		return block{text: hangingIndent("• ", r.render(n))}
	case "tr":
		var cells []string
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == html.ElementNode && (c.Data == "td" || c.Data == "th") {
				cells = append(cells, strings.ReplaceAll(r.render(c), "\n", " "))
			}
		}
		return block{text: strings.Join(cells, " | ")}
	}
	return block{text: r.render(n), para: para}
}

// list renders the items of a <ul/> or <ol/>, nested lists indented under their item.
func (r *plainRenderer) list(n *html.Node) string {
	r.lists++
	defer func() { r.lists-- }()
	num := 1
	if s, err := strconv.Atoi(attr(n, "start")); err == nil && s >= 0 && s < 1e9 {
		num = s
	}
	var items []string
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type != html.ElementNode || skipContent[c.Data] {
			continue
		}
		marker := "• "
		if n.Data == "ol" {
			marker = strconv.Itoa(num) + ". "
			num++
		}
		if text := r.render(c); text != "" {
			items = append(items, hangingIndent(marker, text))
		}
	}
	return strings.Join(items, "\n")
}

// inline renders an inline element, keeping one space where its content starts or ends
// with white space.
func (r *plainRenderer) inline(n *html.Node) string {
	var s string
	switch n.Data {
	case "strong", "b":
		s = wrap("*", r.render(n))
	case "em", "i":
		s = wrap("_", r.render(n))
	case "del", "s", "strike":
		s = wrap("~", r.render(n))
	case "code":
		code := strings.ReplaceAll(textContent(n), "\n", " ")
		if strings.Contains(code, "`") {
			return code
		}
		return wrap("`", code)
	case "a":
		s = r.link(n)
	case "img":
		return attr(n, "alt")
	default:
		s = r.render(n)
	}
	if s == "" {
		return ""
	}
	text := textContent(n)
	if t := strings.TrimLeft(text, " \t\n\r\f"); t != text {
		s = " " + s
	}
	if t := strings.TrimRight(text, " \t\n\r\f"); t != text {
		s += " "
	}
	return s
}

// link renders a link as "text <url>", or just the text when it is the URL, the link is
// not safe, or it is a Matrix mention (a matrix.to link to a user).
func (r *plainRenderer) link(n *html.Node) string {
	text := strings.TrimSpace(r.render(n))
	href := strings.TrimSpace(attr(n, "href"))
	switch {
	case !safeURL(href):
		return text
	case text == "":
		return href
	case strings.HasPrefix(href, "https://matrix.to/#/@"):
		return text
	case text == href || "mailto:"+text == href || text+"/" == href:
		return href
	}
	return text + " <" + href + ">"
}

// wrap puts a span directive around s, outside its leading and trailing white space;
// text that is empty or spans lines is left alone, as XEP-0393 spans cannot be.
func wrap(directive, s string) string {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" || strings.Contains(trimmed, "\n") {
		return s
	}
	start := strings.Index(s, trimmed)
	return s[:start] + directive + trimmed + directive + s[start+len(trimmed):]
}

// prefixLines prefixes every line of s with prefix, or empty lines with empty.
func prefixLines(s, prefix, empty string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l == "" {
			lines[i] = empty
		} else {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// hangingIndent puts marker before the first line of s and indents the others to match.
func hangingIndent(marker, s string) string {
	indent := strings.Repeat(" ", utf8.RuneCountInString(marker))
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		switch {
		case i == 0:
			lines[i] = marker + l
		case l != "":
			lines[i] = indent + l
		}
	}
	return strings.Join(lines, "\n")
}

// collapseSpace turns each run of HTML white space into one space.
func collapseSpace(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' {
			space = true
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	if space {
		b.WriteByte(' ')
	}
	return b.String()
}

// cleanInline tidies a run of inline text: runs of spaces become one, lines lose leading
// and trailing spaces, and the run loses leading and trailing line breaks.
func cleanInline(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		for strings.Contains(l, "  ") {
			l = strings.ReplaceAll(l, "  ", " ")
		}
		lines[i] = strings.Trim(l, " ")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}
