package mailparse

import (
	"strings"
)

// maxRecipients bounds the recipients read from one delivery-status report.
const maxRecipients = 1000

// parseDeliveryStatus reads the per-recipient fields of a message/delivery-status body
// (RFC 3464 §2.3): blocks of fields separated by empty lines, the first one about the
// message as a whole.
func parseDeliveryStatus(data []byte) []BounceRecipient {
	text := normalizeNewlines(fallbackUTF8(data))
	var out []BounceRecipient
	for i, block := range strings.Split(text, "\n\n") {
		if i == 0 && !strings.Contains(strings.ToLower(block), "final-recipient") {
			continue // the per-message fields
		}
		h, _ := parseHeader([]byte(block))
		who := h.get("Final-Recipient")
		if who == "" {
			who = h.get("Original-Recipient")
		}
		if who == "" {
			continue
		}
		out = append(out, BounceRecipient{
			Address:    strings.Trim(typedValue(who), "<>"),
			Action:     strings.ToLower(cleanText(h.get("Action"))),
			Status:     firstWord(h.get("Status")),
			Diagnostic: typedValue(h.get("Diagnostic-Code")),
		})
		if len(out) == maxRecipients {
			break
		}
	}
	return out
}

// typedValue is the value of an RFC 3464 typed field ("rfc822; a@b" → "a@b"), with its
// white space collapsed.
func typedValue(v string) string {
	if _, after, ok := strings.Cut(v, ";"); ok {
		v = after
	}
	return strings.Join(strings.Fields(cleanText(v)), " ")
}

// firstWord is the first word of v, such as the code of "5.1.1 (user unknown)".
func firstWord(v string) string {
	if f := strings.Fields(cleanText(v)); len(f) > 0 {
		return f[0]
	}
	return ""
}
