package sipua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// serve is the sipgo handler of every inbound request. sipgo calls it in
// its own goroutine per new server transaction; retransmissions of the
// request are absorbed by the transaction while serve runs.
func (u *UA) serve(ctx context.Context, nets []*net.IPNet, req *sip.Request, tx sip.ServerTransaction) {
	log := zerolog.Ctx(ctx).With().Str("method", string(req.Method)).Str("call_id", callIDOf(req)).Logger()
	res := u.answer(ctx, &log, nets, req)
	if err := tx.Respond(res); err != nil {
		log.Warn().Err(err).Int("status", res.StatusCode).Msg("failed to send SIP response")
		return
	}
	log.Debug().Int("status", res.StatusCode).Str("source", req.Source()).Msg("SIP request answered")
}

// answer decides the response to req: the UA's own checks first, then the
// Handler, whose answer is built only after ServeSIP returned.
func (u *UA) answer(ctx context.Context, log *zerolog.Logger, nets []*net.IPNet, req *sip.Request) *sip.Response {
	if !u.trusted(req.Source(), nets) {
		log.Warn().Str("source", req.Source()).Msg("SIP request from an untrusted source refused")
		return u.response(req, 403, forbiddenReason, nil, "", nil, "")
	}
	in, err := u.checkRequest(req)
	if err != nil {
		var r *refusal
		if !errors.As(err, &r) {
			r = refuse(400, "Bad Request")
		}
		log.Debug().Int("status", r.code).Str("reason", r.reason).Msg("SIP request refused")
		return u.response(req, r.code, r.reason, r.headers, "", nil, "")
	}
	if req.Method == sip.OPTIONS {
		return u.response(req, 200, "OK", []Header{{"Allow", allowHeader}, {"Accept", u.cfg.Accept}}, "", nil, "")
	}

	select {
	case u.sem <- struct{}{}:
	default:
		log.Warn().Int("max_in_flight", u.cfg.MaxInFlight).Msg("too many SIP requests in flight; answering 503")
		return u.response(req, 503, "Service Unavailable (too many requests in flight)", []Header{{"Retry-After", "5"}}, "", nil, "")
	}
	defer func() { <-u.sem }()
	u.mu.Lock()
	if u.stopping {
		u.mu.Unlock()
		return u.response(req, 503, "Service Unavailable (shutting down)", []Header{{"Retry-After", "5"}}, "", nil, "")
	}
	u.handlers.Add(1)
	u.mu.Unlock()
	defer u.handlers.Done()

	out := u.callHandler(ctx, log, in)
	code, reason := out.Code, out.Reason
	if code < 200 || code > 699 {
		log.Error().Int("handler_code", code).Msg("SIP handler gave no final status code; answering 500")
		code, reason = 500, "Server Internal Error (handler gave no final answer)"
	}
	if reason = SafeReason(reason); reason == "" {
		reason = reasonPhrase(code)
	}
	headers := out.Headers
	if req.Method == sip.SUBSCRIBE && code < 300 && getHeader(headers, "Contact") == "" {
		// RFC 6665 4.2.1.1: a 2xx to SUBSCRIBE carries the notifier's Contact.
		if c := u.Contact(); c != "" {
			headers = append(append([]Header(nil), headers...), Header{"Contact", "<" + c + ">"})
		}
	}
	return u.response(req, code, reason, headers, out.ContentType, out.Body, out.ToTag)
}

// callHandler runs ServeSIP with a context bounded by HandlerTimeout; a
// panic becomes a 500.
func (u *UA) callHandler(ctx context.Context, log *zerolog.Logger, in *Request) (out Response) {
	hctx, cancel := context.WithTimeout(ctx, u.cfg.HandlerTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			log.Error().Str("panic", fmt.Sprint(p)).Msg("SIP handler panicked; answering 500")
			out = Response{Code: 500, Reason: "Server Internal Error"}
		}
	}()
	return u.h.ServeSIP(hctx, in)
}

// response builds the answer to req. Every answer to an out-of-dialog
// request carries the same To tag: toTag, or one derived from Call-ID and
// From tag.
// SafeReason is reason as it can stand in a status line: one line of printable text, at
// most 200 bytes of valid UTF-8 (a handler's reason may quote what a peer sent).
func SafeReason(reason string) string {
	reason = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, reason)
	if len(reason) > 200 {
		reason = reason[:200]
	}
	return strings.ToValidUTF8(reason, "")
}

func (u *UA) response(req *sip.Request, code int, reason string, headers []Header, contentType string, body []byte, toTag string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if reqTo, to := req.To(), res.To(); reqTo != nil && to != nil && !reqTo.Params.Has("tag") {
		if toTag == "" {
			fromTag := ""
			if f := req.From(); f != nil {
				fromTag, _ = f.Params.Get("tag")
			}
			toTag = localTag(callIDOf(req), fromTag)
		}
		to.Params.Add("tag", toTag)
	}
	if len(body) > 0 && contentType != "" {
		ct := sip.ContentTypeHeader(contentType)
		res.AppendHeader(&ct)
	}
	for _, h := range headers {
		if coreHeader(h.Name) || !validHeader(h) {
			continue
		}
		res.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	if res.GetHeader("Server") == nil {
		res.AppendHeader(sip.NewHeader("Server", u.cfg.UserAgent))
	}
	return res
}

func callIDOf(req *sip.Request) string {
	if c := req.CallID(); c != nil {
		return c.Value()
	}
	return ""
}

// validHeader refuses names and values that would break the message.
func validHeader(h Header) bool {
	if h.Name == "" {
		return false
	}
	for _, r := range h.Name {
		if r <= ' ' || r >= 0x7f || r == ':' {
			return false
		}
	}
	for _, r := range h.Value {
		if r == '\r' || r == '\n' || r == 0 {
			return false
		}
	}
	return true
}
