package sipua

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/rs/zerolog"
)

// Registration timing.
const (
	registerRetryMin   = time.Second
	registerRetryMax   = 5 * time.Minute
	unregisterTimeout  = 2 * time.Second
	registerRefreshPct = 80
)

// registerLoop keeps Config.Register's AOR registered until ctx ends, then
// unregisters (Expires 0) with a short timeout of its own.
func (u *UA) registerLoop(ctx context.Context) {
	log := zerolog.Ctx(ctx)
	backoff := registerRetryMin
	for {
		granted, err := u.register(ctx, u.cfg.Register.Expires)
		var wait time.Duration
		u.mu.Lock()
		if err != nil {
			u.regOK, u.regErr = false, err
			wait = backoff
			backoff = min(2*backoff, registerRetryMax)
		} else {
			u.regOK, u.regErr = true, nil
			wait = granted * registerRefreshPct / 100
			backoff = registerRetryMin
		}
		u.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Dur("retry_in", wait).Msg("SIP registration failed")
		} else if err == nil {
			log.Debug().Dur("granted", granted).Dur("refresh_in", wait).Msg("SIP registration refreshed")
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			u.unregister(ctx)
			return
		case <-t.C:
		}
	}
}

func (u *UA) unregister(ctx context.Context) {
	u.mu.Lock()
	was := u.regOK
	u.regOK = false
	u.mu.Unlock()
	if !was {
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unregisterTimeout)
	defer cancel()
	if _, err := u.register(uctx, 0); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("SIP unregistration failed (ignored)")
	}
}

// register sends one REGISTER (with digest when challenged) and returns
// the expiry the registrar granted.
func (u *UA) register(ctx context.Context, expires time.Duration) (time.Duration, error) {
	st := u.state()
	if st == nil {
		return 0, ErrNotRunning
	}
	aor, err := parseAOR(u.cfg.Register.AOR)
	if err != nil {
		return 0, fmt.Errorf("sipua: register: %w", err)
	}
	u.mu.Lock()
	u.regCSeq++
	seq := u.regCSeq
	u.mu.Unlock()

	ruri := sip.Uri{Scheme: aor.Scheme, Host: aor.Host, Port: aor.Port}
	req := sip.NewRequest(sip.REGISTER, ruri)
	addr := sip.Uri{Scheme: aor.Scheme, User: aor.User, Host: aor.Host}
	from := &sip.FromHeader{Address: addr, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	cid := sip.CallIDHeader(u.regCall)
	maxFwd := sip.MaxForwardsHeader(70)
	proxy := *u.proxy.uri.Clone()
	proxy.UriParams = proxy.UriParams.Clone()
	if proxy.UriParams == nil {
		proxy.UriParams = sip.NewParams()
	}
	proxy.UriParams.Add("lr", "")
	contact := *st.contact.Clone()
	contact.User = aor.User
	secs := int(expires / time.Second)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: addr, Params: sip.NewParams()})
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.REGISTER})
	req.AppendHeader(&maxFwd)
	req.AppendHeader(&sip.RouteHeader{Address: proxy})
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(secs)))
	req.AppendHeader(sip.NewHeader("User-Agent", u.cfg.UserAgent))
	req.SetBody(nil)
	req.SetTransport(st.transport)
	req.SetDestination(u.proxy.hostPort)
	if st.udpLaddr != nil {
		req.Laddr = *st.udpLaddr
	}

	res, err := u.transact(ctx, st, req)
	if err != nil {
		return 0, err
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return 0, fmt.Errorf("sipua: REGISTER %s: %d %s", aor.User+"@"+aor.Host, res.StatusCode, res.Reason)
	}
	return grantedExpiry(res, expires), nil
}

// grantedExpiry reads the expiry from the first Contact's expires
// parameter or the Expires header; requested when neither is usable.
func grantedExpiry(res *sip.Response, requested time.Duration) time.Duration {
	parse := func(s string) (time.Duration, bool) {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return 0, false
		}
		return time.Duration(n) * time.Second, true
	}
	if c := res.Contact(); c != nil {
		if v, ok := c.Params.Get("expires"); ok {
			if d, ok := parse(v); ok {
				return d
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if d, ok := parse(h.Value()); ok {
			return d
		}
	}
	return requested
}
