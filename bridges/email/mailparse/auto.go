package mailparse

import (
	"strings"
)

// isAuto reports whether the header marks mail sent by a program (RFC 3834
// Auto-Submitted, Precedence, mailing lists, Outlook's X-Auto-Response-Suppress).
func isAuto(h header) bool {
	if v := h.get("Auto-Submitted"); v != "" {
		kind, _, _ := strings.Cut(v, ";")
		if !strings.EqualFold(strings.TrimSpace(kind), "no") {
			return true
		}
	}
	switch strings.ToLower(strings.TrimSpace(h.get("Precedence"))) {
	case "bulk", "list", "junk":
		return true
	}
	return h.has("List-Id") || h.has("X-Auto-Response-Suppress")
}
