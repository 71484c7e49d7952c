package mailparse

import (
	"strings"
)

// maxRecipients bounds the recipients read from one delivery-status report.
const maxRecipients = 1000

// parseDeliveryStatus reads a message/delivery-status body (RFC 3464 §2.3): blocks of
// fields separated by empty lines, the first one about the message as a whole (its
// Original-Envelope-Id is returned), the others per recipient.
func parseDeliveryStatus(data []byte) (envelopeID string, out []BounceRecipient) {
	text := normalizeNewlines(fallbackUTF8(data))
	for i, block := range strings.Split(text, "\n\n") {
		h, _ := parseHeader([]byte(block))
		if i == 0 {
			envelopeID = strings.Join(strings.Fields(cleanText(h.get("Original-Envelope-Id"))), "")
			if !strings.Contains(strings.ToLower(block), "final-recipient") {
				continue // the per-message fields
			}
		}
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
	return envelopeID, out
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
