package mailparse

import (
	"regexp"
	"strings"

	"golang.org/x/net/html"
)

var (
	// originalMessage is Outlook's separator line, in the languages seen most.
	originalMessage = regexp.MustCompile(`(?i)^\s*-{3,}\s*(original message|ursprüngliche nachricht|message d'origine|oorspronkelijk bericht|messaggio originale|mensaje original|mensagem original|originalmeddelande)\s*-{3,}\s*$`)
	// outlookFrom, outlookSent and outlookSubject are the fields of the header block that
	// Outlook writes above the quoted mail ("From: … Sent: … To: … Subject: …").
	outlookFrom    = regexp.MustCompile(`(?i)^\s*\*?(from|von|de|van|da|från|fra):\*?\s`)
	outlookSent    = regexp.MustCompile(`(?i)^\s*\*?(sent|gesendet|envoyé|verzonden|inviato|enviado|skickat|sendt|date|datum):\*?\s`)
	outlookSubject = regexp.MustCompile(`(?i)^\s*\*?(subject|betreff|objet|onderwerp|oggetto|asunto|assunto|ämne|emne):\*?\s`)
	// attribution is the line a client puts above a quote: "On <date>, <who> wrote:".
	attribution = regexp.MustCompile(`(?i)^\s*(on\s.+\swrote|am\s.+\sschrieb\s.*|le\s.+\sa écrit|op\s.+\sschreef\s.*|el\s.+\sescribió|il\s.+\sha scritto)\s*:\s*$`)
)

// stripQuotedText removes quoted history from a plain text body; see Options.StripQuoted.
// It cuts only at the first sure sign of a quote and keeps the text when nothing would be
// left.
func stripQuotedText(s string) string {
	lines := strings.Split(s, "\n")
	cut := len(lines)
	for i := 1; i < len(lines); i++ {
		if (originalMessage.MatchString(lines[i]) || isOutlookBlock(lines, i)) && hasContent(lines[:i]) {
			cut = i
			if i > 0 && strings.Trim(lines[i-1], "_- ") == "" && strings.TrimSpace(lines[i-1]) != "" {
				cut = i - 1 // the rule of underscores above the block
			}
			break
		}
	}
	if c := trailingQuote(lines[:cut]); c < cut {
		cut = c
	}
	out := strings.TrimRight(strings.Join(lines[:cut], "\n"), " \t\n")
	if strings.TrimSpace(out) == "" {
		return s
	}
	return out
}

// hasContent reports whether lines hold more than blank lines and separator rules.
func hasContent(lines []string) bool {
	for _, line := range lines {
		if strings.Trim(line, "_- \t") != "" && !originalMessage.MatchString(line) {
			return true
		}
	}
	return false
}

// isOutlookBlock reports whether line i starts an Outlook header block: From, then Sent
// (or Date) and Subject within the next five lines.
func isOutlookBlock(lines []string, i int) bool {
	if !outlookFrom.MatchString(lines[i]) {
		return false
	}
	sent, subject := false, false
	for j := i + 1; j < len(lines) && j <= i+5; j++ {
		sent = sent || outlookSent.MatchString(lines[j])
		subject = subject || outlookSubject.MatchString(lines[j])
	}
	return sent && subject
}

// trailingQuote is the index of the first line of the quote that ends lines: a run of
// "> " and empty lines at the end, together with the attribution above it (one or two
// lines, as clients wrap it). It is len(lines) when lines do not end in a quote.
func trailingQuote(lines []string) int {
	end := len(lines)
	for end > 0 && strings.TrimSpace(lines[end-1]) == "" {
		end--
	}
	start, quoted := end, false
	for start > 0 {
		line := strings.TrimSpace(lines[start-1])
		if strings.HasPrefix(line, ">") {
			quoted = true
		} else if line != "" {
			break
		}
		start--
	}
	if !quoted {
		return len(lines)
	}
	// Skip blank lines above the quote, then look for the attribution.
	above := start
	for above > 0 && strings.TrimSpace(lines[above-1]) == "" {
		above--
	}
	switch {
	case above >= 1 && attribution.MatchString(lines[above-1]):
		return above - 1
	case above >= 2 && attribution.MatchString(lines[above-2]+" "+lines[above-1]):
		return above - 2
	}
	return start
}

// stripQuotedHTML removes quoted history from an HTML body in place; see
// Options.StripQuoted. When that would leave the body empty it removes nothing.
func stripQuotedHTML(root *html.Node) {
	var remove []*html.Node // ancestors before their descendants
	seen := map[*html.Node]bool{}
	add := func(n *html.Node) {
		if !seen[n] {
			seen[n] = true
			remove = append(remove, n)
		}
	}
	stack := []*html.Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue // removed with an Outlook header
		}
		if n.Type == html.ElementNode && n != root && isHTMLQuote(n) {
			if p := prevElement(n); isOutlookHeader(n) && p != nil && p.Data == "hr" {
				add(p) // the rule above Outlook's reply header
			}
			add(n)
			if isOutlookHeader(n) {
				// Outlook: everything after the reply header is the quoted mail.
				for s := n.NextSibling; s != nil; s = s.NextSibling {
					add(s)
				}
			}
			continue
		}
		for c := n.LastChild; c != nil; c = c.PrevSibling {
			stack = append(stack, c)
		}
	}
	if len(remove) == 0 {
		return
	}
	// Detach on a copy first, to see whether anything would be left.
	parents := make([]*html.Node, len(remove))
	nexts := make([]*html.Node, len(remove))
	for i, n := range remove {
		parents[i], nexts[i] = n.Parent, n.NextSibling
		if n.Parent != nil {
			n.Parent.RemoveChild(n)
		}
	}
	if strings.TrimSpace(textContent(root)) != "" || len(elements(root, "img")) > 0 {
		return
	}
	for i := len(remove) - 1; i >= 0; i-- { // nothing left: put everything back
		if parents[i] != nil {
			parents[i].InsertBefore(remove[i], nexts[i])
		}
	}
}

// isHTMLQuote reports whether n holds a quote: Gmail's gmail_quote, a cite blockquote
// (Apple Mail, Thunderbird), Thunderbird's attribution line, or Outlook's reply header.
func isHTMLQuote(n *html.Node) bool {
	for _, class := range strings.Fields(attr(n, "class")) {
		switch class {
		case "gmail_quote", "gmail_quote_container", "moz-cite-prefix":
			return true
		}
	}
	if n.Data == "blockquote" && strings.EqualFold(attr(n, "type"), "cite") {
		return true
	}
	return isOutlookHeader(n)
}

// isOutlookHeader reports whether n is the "From: … Sent: …" header that Outlook puts
// above the quoted mail.
func isOutlookHeader(n *html.Node) bool {
	id := attr(n, "id")
	return n.Data == "div" && (id == "divRplyFwdMsg" || id == "appendonsend")
}

func prevElement(n *html.Node) *html.Node {
	for p := n.PrevSibling; p != nil; p = p.PrevSibling {
		if p.Type == html.ElementNode {
			return p
		}
	}
	return nil
}
