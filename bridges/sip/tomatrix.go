package sip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipmsg"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipua"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
)

// maxMatrixText bounds the text of a message for Matrix, whose events are at most 64 KiB
// in all.
const maxMatrixText = 48 << 10

// ServeSIP implements sipua.Handler: every request the proxy sends to the bridge. The
// answer is written after it returns, so a 2xx means the effect is durable.
func (b *Bridge) ServeSIP(ctx context.Context, req *sipua.Request) sipua.Response {
	switch req.Method {
	case "MESSAGE":
		return b.serveMessage(ctx, req)
	case "SUBSCRIBE":
		return b.serveSubscribe(ctx, req)
	case "NOTIFY":
		return b.serveNotify(ctx, req)
	}
	return answer(405, "Method Not Allowed")
}

// answer is a response; the transport makes its reason phrase safe for the status line
// (sipua.SafeReason).
func answer(code int, reason string) sipua.Response {
	return sipua.Response{Code: code, Reason: reason}
}

// tryLater is the answer when Matrix cannot take a message now: the sender retries.
func tryLater(reason string) sipua.Response {
	return sipua.Response{Code: 500, Reason: "Server Internal Error: " + reason,
		Headers: []sipua.Header{{Name: "Retry-After", Value: "10"}}}
}

// inbound is a request from a SIP user to a Matrix user.
type inbound struct {
	from sipuri.AOR
	user id.UserID
}

// addressed checks a request's sender and recipient: a SIP user of a permitted domain and
// a Matrix user who may use the bridge.
func (b *Bridge) addressed(req *sipua.Request) (*inbound, *sipua.Response) {
	from, err := sipuri.ParseAOR(req.From.URI)
	if err != nil {
		r := answer(400, "Bad Request: the From header is not a SIP address")
		return nil, &r
	}
	if !b.domains.Allows(from.Host) {
		r := answer(403, "Forbidden: the Matrix bridge does not take requests from "+from.Host)
		return nil, &r
	}
	to, err := sipuri.ParseAOR(req.RequestURI)
	if err == nil && to.Host != b.cfg.Domain {
		// Sent to the registered Contact of the bridge as a trunk: the To header names the
		// recipient.
		to, err = sipuri.ParseAOR(req.To.URI)
	}
	if err != nil {
		r := answer(404, "Not Found: the request URI is not a SIP address")
		return nil, &r
	}
	user, err := b.mapper.MatrixUser(to)
	if err != nil || !b.permits(id.UserID(user)) {
		r := answer(404, "Not Found: "+to.String()+" is not a Matrix user of this bridge")
		return nil, &r
	}
	return &inbound{from: from, user: id.UserID(user)}, nil
}

// serveMessage bridges a MESSAGE (RFC 3428) to Matrix.
func (b *Bridge) serveMessage(ctx context.Context, req *sipua.Request) sipua.Response {
	log := zerolog.Ctx(ctx)
	in, c, content, refused := b.classify(req)
	if refused != nil {
		if refused.Code == 400 {
			log.Debug().Str("reason", refused.Reason).Str("call_id", req.CallID).Msg("Refused a malformed MESSAGE")
		}
		return *refused
	}
	if c.CPIMFrom != "" || c.MessageID != "" {
		_, _ = b.setFlag(ctx, "cpim:"+in.from.String())
	}
	switch c.Kind {
	case sipmsg.KindComposing:
		b.composingToMatrix(ctx, in, c)
		return answer(200, "OK")
	case sipmsg.KindNotification:
		b.notificationToMatrix(ctx, in, c)
		return answer(200, "OK")
	}
	if content == nil {
		return answer(200, "OK") // nothing to show
	}
	if c.HTML != "" {
		_, _ = b.setFlag(ctx, "html:"+in.from.String())
	}
	room, err := b.dmRoom(ctx, in.user, in.from, true)
	if errors.Is(err, errNoSuchUser) {
		return answer(404, "Not Found: there is no Matrix user "+in.user.String())
	} else if err != nil {
		log.Warn().Err(err).Str("call_id", req.CallID).Msg("Could not open the DM for a SIP message")
		return tryLater("Matrix cannot be reached")
	}
	b.watch(ctx, in.from)
	ghost, err := b.setupGhost(ctx, in.from, req.From.Display)
	if err != nil {
		log.Warn().Err(err).Msg("Could not set up the SIP user's ghost")
		return tryLater("Matrix cannot be reached")
	}
	key := inboundKey(dmChat(in.user, in.from), req, c)
	msg := appservice.Message{RoomID: room, Sender: ghost.UserID(), RemoteID: key, Content: content, Timestamp: eventTime(c.DateTime)}
	if err := b.host.Enqueue(ctx, msg); err != nil {
		log.Warn().Err(err).Str("call_id", req.CallID).Msg("Could not queue a SIP message for Matrix")
		return tryLater("the message could not be queued")
	}
	if c.MessageID != "" && (c.WantDelivery || c.WantDisplay) {
		b.expectDisposition(ctx, in, key, c, msg)
	}
	b.clearTyping(ctx, in, room, ghost)
	log.Debug().Str("call_id", req.CallID).Stringer("room_id", room).Msg("SIP message queued for Matrix")
	return answer(202, "Accepted")
}

// classify checks a MESSAGE without side effects: who sends it to whom, its body, and the
// Matrix content of a text; a refusal when it cannot be bridged. content is nil for a
// notification, a typing state or an empty text.
func (b *Bridge) classify(req *sipua.Request) (*inbound, *sipmsg.Content, *event.MessageEventContent, *sipua.Response) {
	in, refused := b.addressed(req)
	if refused != nil {
		return nil, nil, nil, refused
	}
	c, err := sipmsg.Parse(req.ContentType, req.Body, b.cfg.MaxMessageBytes)
	switch {
	case errors.Is(err, sipmsg.ErrUnsupportedType):
		return nil, nil, nil, &sipua.Response{Code: 415, Reason: "Unsupported Media Type",
			Headers: []sipua.Header{{Name: "Accept", Value: sipmsg.Accept()}}}
	case errors.Is(err, sipmsg.ErrTooLarge):
		r := answer(413, "Request Entity Too Large: the message is larger than the bridge takes")
		return nil, nil, nil, &r
	case err != nil:
		r := answer(400, "Bad Request: "+err.Error())
		return nil, nil, nil, &r
	}
	if c.Kind != sipmsg.KindText || c.Plain == "" {
		return in, c, nil, nil
	}
	content := &event.MessageEventContent{MsgType: event.MsgText, Body: c.Plain}
	if c.HTML != "" {
		content.Format, content.FormattedBody = event.FormatHTML, c.HTML
	}
	if len(content.Body)+len(content.FormattedBody) > maxMatrixText {
		r := answer(413, "Request Entity Too Large: the message is too large for Matrix")
		return nil, nil, nil, &r
	}
	return in, c, content, nil
}

// eventTime is the Matrix event time of a message with a CPIM DateTime: that time when it
// is plausible (at most a day old, not in the future), else now. A peer cannot place its
// message anywhere in the room's history.
func eventTime(t time.Time) time.Time {
	if now := time.Now(); t.IsZero() || t.After(now.Add(time.Minute)) || t.Before(now.Add(-24*time.Hour)) {
		return time.Time{}
	}
	return t
}

// inboundKey identifies an inbound message for idempotency: its IMDN Message-ID when it
// has one (a resend in a new transaction keeps it), else its Call-ID, From tag and CSeq
// (a retransmission keeps those).
func inboundKey(chat string, req *sipua.Request, c *sipmsg.Content) string {
	if c.MessageID != "" {
		return chat + "|imdn:" + url.QueryEscape(c.MessageID)
	}
	return chat + "|in:" + url.QueryEscape(req.CallID) + "|" + url.QueryEscape(req.From.Tag) + "|" +
		strconv.FormatUint(uint64(req.CSeq), 10)
}

// composingToMatrix shows a SIP user's typing in an existing DM.
func (b *Bridge) composingToMatrix(ctx context.Context, in *inbound, c *sipmsg.Content) {
	room, err := b.dmRoom(ctx, in.user, in.from, false)
	if err != nil {
		return
	}
	ghostID, err := b.ghostID(in.from)
	if err != nil {
		return
	}
	ghost, err := b.host.Ghost(ghostID.Localpart())
	if err != nil {
		return
	}
	active := c.Composing != nil && c.Composing.State == "active"
	timeout := 120 * time.Second
	if c.Composing != nil && c.Composing.Refresh > 0 {
		timeout = time.Duration(c.Composing.Refresh) * time.Second
	}
	if err := ghost.Typing(ctx, room, active, timeout); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not set typing")
	}
}

// clearTyping ends the ghost's typing once its message arrived (RFC 3994 §3: a message
// ends the composing state).
func (b *Bridge) clearTyping(ctx context.Context, _ *inbound, room id.RoomID, ghost *appservice.Intent) {
	if err := ghost.Typing(ctx, room, false, 0); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not clear typing")
	}
}

// disposition is what the bridge remembers of an inbound message whose sender asked for
// IMDN notifications.
type disposition struct {
	MessageID string    `json:"id"`
	Peer      string    `json:"peer"`
	User      id.UserID `json:"user"`
	Delivery  bool      `json:"delivery,omitempty"`
	Display   bool      `json:"display,omitempty"`
}

// expectDisposition records the sender's wish for notifications and sends the delivery
// notification once the message is in Matrix.
func (b *Bridge) expectDisposition(ctx context.Context, in *inbound, key string, c *sipmsg.Content, msg appservice.Message) {
	d := disposition{MessageID: c.MessageID, Peer: in.from.String(), User: in.user, Delivery: c.WantDelivery, Display: c.WantDisplay}
	raw, _ := json.Marshal(d)
	if err := b.host.Store().PutKV(ctx, "imdn-in:"+key, string(raw)); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Msg("Could not record the notification wish of a SIP message")
		return
	}
	if !d.Delivery {
		return
	}
	log := *zerolog.Ctx(ctx)
	b.loops.Go(func(run context.Context) {
		run = log.WithContext(run)
		// Send with the same RemoteID waits for the queued message and sends nothing new.
		if _, err := b.host.Send(run, msg); err != nil {
			return // the core tells the room; no delivery notification
		}
		if err := b.sendIMDN(run, in.user, in.from, d.MessageID, "delivered"); err != nil {
			log.Debug().Err(err).Msg("Could not send a delivery notification")
		}
	})
}

// notificationToMatrix turns an IMDN display notification into the ghost's read receipt
// on the Matrix message it is about.
func (b *Bridge) notificationToMatrix(ctx context.Context, in *inbound, c *sipmsg.Content) {
	if c.IMDN == nil || c.IMDN.Status != "displayed" {
		return
	}
	ref, err := b.host.Store().GetKV(ctx, "imdn-out:"+c.IMDN.MessageID)
	if err != nil {
		return
	}
	var r outRef
	if json.Unmarshal([]byte(ref), &r) != nil || r.Peer != in.from.String() {
		return
	}
	ghostID, err := b.ghostID(in.from)
	if err != nil {
		return
	}
	ghost, err := b.host.Ghost(ghostID.Localpart())
	if err != nil {
		return
	}
	if err := ghost.MarkRead(ctx, r.Room, r.Event); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not mark a message read")
	}
}

// outRef is how an IMDN Message-ID of a message sent to SIP finds its Matrix event.
type outRef struct {
	Room  id.RoomID  `json:"room"`
	Event id.EventID `json:"event"`
	Peer  string     `json:"peer"`
}

// sendIMDN sends a delivery or display notification (RFC 5438) from a Matrix user to a
// SIP user, best effort.
func (b *Bridge) sendIMDN(ctx context.Context, user id.UserID, peer sipuri.AOR, msgID, status string) error {
	from, err := b.mapper.UserAOR(user.String())
	if err != nil {
		return err
	}
	ct, body := sipmsg.IMDNBody(msgID, status, from.URI(), time.Now())
	ct, body = sipmsg.CPIM(from.URI(), peer.URI(), randomID(), nil, ct, body, time.Now())
	return b.sendNotification(ctx, from, peer, ct, body)
}

// sendNotification sends a MESSAGE that needs no idempotency (a notification or a typing
// state) in a dialog of its own, once; an answer other than 2xx is an error.
func (b *Bridge) sendNotification(ctx context.Context, from, peer sipuri.AOR, ct string, body []byte) error {
	res, err := b.ua.Send(ctx, sipua.Outgoing{
		Method: "MESSAGE", RequestURI: peer.URI(), From: sipua.Addr{URI: from.URI(), Tag: randomID()},
		To: sipua.Addr{URI: peer.URI()}, CallID: randomID() + "@" + b.cfg.Domain, CSeq: 1, ContentType: ct, Body: body,
	})
	if err != nil {
		return err
	}
	if res.Code/100 != 2 {
		return fmt.Errorf("sip: notification answered %d %s", res.Code, res.Reason)
	}
	return nil
}
