package htmltext

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// Blocks of the text: paragraphs are set apart by an empty line, lines by a line break.
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

// block is one block of rendered text.
type block struct {
	text string
	para bool
}

// renderer renders HTML nodes as text; Options hold their defaults.
type renderer struct {
	Options
	depth int // nesting of render calls, bounded by MaxDepth
	lists int // nesting of lists: inside one, paragraphs are lines
}

// render is the text of n's children.
func (r *renderer) render(n *html.Node) string {
	r.depth++
	defer func() { r.depth-- }()
	if r.MaxDepth > 0 && r.depth > r.MaxDepth {
		return collapseSpace(r.textContent(n))
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
		case c.Type != html.ElementNode || r.Skip[c.Data]:
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
func (r *renderer) block(n *html.Node) string {
	switch n.Data {
	case "h1", "h2", "h3", "h4", "h5", "h6":
		if r.Styling {
			return wrap("*", r.render(n))
		}
	case "blockquote":
		return prefixLines(r.render(n), "> ", ">")
	case "pre":
		code := strings.ReplaceAll(r.textContent(n), "\r\n", "\n")
		if r.Styling {
			return "```\n" + strings.TrimSuffix(code, "\n") + "\n```"
		}
		return strings.TrimRight(code, "\n")
	case "hr":
		return "---"
	case "ul", "ol":
		return r.list(n)
	case "li": // outside a list
		return hangingIndent(r.Bullet, r.render(n))
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

// list renders the items of a <ul> (Bullet) or <ol> ("1. ", from its start attribute):
// its <li>, and text or other elements directly inside it, each an item when it has
// text; nested lists are indented under their item.
func (r *renderer) list(n *html.Node) string {
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
		case c.Type != html.ElementNode || r.Skip[c.Data]:
			continue
		case c.Data == "li":
			text = r.render(c)
		default:
			text = r.block(c)
		}
		if text == "" {
			continue
		}
		marker := r.Bullet
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
func (r *renderer) inline(n *html.Node) string {
	var s string
	switch n.Data {
	case "strong", "b":
		s = r.span("*", n)
	case "em", "i":
		s = r.span("_", n)
	case "del", "s", "strike":
		s = r.span("~", n)
	case "code":
		code := r.textContent(n)
		if !r.Styling {
			return code
		}
		code = strings.ReplaceAll(code, "\n", " ")
		if strings.Contains(code, "`") {
			return code
		}
		return wrap("`", code)
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
	text := r.textContent(n)
	if strings.TrimLeft(text, " \t\n\r\f") != text {
		s = " " + s
	}
	if strings.TrimRight(text, " \t\n\r\f") != text {
		s += " "
	}
	return s
}

// span renders n's content, with the styling directive around it when styling.
func (r *renderer) span(directive string, n *html.Node) string {
	if !r.Styling {
		return r.render(n)
	}
	return wrap(directive, r.render(n))
}

// textContent is the text of n and its descendants, <br> as a line break, without
// skipped elements.
func (r *renderer) textContent(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			switch {
			case c.Type == html.TextNode:
				b.WriteString(c.Data)
			case c.Type == html.ElementNode && !r.Skip[c.Data]:
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

// wrap puts a styling directive around s, outside its leading and trailing white space;
// text that is empty or spans lines is left alone, as XEP-0393 spans cannot.
func wrap(directive, s string) string {
	trimmed := strings.TrimSpace(s)
	if trimmed == "" || strings.Contains(trimmed, "\n") {
		return s
	}
	start := strings.Index(s, trimmed)
	return s[:start] + directive + trimmed + directive + s[start+len(trimmed):]
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
