package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// replyPrefix matches the reply prefixes of common mail clients and languages, with an
// optional counter ("Re[2]:", "AW(3):") and white space before the colon.
var replyPrefix = regexp.MustCompile(`(?i)^\s*(re|aw|sv|svar|antw|antwort|vs|ref|rif|odp|ynt|atb|res|r|回复|回覆|答复)\s*(\[\d+\]|\(\d+\))?\s*[:：]`)

// ReplySubject is the subject of a reply to a mail with subject: "Re: " + subject,
// unless subject already starts with a reply prefix (Re:, RE:, AW:, Aw:, SV:, Antw:,
// VS:, Odp:, Re[2]: … in any case), in which case it is returned unchanged. Surrounding
// white space is trimmed.
func ReplySubject(subject string) string {
	subject = strings.TrimSpace(subject)
	if replyPrefix.MatchString(subject) {
		return subject
	}
	if subject == "" {
		return "Re:"
	}
	return "Re: " + subject
}

// maxReferences is the most ids ReplyReferences keeps.
const maxReferences = 20

// ReplyReferences is the References of a reply: the parent's References followed by the
// parent's Message-ID, without empty ids and duplicates (the first occurrence stays),
// angle brackets removed. Beyond 20 ids, the first (the thread's root, which clients use
// to group the thread) and the last 19 are kept.
func ReplyReferences(parentRefs []string, parentID string) []string {
	seen := map[string]bool{}
	var refs []string
	for _, ref := range append(append([]string(nil), parentRefs...), parentID) {
		ref = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(ref), "<"), ">")
		if ref == "" || seen[ref] {
			continue
		}
		seen[ref] = true
		refs = append(refs, ref)
	}
	if len(refs) > maxReferences {
		refs = append(refs[:1], refs[len(refs)-maxReferences+1:]...)
	}
	return refs
}

// NewMessageID is a Message-ID (without <>) made from seed: the first 32 hex digits of
// its SHA-256, "@", and domain in lower case ("localhost" when domain is empty). The same
// seed and domain give the same id, so a resend of a Matrix event keeps its id.
func NewMessageID(seed, domain string) string {
	sum := sha256.Sum256([]byte(seed))
	domain = strings.ToLower(strings.TrimSpace(domain))
	if domain == "" {
		domain = "localhost"
	}
	return hex.EncodeToString(sum[:16]) + "@" + domain
}
