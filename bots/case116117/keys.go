package case116117

import (
	"fmt"
	"strings"
)

// Portal keys: a link's admin room and its case rooms.
//
//	admin:<link>
//	case:<link>:<sharedIncidentId>
type portalKey struct {
	link   string
	caseID string // empty for the admin room
}

func (k portalKey) String() string {
	if k.caseID == "" {
		return "admin:" + k.link
	}
	return "case:" + k.link + ":" + k.caseID
}

func parsePortalKey(s string) (portalKey, bool) {
	if rest, ok := strings.CutPrefix(s, "admin:"); ok && rest != "" {
		return portalKey{link: rest}, true
	}
	if rest, ok := strings.CutPrefix(s, "case:"); ok {
		link, caseID, ok := strings.Cut(rest, ":")
		return portalKey{link: link, caseID: caseID}, ok && link != "" && caseID != ""
	}
	return portalKey{}, false
}

// Key-value rows of a link (the store scopes them to the module):
//
//	rx:<link>:<local sequence, 20 digits> a received message, stored before the commit
//	rxseq:<link>                        the next local sequence number of rx rows
//	in:<link>:<sequenceId, 20 digits>   legacy: a received message keyed by the UCRM's
//	                                    sequenceId (read and drained, never written)
//	done:<link>:<messageId>             a received message that was processed
//	case:<link>:<sharedIncidentId>      a case (caseRecord, JSON)
//	out:<link>:<messageId>              a message to send or sent (outgoing, JSON)
//	pend:<link>:<20 digits>:<messageId> the send queue, in order
func rxKey(link string, n int64) string  { return fmt.Sprintf("rx:%s:%020d", link, n) }
func rxPrefix(link string) string        { return "rx:" + link + ":" }
func rxSeqKey(link string) string        { return "rxseq:" + link }
func legacyInPrefix(link string) string  { return "in:" + link + ":" }
func doneKey(link, msgID string) string  { return "done:" + link + ":" + msgID }
func caseKey(link, caseID string) string { return "case:" + link + ":" + caseID }
func outKey(link, msgID string) string   { return "out:" + link + ":" + msgID }
func pendKey(link string, n int64, msgID string) string {
	return fmt.Sprintf("pend:%s:%020d:%s", link, n, msgID)
}
