package sipua

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// timeoutReason is the reason of the Result of a transaction without a
// final answer.
const timeoutReason = "Request Timeout (no answer from the SIP peer)"

// Send sends out through the proxy as one client transaction (RFC 3261
// retransmissions and timers are sipgo's) and returns the final answer;
// provisional answers are skipped. A 401/407 is answered once with digest
// credentials when Config.Register is set. No final answer in time gives
// Result{Code: 408}, nil; a transport failure gives an error. ctx bounds
// the wait.
func (u *UA) Send(ctx context.Context, out Outgoing) (Result, error) {
	st := u.state()
	if st == nil {
		return Result{}, ErrNotRunning
	}
	req, err := u.buildRequest(st, out)
	if err != nil {
		return Result{}, err
	}
	res, err := u.transact(ctx, st, req)
	if err != nil {
		return Result{}, err
	}
	return toResult(res), nil
}

// transact runs req as a client transaction and answers one digest
// challenge. A timeout becomes a synthetic 408 response.
func (u *UA) transact(ctx context.Context, st *runState, req *sip.Request) (*sip.Response, error) {
	log := zerolog.Ctx(ctx)
	method, callID := string(req.Method), callIDOf(req)
	tx, err := st.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, fmt.Errorf("sipua: send %s (Call-ID %s) to %s: %w", method, callID, u.proxy.hostPort, err)
	}
	res, err := waitFinal(ctx, tx)
	if err == nil && (res.StatusCode == 401 || res.StatusCode == 407) && u.cfg.Register != nil {
		log.Debug().Str("method", method).Str("call_id", callID).Int("status", res.StatusCode).Msg("SIP request challenged; answering with digest")
		r := u.cfg.Register
		user := r.Username
		if user == "" {
			aor, _ := parseAOR(r.AOR)
			user = aor.User
		}
		tx, err = st.client.TransactionDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: r.Password})
		if err != nil {
			return nil, fmt.Errorf("sipua: answer the %d challenge to %s (Call-ID %s): %w", res.StatusCode, method, callID, err)
		}
		res, err = waitFinal(ctx, tx)
	}
	if errors.Is(err, sip.ErrTransactionTimeout) {
		log.Debug().Str("method", method).Str("call_id", callID).Msg("SIP transaction timed out")
		res := sip.NewResponseFromRequest(req, 408, timeoutReason, nil)
		if to := res.To(); to != nil {
			to.Params.Remove("tag") // nobody answered: no peer tag
		}
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sipua: %s (Call-ID %s) via %s: %w", method, callID, u.proxy.hostPort, err)
	}
	log.Debug().Str("method", method).Str("call_id", callID).Int("status", res.StatusCode).Msg("SIP request answered")
	return res, nil
}

// waitFinal waits for the final response of tx and terminates it.
func waitFinal(ctx context.Context, tx sip.ClientTransaction) (*sip.Response, error) {
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			// A final answer may have raced with the end of the transaction.
			select {
			case res := <-tx.Responses():
				if !res.IsProvisional() {
					return res, nil
				}
			default:
			}
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, sip.ErrTransactionTerminated
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func toResult(res *sip.Response) Result {
	r := Result{Code: res.StatusCode, Reason: res.Reason}
	if to := res.To(); to != nil {
		r.ToTag, _ = to.Params.Get("tag")
	}
	for _, h := range res.Headers() {
		r.Headers = append(r.Headers, Header{Name: h.Name(), Value: h.Value()})
	}
	return r
}

// buildRequest turns out into a sipgo request addressed to the proxy.
func (u *UA) buildRequest(st *runState, out Outgoing) (*sip.Request, error) {
	bad := func(format string, args ...any) (*sip.Request, error) {
		return nil, fmt.Errorf("%w: %s", ErrBadOutgoing, fmt.Sprintf(format, args...))
	}
	method := sip.RequestMethod(strings.ToUpper(out.Method))
	if method == "" || method == sip.ACK || method == sip.INVITE || method == sip.CANCEL {
		return bad("method %q (ACK, INVITE and CANCEL are not supported)", out.Method)
	}
	var ruri sip.Uri
	if err := sip.ParseUri(out.RequestURI, &ruri); err != nil {
		return bad("request URI %q: %v", out.RequestURI, err)
	}
	from, err := parseNameAddr(out.From)
	if err != nil {
		return bad("from: %v", err)
	}
	to, err := parseNameAddr(out.To)
	if err != nil {
		return bad("to: %v", err)
	}
	req := sip.NewRequest(method, ruri)
	fromH := &sip.FromHeader{DisplayName: out.From.Display, Address: from, Params: sip.NewParams()}
	tag := out.From.Tag
	if tag == "" {
		tag = sip.GenerateTagN(16)
	}
	fromH.Params.Add("tag", tag)
	toH := &sip.ToHeader{DisplayName: out.To.Display, Address: to, Params: sip.NewParams()}
	if out.To.Tag != "" {
		toH.Params.Add("tag", out.To.Tag)
	}
	callID := out.CallID
	if callID == "" {
		callID = uuid.NewString()
	}
	if strings.ContainsAny(callID, " \t\r\n") {
		return bad("call ID %q has white space", callID)
	}
	seq := out.CSeq
	if seq == 0 {
		seq = 1
	}
	cid := sip.CallIDHeader(callID)
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(fromH)
	req.AppendHeader(toH)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	req.AppendHeader(&maxFwd)
	if len(out.Route) > 0 {
		for i, r := range out.Route {
			var ru sip.Uri
			if _, err := sip.ParseAddressValue(r, &ru, nil); err != nil {
				return bad("route[%d] %q: %v", i, r, err)
			}
			req.AppendHeader(&sip.RouteHeader{Address: ru})
		}
	} else {
		proxy := *u.proxy.uri.Clone()
		proxy.UriParams = proxy.UriParams.Clone()
		if proxy.UriParams == nil {
			proxy.UriParams = sip.NewParams()
		}
		proxy.UriParams.Add("lr", "")
		req.AppendHeader(&sip.RouteHeader{Address: proxy})
	}
	req.AppendHeader(&sip.ContactHeader{Address: *st.contact.Clone()})
	req.AppendHeader(sip.NewHeader("User-Agent", u.cfg.UserAgent))
	for _, h := range out.Headers {
		if coreHeader(h.Name) || strings.EqualFold(h.Name, "contact") || strings.EqualFold(h.Name, "m") {
			return bad("header %q is set by the UA", h.Name)
		}
		if !validHeader(h) {
			return bad("header %q is malformed", h.Name)
		}
		req.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	if len(out.Body) > 0 {
		if out.ContentType == "" {
			return bad("a body needs a content type")
		}
		ct := sip.ContentTypeHeader(out.ContentType)
		req.AppendHeader(&ct)
	}
	req.SetBody(out.Body)
	req.SetTransport(st.transport)
	req.SetDestination(u.proxy.hostPort)
	if st.transport == "UDP" && len(req.String())+udpViaReserve > udpMaxRequest {
		// RFC 3261 18.1.1: a request over 1300 bytes goes over a
		// congestion-controlled transport (sipgo refuses to write UDP
		// messages over 1300 bytes anyway); same proxy host and port.
		req.SetTransport("TCP")
	} else if st.udpLaddr != nil {
		req.Laddr = *st.udpLaddr
	}
	return req, nil
}

// udpMaxRequest is RFC 3261's 1300-byte bound for requests over UDP;
// udpViaReserve is room for the Via header added when sending.
const (
	udpMaxRequest = 1300
	udpViaReserve = 120
)

// parseNameAddr parses the URI of a From/To address.
func parseNameAddr(a Addr) (sip.Uri, error) {
	var uri sip.Uri
	if err := sip.ParseUri(strings.TrimSuffix(strings.TrimPrefix(a.URI, "<"), ">"), &uri); err != nil {
		return sip.Uri{}, fmt.Errorf("%q: %w", a.URI, err)
	}
	if strings.ContainsAny(a.Display, "\r\n\"") || strings.ContainsAny(a.Tag, " \t\r\n;,") {
		return sip.Uri{}, fmt.Errorf("%q: bad display name or tag", a.URI)
	}
	return uri, nil
}
