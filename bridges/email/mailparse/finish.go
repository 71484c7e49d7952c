package mailparse

import (
	"strings"
)

// join combines the body pieces of several entities in order. text holds the text of
// the pieces that have text, with HTML-only pieces rendered as text among them; hasText
// is false when no piece has text of its own. html holds the HTML of all pieces, text-only
// ones escaped, or "" when no piece has HTML.
func join(pieces []piece) (text, html string, hasText bool) {
	hasHTML := false
	for _, p := range pieces {
		hasText = hasText || p.hasText
		hasHTML = hasHTML || p.html != ""
	}
	var texts, htmls []string
	for _, p := range pieces {
		switch {
		case p.hasText:
			texts = append(texts, strings.TrimRight(p.text, "\n"))
		case hasText && p.html != "":
			texts = append(texts, htmlToText(parseHTMLBody(p.html)))
		}
		if !hasHTML {
			continue
		}
		if p.html != "" {
			htmls = append(htmls, p.html)
		} else {
			htmls = append(htmls, plainToHTML(p.text))
		}
	}
	return strings.Join(texts, "\n\n"), strings.Join(htmls, "\n"), hasText
}

// finish turns the collected pieces and parts into the body fields of m: the sanitized
// HTML, the text (derived from the HTML when there is no text part), the inline parts the
// HTML shows and the attachments.
func (w *walker) finish(m *Mail, pieces []piece) {
	text, rawHTML, hasText := join(pieces)
	inline := w.inline
	if limit := w.opts.maxHTMLBytes(); len(rawHTML) > limit {
		// Text parts shown beside HTML ones are joined in as HTML too.
		m.FullHTML = rawHTML
		rawHTML = cutUTF8(rawHTML, limit)
	} else if w.htmlCut {
		m.FullHTML = strings.Join(w.htmlFull, "\n")
	}
	if rawHTML != "" {
		root := parseHTMLBody(rawHTML)
		if w.opts.StripQuoted {
			stripQuotedHTML(root)
		}
		cids := map[string]string{}
		for _, p := range inline {
			cids[strings.ToLower(p.ContentID)] = p.ContentID
		}
		fixImages(root, cids)
		fixLinks(root)
		if !hasText {
			text = htmlToText(root)
		}
		m.HTML = sanitizeHTML(root)
		if !strings.Contains(m.HTML, "<") {
			m.HTML = "" // nothing that plain text would not show as well
		}
		shown := shownCIDs(m.HTML)
		for _, p := range inline {
			if shown[p.ContentID] {
				m.Inline = append(m.Inline, p)
			} else {
				w.attachments = append(w.attachments, p)
			}
		}
	} else {
		w.attachments = append(w.attachments, inline...)
	}
	if w.opts.StripQuoted {
		text = stripQuotedText(text)
	}
	m.Text = strings.ToValidUTF8(strings.TrimRight(strings.TrimLeft(text, "\n"), " \t\n"), "\uFFFD")
	m.Attachments = w.attachments
	if w.bounce != nil {
		m.Bounce = w.bounce
		m.Auto = true
	}
}
