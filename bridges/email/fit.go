package email

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"maunium.net/go/mautrix/event"
)

// maxContentBytes bounds the JSON of an event's content. A homeserver refuses an event
// over 65,536 bytes as it stores it: the content plus the room, sender, auth and previous
// events, hashes and signatures (1-2 KiB), and the outbox adds a transaction ID to the
// content. The size is measured with encoding/json, which escapes <, > and & as six bytes
// each, so the HTML of a formatted_body counts more than it costs in the event.
const maxContentBytes = 56 << 10

// Notes appended to a trimmed event.
const (
	trimNoteMail   = "✂️ This mail is longer than a Matrix message can be: it is shortened here, and the whole mail follows in this thread as a file."
	trimNoteNotice = "✂️ Shortened; the whole text follows as a file."
)

// contentSize is the size of c as JSON.
func contentSize(c *event.MessageEventContent) int {
	raw, err := json.Marshal(c)
	if err != nil {
		return 0
	}
	return len(raw)
}

// fitContent makes c fit in limit bytes of JSON. When c is larger, or force is set, its
// formatted body is dropped (htmlDropped) and, when still needed, its body is cut at a
// line or word end (bodyCut); note is then appended to the body. The caller posts what
// was dropped or cut as a file.
func fitContent(c *event.MessageEventContent, limit int, note string, force bool) (htmlDropped, bodyCut bool) {
	if !force && contentSize(c) <= limit {
		return false, false
	}
	if c.FormattedBody != "" {
		c.FormattedBody, c.Format = "", ""
		htmlDropped = true
	}
	full := c.Body
	suffix := "\n\n" + note
	c.Body = full + suffix
	if contentSize(c) <= limit {
		return htmlDropped, false
	}
	// The longest prefix that fits: the size grows with the prefix.
	lo, hi := 0, len(full)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		c.Body = cutText(full, mid) + " …" + suffix
		if contentSize(c) <= limit {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	cut := cutText(full, lo)
	if i := strings.LastIndexAny(cut, "\n "); i > len(cut)-200 && i > 0 {
		cut = cut[:i]
	}
	c.Body = strings.TrimRight(cut, " \n") + " …" + suffix
	return htmlDropped, true
}

// cutText is the longest prefix of s of at most n bytes that does not split a rune.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
