package richtext

import (
	"html"
	"sort"
	"strings"
	"unicode"
)

// styleToHTML reads body as XEP-0393 Message Styling and writes it as HTML; styled reports
// whether body had any styling at all. The parser is conservative, as the XEP asks: a
// span directive opens only at the start of a line, after white space or right after a
// different opening directive, and not before white space or before itself (a run such as
// "**" is text); it closes at the first same directive on the same line that does not
// follow white space, with text between. Code spans and preformatted blocks are not
// styled further.
func styleToHTML(body string) (out string, styled bool) {
	var s styler
	s.blocks(strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n"))
	return s.b.String(), s.styled
}

type styler struct {
	b       strings.Builder
	styled  bool
	closers map[rune][]int // of the current line: ascending positions of each directive that may close a span
	quotes  int            // depth of the block quote being written
}

// blocks writes lines as preformatted blocks, block quotes and plain lines. Plain lines
// are separated by <br>; blank lines next to a block are dropped, as the block sets
// itself apart.
func (s *styler) blocks(lines []string) {
	var plain []string // plain lines since the last block
	afterBlock := false
	flush := func(beforeBlock bool) {
		for afterBlock && len(plain) > 0 && strings.TrimSpace(plain[0]) == "" {
			plain = plain[1:]
		}
		for beforeBlock && len(plain) > 0 && strings.TrimSpace(plain[len(plain)-1]) == "" {
			plain = plain[:len(plain)-1]
		}
		for i, l := range plain {
			if i > 0 {
				s.b.WriteString("<br>")
			}
			r := []rune(l)
			s.closers = indexClosers(r)
			s.spans(r, 0, len(r))
		}
		plain = nil
	}
	for i := 0; i < len(lines); {
		switch line := lines[i]; {
		case opensPre(line):
			flush(true)
			j := i + 1
			for j < len(lines) && strings.TrimRight(lines[j], " \t") != "```" {
				j++
			}
			s.b.WriteString("<pre><code>" + html.EscapeString(strings.Join(lines[i+1:j], "\n")) + "</code></pre>")
			s.styled, afterBlock = true, true
			i = j + 1
		case strings.HasPrefix(line, ">") && s.quotes < maxNesting:
			flush(true)
			var quoted []string
			for ; i < len(lines) && strings.HasPrefix(lines[i], ">"); i++ {
				quoted = append(quoted, strings.TrimPrefix(strings.TrimPrefix(lines[i], ">"), " "))
			}
			s.b.WriteString("<blockquote>")
			s.quotes++
			s.blocks(quoted)
			s.quotes--
			s.b.WriteString("</blockquote>")
			s.styled, afterBlock = true, true
		default:
			plain = append(plain, line)
			i++
		}
	}
	flush(false)
}

// directives maps span directives to HTML elements.
var directives = map[rune]string{'*': "strong", '_': "em", '~': "del", '`': "code"}

// spans writes line[from:to] with its spans.
func (s *styler) spans(line []rune, from, to int) {
	var text strings.Builder
	emit := func() {
		s.b.WriteString(html.EscapeString(text.String()))
		text.Reset()
	}
	for i := from; i < to; i++ {
		c := line[i]
		tag, ok := directives[c]
		if !ok || !canOpen(line, from, i) || i+1 >= to || unicode.IsSpace(line[i+1]) || line[i+1] == c {
			text.WriteRune(c)
			continue
		}
		end := -1
		if list := s.closers[c]; len(list) > 0 {
			if k := sort.SearchInts(list, i+2); k < len(list) && list[k] < to {
				end = list[k]
			}
		}
		if end < 0 {
			text.WriteRune(c)
			continue
		}
		emit()
		s.styled = true
		s.b.WriteString("<" + tag + ">")
		if c == '`' {
			s.b.WriteString(html.EscapeString(string(line[i+1 : end])))
		} else {
			s.spans(line, i+1, end)
		}
		s.b.WriteString("</" + tag + ">")
		i = end
	}
	emit()
}

// indexClosers finds the directives of line that may close a span (those that do not
// follow white space), so that finding a span's end does not rescan the line.
func indexClosers(line []rune) map[rune][]int {
	m := map[rune][]int{}
	for j := 1; j < len(line); j++ {
		if _, ok := directives[line[j]]; ok && !unicode.IsSpace(line[j-1]) {
			m[line[j]] = append(m[line[j]], j)
		}
	}
	return m
}

// canOpen reports whether the directive at line[i] may open a span: at the start of the
// line, after white space, or right after the different opening directive of the
// enclosing span (which starts at from).
func canOpen(line []rune, from, i int) bool {
	switch {
	case i == 0:
		return true
	case unicode.IsSpace(line[i-1]):
		return true
	default:
		return i == from && line[i-1] != line[i]
	}
}

// opensPre reports whether line opens a preformatted block: it starts with ``` and the
// rest, if any, is one word (a hint such as a language). A line like "```x``` y" is text,
// not a block that would swallow the rest of the message.
func opensPre(line string) bool {
	rest, ok := strings.CutPrefix(line, "```")
	return ok && !strings.ContainsAny(rest, "` \t")
}
