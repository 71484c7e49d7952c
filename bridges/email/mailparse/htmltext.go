package mailparse

import (
	"strconv"
	"strings"

	"golang.org/x/net/html"
)

// htmlToText renders the content of root as plain text: blocks on their own lines,
// blockquotes as "> " lines, list items with "- " or their number, links as
// "text <url>" when the text is not the URL, images as their alt text.
func htmlToText(root *html.Node) string {
	var w textWriter
	w.children(root, 0)
	w.ensureLine()
	return w.result()
}

// textWriter collects lines of text; a line's quote prefix is fixed when it starts.
type textWriter struct {
	lines   []string
	cur     strings.Builder
	prefix  string
	started bool
	quote   int
	pre     int
}

func (w *textWriter) write(s string) {
	if s == "" {
		return
	}
	if !w.started {
		w.prefix = ""
		if w.quote > 0 {
			w.prefix = strings.Repeat(">", w.quote) + " "
		}
		w.started = true
	}
	w.cur.WriteString(s)
}

// endLine ends the current line, which may be empty.
func (w *textWriter) endLine() {
	line := strings.TrimRight(w.cur.String(), " \t")
	if line != "" {
		line = w.prefix + line
	}
	w.lines = append(w.lines, line)
	w.cur.Reset()
	w.started = false
}

// ensureLine ends the current line unless nothing is written on it.
func (w *textWriter) ensureLine() {
	if w.started {
		w.endLine()
	}
}

// blankLine makes sure the next text starts after an empty line.
func (w *textWriter) blankLine() {
	w.ensureLine()
	if n := len(w.lines); n > 0 && w.lines[n-1] != "" {
		w.lines = append(w.lines, "")
	}
}

// text writes a text node: white space collapsed, except inside <pre>.
func (w *textWriter) text(s string) {
	if w.pre > 0 {
		for i, line := range strings.Split(s, "\n") {
			if i > 0 {
				w.endLine()
			}
			w.write(line)
		}
		return
	}
	collapsed := strings.Join(strings.Fields(s), " ")
	if collapsed == "" {
		if s != "" && w.started {
			w.write(" ")
		}
		return
	}
	if s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' {
		if w.started && !strings.HasSuffix(w.cur.String(), " ") {
			w.write(" ")
		}
	}
	w.write(collapsed)
	last := s[len(s)-1]
	if last == ' ' || last == '\t' || last == '\n' || last == '\r' {
		w.write(" ")
	}
}

var blockElements = map[string]bool{
	"p": true, "div": true, "h1": true, "h2": true, "h3": true, "h4": true, "h5": true,
	"h6": true, "table": true, "tr": true, "ul": true, "ol": true, "dl": true, "dt": true,
	"dd": true, "section": true, "article": true, "header": true, "footer": true,
	"center": true, "form": true, "address": true, "details": true, "summary": true,
	"caption": true, "figure": true, "main": true, "nav": true, "aside": true,
}

func (w *textWriter) children(n *html.Node, olIndex int) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch c.Type {
		case html.TextNode:
			w.text(c.Data)
		case html.ElementNode:
			if c.Data == "li" && olIndex > 0 {
				w.element(c, olIndex)
				olIndex++
				continue
			}
			w.element(c, 0)
		}
	}
}

func (w *textWriter) element(n *html.Node, number int) {
	switch name := n.Data; {
	case skipContent[name]:
	case name == "br":
		w.endLine()
	case name == "hr":
		w.ensureLine()
		w.write("---")
		w.endLine()
	case name == "img":
		w.text(attr(n, "alt"))
	case name == "li":
		w.ensureLine()
		if number > 0 {
			w.write(strconv.Itoa(number) + ". ")
		} else {
			w.write("- ")
		}
		w.children(n, 0)
		w.ensureLine()
	case name == "ol":
		w.blankLine()
		start, err := strconv.Atoi(attr(n, "start"))
		if err != nil || start < 1 || start > 1e9 {
			start = 1
		}
		w.children(n, start)
		w.blankLine()
	case name == "blockquote":
		w.blankLine()
		w.quote++
		w.children(n, 0)
		w.ensureLine()
		w.quote--
		w.blankLine()
	case name == "pre":
		w.blankLine()
		w.pre++
		w.children(n, 0)
		w.pre--
		w.blankLine()
	case name == "a":
		before := len(w.lines)
		mark := w.cur.Len()
		w.children(n, 0)
		href := strings.TrimSpace(attr(n, "href"))
		if !safeLink(href) {
			return
		}
		label := ""
		if len(w.lines) == before {
			label = strings.TrimSpace(w.cur.String()[min(mark, w.cur.Len()):])
		}
		shown := strings.TrimPrefix(href, "mailto:")
		if label != shown && label != href {
			w.text(" <" + shown + ">")
		}
	case name == "td" || name == "th":
		w.children(n, 0)
		w.write(" ")
	case blockElements[name]:
		w.blankLineSoft(name)
		w.children(n, 0)
		w.blankLineSoft(name)
	default:
		w.children(n, 0)
	}
}

// blankLineSoft separates blocks: paragraphs and headings by an empty line, other blocks
// (div, tr, …) by a line break only, as mail clients show them.
func (w *textWriter) blankLineSoft(name string) {
	switch name {
	case "p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "dl":
		w.blankLine()
	default:
		w.ensureLine()
	}
}

// result joins the lines, without runs of empty lines and surrounding empty lines.
func (w *textWriter) result() string {
	var out []string
	for _, line := range w.lines {
		if line == "" && (len(out) == 0 || out[len(out)-1] == "") {
			continue
		}
		out = append(out, line)
	}
	return strings.TrimRight(strings.Join(out, "\n"), "\n ")
}
