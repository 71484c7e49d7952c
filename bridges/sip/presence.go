package sip

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/sip/sipmsg"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipua"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
)

// Presence both ways (RFC 3856, PIDF RFC 3863):
//   - SIP watchers SUBSCRIBE to a Matrix user's SIP URI; the bridge accepts, NOTIFYs the
//     user's current presence at once and again on every change. Subscriptions live in
//     memory and in the store ("sub:<call-id>"), so they outlive a restart until they
//     expire;
//   - the bridge SUBSCRIBEs, through the proxy's presence server, to every SIP user it has
//     a DM with ("watch:<aor>"), renews before expiry, and mirrors each NOTIFY onto the
//     ghost's Matrix presence.

const (
	maxSubscription   = time.Hour // the longest subscription granted to a watcher
	watchExpires      = 10 * time.Minute
	presenceWatcherLP = "presence" // the bridge's own watcher identity: presence@<domain>
)

// subscription is a SIP watcher's subscription to a Matrix user's presence.
type subscription struct {
	CallID  string    `json:"call_id"`
	User    id.UserID `json:"user"`
	Watcher string    `json:"watcher"` // the watcher's URI (From)
	Tag     string    `json:"tag"`     // the watcher's From tag
	OurTag  string    `json:"our_tag"` // our To tag
	Contact string    `json:"contact"` // where NOTIFYs go
	Route   []string  `json:"route"`   // the Record-Route set
	Expires time.Time `json:"expires"` // end of the subscription
	CSeq    uint32    `json:"cseq"`    // our last NOTIFY's CSeq
}

type presenceState struct {
	mu     sync.Mutex
	subs   map[string]*subscription // by Call-ID
	loaded bool
	matrix map[id.UserID]event.Presence // the Matrix users' last known presence
	// watching is the bridge's current subscription per watched SIP user, by Call-ID;
	// NOTIFYs of any other dialog (an older subscription, one from before a restart) get
	// 481, which ends them at the presence server.
	watching map[string]sipuri.AOR
}

func (p *presenceState) init() {
	p.subs = map[string]*subscription{}
	p.matrix = map[id.UserID]event.Presence{}
	p.watching = map[string]sipuri.AOR{}
}

// loadSubs reads the stored subscriptions once.
func (b *Bridge) loadSubs(ctx context.Context) {
	p := &b.presence
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.loaded {
		return
	}
	rows, err := b.host.Store().ListKV(ctx, "sub:", 0)
	if err != nil {
		return
	}
	p.loaded = true
	for _, kv := range rows {
		var s subscription
		if json.Unmarshal([]byte(kv.Value), &s) == nil && time.Now().Before(s.Expires) {
			p.subs[s.CallID] = &s
		} else {
			_ = b.host.Store().DeleteKV(ctx, kv.Key)
		}
	}
}

// serveSubscribe accepts a watcher's subscription to a Matrix user's presence.
func (b *Bridge) serveSubscribe(ctx context.Context, req *sipua.Request) sipua.Response {
	if ev, _, _ := strings.Cut(req.Get("Event"), ";"); strings.TrimSpace(ev) != "presence" {
		return sipua.Response{Code: 489, Reason: "Bad Event", Headers: []sipua.Header{{Name: "Allow-Events", Value: "presence"}}}
	}
	if !*b.cfg.Presence {
		return answer(489, "Bad Event: presence is off on this bridge")
	}
	b.loadSubs(ctx)
	expires := maxSubscription
	if v := req.Get("Expires"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return answer(400, "Bad Request: Expires is not a number")
		}
		expires = min(time.Duration(n)*time.Second, maxSubscription)
	}
	p := &b.presence
	var in *inbound
	if req.To.Tag != "" {
		// A refresh or an unsubscribe (Expires: 0) within the dialog: its Request-URI is
		// our Contact, which names no Matrix user, so the dialog tells whose presence it is.
		p.mu.Lock()
		s, ok := p.subs[req.CallID]
		if !ok || s.OurTag != req.To.Tag || s.Tag != req.From.Tag {
			p.mu.Unlock()
			return answer(481, "Call/Transaction Does Not Exist")
		}
		in = &inbound{user: s.User}
		p.mu.Unlock()
	} else {
		var refused *sipua.Response
		if in, refused = b.addressed(req); refused != nil {
			return *refused
		}
	}
	p.mu.Lock()
	s, ok := p.subs[req.CallID]
	if !ok {
		s = &subscription{CallID: req.CallID, User: in.user, Watcher: req.From.URI, Tag: req.From.Tag,
			OurTag: randomID()[:16], Contact: req.Contact, Route: req.RecordRoute}
		if req.To.Tag != "" {
			p.mu.Unlock()
			return answer(481, "Call/Transaction Does Not Exist")
		}
		p.subs[req.CallID] = s
	}
	s.Expires = time.Now().Add(expires)
	if req.Contact != "" {
		s.Contact = req.Contact
	}
	snapshot := *s
	if expires == 0 {
		delete(p.subs, req.CallID)
	}
	p.mu.Unlock()
	if expires == 0 {
		_ = b.host.Store().DeleteKV(ctx, "sub:"+req.CallID)
	} else {
		raw, _ := json.Marshal(snapshot)
		if err := b.host.Store().PutKV(ctx, "sub:"+req.CallID, string(raw)); err != nil {
			return tryLater("the subscription could not be stored")
		}
	}
	log := *zerolog.Ctx(ctx)
	b.loops.Go(func(run context.Context) { b.notify(log.WithContext(run), &snapshot) })
	return sipua.Response{Code: 200, Reason: "OK", ToTag: snapshot.OurTag,
		Headers: []sipua.Header{{Name: "Expires", Value: strconv.Itoa(int(expires / time.Second))}}}
}

// notify sends a watcher the Matrix user's current presence.
func (b *Bridge) notify(ctx context.Context, s *subscription) {
	p := &b.presence
	p.mu.Lock()
	cur, ok := p.subs[s.CallID]
	if ok {
		cur.CSeq++
		s.CSeq = cur.CSeq
	} else {
		s.CSeq++
	}
	pres, known := p.matrix[s.User]
	p.mu.Unlock()
	if !known {
		// Not seen since the start: the presence stored before the restart.
		if v, err := b.host.Store().GetKV(ctx, "mpres:"+s.User.String()); err == nil {
			pres = event.Presence(v)
		}
	}
	from, err := b.mapper.UserAOR(s.User.String())
	if err != nil {
		return
	}
	state := "active;expires=" + strconv.Itoa(max(0, int(time.Until(s.Expires)/time.Second)))
	if !ok {
		state = "terminated;reason=timeout"
	}
	ct, body := sipmsg.PIDF(from.URI(), pres == event.PresenceOnline, presenceNote(pres))
	target := s.Contact
	if target == "" {
		target = s.Watcher
	}
	sctx, cancel := context.WithTimeout(ctx, 35*time.Second)
	defer cancel()
	res, err := b.ua.Send(sctx, sipua.Outgoing{
		Method: "NOTIFY", RequestURI: target, Route: s.Route,
		From: sipua.Addr{URI: from.URI(), Tag: s.OurTag}, To: sipua.Addr{URI: s.Watcher, Tag: s.Tag},
		CallID: s.CallID, CSeq: s.CSeq, ContentType: ct, Body: body,
		Headers: []sipua.Header{{Name: "Event", Value: "presence"}, {Name: "Subscription-State", Value: state}},
	})
	switch {
	case err != nil:
		zerolog.Ctx(ctx).Debug().Err(err).Msg("NOTIFY not delivered")
	case res.Code == 481 || res.Code/100 == 4 && res.Code != 408:
		b.dropSub(ctx, s.CallID)
	}
}

func (b *Bridge) dropSub(ctx context.Context, callID string) {
	b.presence.mu.Lock()
	delete(b.presence.subs, callID)
	b.presence.mu.Unlock()
	_ = b.host.Store().DeleteKV(ctx, "sub:"+callID)
}

func presenceNote(p event.Presence) string {
	switch p {
	case event.PresenceOnline:
		return "online"
	case event.PresenceUnavailable:
		return "away"
	}
	return "offline"
}

// presenceToSIP notes a Matrix user's presence and NOTIFYs their watchers on a change.
func (b *Bridge) presenceToSIP(ctx context.Context, evt *event.Event) {
	pc := evt.Content.AsPresence()
	if pc == nil || b.isGhost(evt.Sender) {
		return
	}
	b.loadSubs(ctx)
	p := &b.presence
	p.mu.Lock()
	if p.matrix[evt.Sender] == pc.Presence {
		p.mu.Unlock()
		return
	}
	p.matrix[evt.Sender] = pc.Presence
	_ = b.host.Store().PutKV(ctx, "mpres:"+evt.Sender.String(), string(pc.Presence))
	var due []subscription
	for _, s := range p.subs {
		if s.User == evt.Sender {
			due = append(due, *s)
		}
	}
	p.mu.Unlock()
	for i := range due {
		b.notify(ctx, &due[i])
	}
}

// watch makes the bridge follow a SIP user's presence (from now on, and after restarts).
func (b *Bridge) watch(ctx context.Context, peer sipuri.AOR) {
	if !*b.cfg.Presence {
		return
	}
	if isNew, err := b.setFlag(ctx, "watch:"+peer.String()); err != nil || !isNew {
		return
	}
	log := *zerolog.Ctx(ctx)
	b.loops.Go(func(run context.Context) { b.subscribeTo(log.WithContext(run), peer) })
}

// subscribeLoop renews the bridge's subscriptions to the SIP users it watches.
func (b *Bridge) subscribeLoop(ctx context.Context) {
	select {
	case <-b.ua.Ready():
	case <-ctx.Done():
		return
	}
	for {
		rows, err := b.host.Store().ListKV(ctx, "watch:", 0)
		if err == nil {
			for _, kv := range rows {
				if peer, err := sipuri.ParseAOR(strings.TrimPrefix(kv.Key, "watch:")); err == nil {
					b.subscribeTo(ctx, peer)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchExpires * 8 / 10):
		}
	}
}

// resubscribeAfter is how long the bridge waits before it watches a SIP user again whose
// subscription ended early.
const resubscribeAfter = 30 * time.Second

// resubscribe subscribes to peer again after resubscribeAfter, once at a time per peer.
func (b *Bridge) resubscribe(ctx context.Context, peer sipuri.AOR) {
	if _, pending := b.resubscribing.LoadOrStore(peer, true); pending {
		return
	}
	log := *zerolog.Ctx(ctx)
	b.loops.Go(func(run context.Context) {
		defer b.resubscribing.Delete(peer)
		select {
		case <-run.Done():
			return
		case <-time.After(resubscribeAfter):
		}
		b.subscribeTo(log.WithContext(run), peer)
	})
}

// subscribeTo sends one SUBSCRIBE for a SIP user's presence through the proxy.
func (b *Bridge) subscribeTo(ctx context.Context, peer sipuri.AOR) {
	if !b.domains.Allows(peer.Host) {
		return
	}
	watcher := "sip:" + presenceWatcherLP + "@" + b.cfg.Domain
	callID := randomID() + "@" + b.cfg.Domain
	// Known before sending: the first NOTIFY may arrive before the 200. The renewal
	// replaces the previous subscription, whose NOTIFYs then get 481.
	p := &b.presence
	p.mu.Lock()
	for c, a := range p.watching {
		if a == peer {
			delete(p.watching, c)
		}
	}
	p.watching[callID] = peer
	p.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, 35*time.Second)
	defer cancel()
	res, err := b.ua.Send(sctx, sipua.Outgoing{
		Method: "SUBSCRIBE", RequestURI: peer.URI(),
		From: sipua.Addr{URI: watcher, Tag: randomID()[:16]}, To: sipua.Addr{URI: peer.URI()},
		CallID: callID, CSeq: 1,
		Headers: []sipua.Header{{Name: "Event", Value: "presence"}, {Name: "Accept", Value: "application/pidf+xml"},
			{Name: "Expires", Value: strconv.Itoa(int(watchExpires / time.Second))}},
	})
	if err != nil || res.Code/100 != 2 {
		zerolog.Ctx(ctx).Debug().Err(err).Int("code", res.Code).Str("peer", peer.String()).Msg("Presence subscription not accepted")
	}
}

// serveNotify mirrors a SIP user's presence (a NOTIFY of the bridge's subscription) onto
// the ghost.
func (b *Bridge) serveNotify(ctx context.Context, req *sipua.Request) sipua.Response {
	if ev, _, _ := strings.Cut(req.Get("Event"), ";"); strings.TrimSpace(ev) != "presence" {
		return answer(489, "Bad Event")
	}
	from, err := sipuri.ParseAOR(req.From.URI)
	if err != nil || !b.domains.Allows(from.Host) {
		return answer(403, "Forbidden")
	}
	b.presence.mu.Lock()
	peer, ok := b.presence.watching[req.CallID]
	b.presence.mu.Unlock()
	if !ok || peer != from {
		return answer(481, "Subscription Does Not Exist")
	}
	if state, _, _ := strings.Cut(req.Get("Subscription-State"), ";"); strings.EqualFold(strings.TrimSpace(state), "terminated") {
		// The presence server ended the subscription (expired, or it restarted): watch
		// again soon rather than at the next renewal.
		b.resubscribe(ctx, from)
	}
	if len(bytes.TrimSpace(req.Body)) == 0 {
		return answer(200, "OK") // a terminating or empty NOTIFY
	}
	pr, err := sipmsg.ParsePIDF(req.Body, b.cfg.MaxMessageBytes)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Str("call_id", req.CallID).Msg("Refused a presence NOTIFY")
		zerolog.Ctx(ctx).Trace().Bytes("body", req.Body).Msg("The refused NOTIFY's body")
		// The error answer ends the subscription at the presence server: a later
		// document may be readable, so the bridge subscribes again after a while.
		b.resubscribe(ctx, from)
		return answer(400, "Bad Request: "+err.Error())
	}
	ghost, err := b.setupGhost(ctx, from, "") // registered: a watch may precede its first message
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not set up the ghost of a watched SIP user")
		return tryLater("Matrix cannot be reached")
	}
	state := event.PresenceOffline
	if pr.Open {
		state = event.PresenceOnline
		if a := strings.ToLower(pr.Activity + " " + pr.Note); strings.Contains(a, "away") || strings.Contains(a, "busy") {
			state = event.PresenceUnavailable
		}
	}
	if err := ghost.SetPresence(ctx, state, pr.Note); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not set a ghost's presence")
		return tryLater("Matrix cannot be reached")
	}
	return answer(200, "OK")
}
