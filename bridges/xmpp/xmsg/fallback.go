package xmsg

import (
	"strings"
	"unicode/utf8"

	"mellium.im/xmpp/jid"
)

// StripFallback returns Body without the XEP-0428 fallback text for namespace ns: every
// range of a fallback with For == ns is cut (ranges are in code points, clamped to the
// body; overlapping or inverted ranges are harmless), and so are the newlines the cut
// leaves at the start or end. A fallback for ns without ranges cuts the whole body. With
// no fallback for ns, Body is returned unchanged.
func (m *Message) StripFallback(ns string) string {
	n := utf8.RuneCountInString(m.Body)
	var delta []int // by code point: ranges starting minus ranges ending there; allocated at the first fallback for ns
	found := false
	for _, f := range m.Fallbacks {
		if f.For != ns {
			continue
		}
		found = true
		if len(f.Ranges) == 0 {
			return ""
		}
		if delta == nil {
			delta = make([]int, n+1)
		}
		for _, r := range f.Ranges {
			start, end := max(0, min(r.Start, n)), max(0, min(r.End, n))
			if start < end {
				delta[start]++
				delta[end]--
			}
		}
	}
	if !found {
		return m.Body
	}
	cut := make([]bool, n)
	depth := 0
	for i := range cut {
		depth += delta[i]
		cut[i] = depth > 0
	}
	var b strings.Builder
	i := 0
	for _, r := range m.Body {
		if !cut[i] {
			b.WriteRune(r)
		}
		i++
	}
	out := b.String()
	if n > 0 && cut[0] {
		out = strings.TrimLeft(out, "\n")
	}
	if n > 0 && cut[n-1] {
		out = strings.TrimRight(out, "\n")
	}
	return out
}

// StanzaIDBy returns the XEP-0359 stanza id that by assigned (compared as bare JIDs), or
// "" when there is none.
func (m *Message) StanzaIDBy(by jid.JID) string {
	for _, s := range m.StanzaIDs {
		if s.By.Bare().Equal(by.Bare()) {
			return s.ID
		}
	}
	return ""
}

// ReplyFallback builds the XEP-0461 quote for a reply to nick's message quoted:
//
//	> Nick wrote:
//	> first line
//	> second line
//
// and returns it with the Range it occupies when it is prepended to the reply's body (as
// the Fallback for NSReply). Without nick the "wrote:" line is left out.
func ReplyFallback(nick, quoted string) (text string, r Range) {
	var b strings.Builder
	if nick != "" {
		b.WriteString("> ")
		b.WriteString(strings.ReplaceAll(nick, "\n", " "))
		b.WriteString(" wrote:\n")
	}
	quoted = strings.Trim(strings.ReplaceAll(quoted, "\r\n", "\n"), "\n")
	for line := range strings.SplitSeq(quoted, "\n") {
		if quoted == "" {
			break
		}
		if line == "" {
			b.WriteString(">\n")
			continue
		}
		b.WriteString("> ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	text = b.String()
	return text, Range{Start: 0, End: utf8.RuneCountInString(text)}
}
