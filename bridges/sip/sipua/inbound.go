package sipua

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// allowHeader is the Allow value of OPTIONS and 405 answers.
const allowHeader = "MESSAGE, SUBSCRIBE, NOTIFY, OPTIONS"

// forbiddenReason is the reason phrase of the 403 to untrusted sources.
const forbiddenReason = "Forbidden: only the SIP proxy may send to the bridge"

// refusal is an inbound request the UA answers itself.
type refusal struct {
	code    int
	reason  string
	headers []Header
}

func (r *refusal) Error() string { return fmt.Sprintf("%d %s", r.code, r.reason) }

func refuse(code int, reason string, headers ...Header) *refusal {
	return &refusal{code: code, reason: reason, headers: headers}
}

func allowedMethod(m sip.RequestMethod) bool {
	switch m {
	case sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY, sip.OPTIONS:
		return true
	}
	return false
}

// parseInbound parses one raw SIP message with the UA's parser (the same
// size limit as the listeners) and runs the checks of checkRequest. The
// error is a *refusal when the UA would answer the request itself.
func (u *UA) parseInbound(raw []byte) (*Request, error) {
	msg, err := u.parser.ParseSIP(raw)
	if err != nil {
		return nil, fmt.Errorf("sipua: parse: %w", err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return nil, errors.New("sipua: parse: not a request")
	}
	return u.checkRequest(req)
}

// checkRequest runs the checks that need no source address and no load
// information, in this order: method (405), From/To/Call-ID/CSeq (400),
// Max-Forwards (483), Request-URI scheme (416), body size (413), domain of
// out-of-dialog requests (404, not for OPTIONS).
func (u *UA) checkRequest(req *sip.Request) (*Request, error) {
	if !allowedMethod(req.Method) {
		return nil, refuse(405, "Method Not Allowed", Header{"Allow", allowHeader})
	}
	from := req.From()
	if from == nil {
		return nil, refuse(400, "Bad Request (missing or invalid From header)")
	}
	fromTag, _ := from.Params.Get("tag")
	if fromTag == "" {
		return nil, refuse(400, "Bad Request (From header has no tag)")
	}
	to := req.To()
	if to == nil {
		return nil, refuse(400, "Bad Request (missing or invalid To header)")
	}
	callID := req.CallID()
	if callID == nil || strings.TrimSpace(callID.Value()) == "" {
		return nil, refuse(400, "Bad Request (missing or invalid Call-ID header)")
	}
	cseq := req.CSeq()
	if cseq == nil {
		return nil, refuse(400, "Bad Request (missing or invalid CSeq header)")
	}
	if cseq.MethodName != req.Method {
		return nil, refuse(400, "Bad Request (CSeq method does not match the request)")
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return nil, refuse(483, "Too Many Hops")
	}
	if s := strings.ToLower(req.Recipient.Scheme); s != "sip" && s != "sips" {
		return nil, refuse(416, "Unsupported URI Scheme")
	}
	if len(req.Body()) > u.cfg.MaxBodyBytes {
		return nil, refuse(413, fmt.Sprintf("Request Entity Too Large (body over %d bytes)", u.cfg.MaxBodyBytes))
	}
	toTag, _ := to.Params.Get("tag")
	if toTag == "" && req.Method != sip.OPTIONS && !u.ownHost(req.Recipient.Host) {
		return nil, refuse(404, "Not Found (not the bridge's SIP domain)")
	}

	out := &Request{
		Method:     string(req.Method),
		RequestURI: req.Recipient.String(),
		From:       Addr{URI: from.Address.String(), Display: from.DisplayName, Tag: fromTag},
		To:         Addr{URI: to.Address.String(), Display: to.DisplayName, Tag: toTag},
		CallID:     callID.Value(),
		CSeq:       cseq.SeqNo,
		Body:       req.Body(),
		Source:     req.Source(),
		Transport:  strings.ToLower(req.Transport()),
	}
	if ct := req.ContentType(); ct != nil {
		out.ContentType = ct.Value()
	}
	if c := req.Contact(); c != nil {
		out.Contact = c.Address.String()
	}
	for _, h := range req.GetHeaders("Record-Route") {
		out.RecordRoute = append(out.RecordRoute, h.Value())
	}
	for _, h := range req.Headers() {
		out.Headers = append(out.Headers, Header{Name: h.Name(), Value: h.Value()})
	}
	return out, nil
}

// trusted reports whether the host of source (host:port) is a trusted peer.
func (u *UA) trusted(source string, nets []*net.IPNet) bool {
	host, _, err := net.SplitHostPort(source)
	if err != nil {
		host = source
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil {
		return false
	}
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// localTag is the To tag of answers to an out-of-dialog request: derived
// from Call-ID and From tag so that a retransmission sipgo did not absorb
// (e.g. one arriving after the server transaction ended) gets the same tag.
func localTag(callID, fromTag string) string {
	sum := sha256.Sum256([]byte("sipua-tag\x00" + callID + "\x00" + fromTag))
	return hex.EncodeToString(sum[:8])
}

// ownHost reports whether host names the bridge: its SIP domain, or the host of its
// Contact (where a registrar sends requests for a registered trunk: the Request-URI is
// then the Contact, and the To header names the recipient).
func (u *UA) ownHost(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, strings.Trim(u.cfg.Domain, "[]")) {
		return true
	}
	if st := u.state(); st != nil {
		return strings.EqualFold(host, strings.Trim(st.contact.Host, "[]"))
	}
	return false
}
