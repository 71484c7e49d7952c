package sip

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipmsg"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipua"
	"github.com/switchboard-matrix/switchboard/bridges/sip/sipuri"
)

// derived is a stable identifier derived from a Matrix event ID: a redelivery of the event
// after a crash sends the same Call-ID and From tag.
func derived(evt id.EventID, part string, n int) string {
	sum := sha256.Sum256([]byte(evt.String() + "\x00" + part))
	return hex.EncodeToString(sum[:n])
}

// randomID is a random token for requests that need no idempotency (notifications).
func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// retryable are the final answers after which a MESSAGE is sent again later (a new
// transaction): the peer or a proxy was unavailable, not unwilling.
func retryable(code int) bool {
	switch code {
	case 408, 480, 500, 503, 504:
		return true
	}
	return false
}

// messageToSIP sends a Matrix user's message to the SIP user of the DM. It is delivered
// on a 2xx answer, recorded at once under "out:<event ID>"; a redelivered event that has
// that record is not sent again.
func (b *Bridge) messageToSIP(ctx context.Context, chat string, user id.UserID, peer sipuri.AOR, evt *event.Event) error {
	key := "out:" + evt.ID.String()
	if _, _, err := b.host.Store().MessageByRemote(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, appservice.ErrNotFound) {
		return err
	}
	if !b.domains.Allows(peer.Host) {
		return appservice.RoomError{Msg: "the bridge may not reach the SIP domain " + peer.Host, Permanent: true}
	}
	from, err := b.mapper.UserAOR(user.String())
	if err != nil {
		return appservice.RoomError{Msg: "your Matrix ID has no SIP address", Permanent: true, Cause: err}
	}
	plain, html, err := b.textOf(ctx, evt)
	if err != nil {
		return err
	}
	if plain == "" {
		return nil
	}
	if !b.hasFlag(ctx, "html:"+peer.String()) {
		html = "" // the peer never sent HTML: plain text only
	}
	ct, body := sipmsg.Text(plain, html)
	msgID := derived(evt.ID, "imdn", 12)
	if b.hasFlag(ctx, "cpim:"+peer.String()) {
		ref, _ := json.Marshal(outRef{Room: evt.RoomID, Event: evt.ID, Peer: peer.String()})
		if err := b.host.Store().PutKV(ctx, "imdn-out:"+msgID, string(ref)); err != nil {
			return err
		}
		ct, body = sipmsg.CPIM(from.URI(), peer.URI(), msgID, []string{"positive-delivery", "display"}, ct, body, time.UnixMilli(evt.Timestamp))
	}
	if len(body) > b.cfg.MaxMessageBytes {
		return appservice.RoomError{Permanent: true,
			Msg: fmt.Sprintf("the message is too large for SIP (%d bytes; the limit is %d)", len(body), b.cfg.MaxMessageBytes)}
	}
	cseq, err := b.nextCSeq(ctx, evt.ID)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, b.cfg.SendTimeout.Std())
	defer cancel()
	res, err := b.ua.Send(sctx, sipua.Outgoing{
		Method: "MESSAGE", RequestURI: peer.URI(),
		From:   sipua.Addr{URI: from.URI(), Display: b.displayName(ctx, user), Tag: derived(evt.ID, "tag", 8)},
		To:     sipua.Addr{URI: peer.URI()},
		CallID: derived(evt.ID, "call", 16) + "@" + b.cfg.Domain, CSeq: cseq,
		ContentType: ct, Body: body,
	})
	log := zerolog.Ctx(ctx)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		// No final answer within send_timeout (shorter than the transaction's own 32 s):
		// the peer did not answer, which a 408 says; not a transport failure.
		res, err = sipua.Result{Code: 408, Reason: "Request Timeout (no answer within " + b.cfg.SendTimeout.Std().String() + ")"}, nil
	}
	if err != nil {
		return appservice.RoomError{Msg: "the SIP proxy cannot be reached", Cause: err}
	}
	log.Debug().Int("code", res.Code).Uint32("cseq", cseq).Stringer("event", evt.ID).Msg("MESSAGE answered")
	switch {
	case res.Code/100 == 2:
		if err := b.host.Store().PutMessage(context.WithoutCancel(ctx), key, evt.RoomID, evt.ID); err != nil {
			return fmt.Errorf("sip: record the delivery of %s: %w", evt.ID, err)
		}
		_ = b.host.Store().DeleteKV(ctx, "cseq:"+evt.ID.String())
		b.typing.Delete(chat) // a message ends the composing state at the peer
		return nil
	case retryable(res.Code):
		return appservice.RoomError{Msg: fmt.Sprintf("%s could not be reached: %d %s", peer, res.Code, res.Reason)}
	}
	return appservice.RoomError{Permanent: true, Msg: fmt.Sprintf("%s refused the message: %d %s", peer, res.Code, res.Reason)}
}

// nextCSeq is the CSeq of the next attempt to send an event: 1 for the first, one more
// for each later transaction (RFC 3261 §8.1.1.5), counted in the store so a restart does
// not reuse one.
func (b *Bridge) nextCSeq(ctx context.Context, evt id.EventID) (uint32, error) {
	key := "cseq:" + evt.String()
	n := uint64(0)
	if v, err := b.host.Store().GetKV(ctx, key); err == nil {
		n, _ = strconv.ParseUint(v, 10, 31)
	}
	n++
	if err := b.host.Store().PutKV(ctx, key, strconv.FormatUint(n, 10)); err != nil {
		return 0, err
	}
	return uint32(n), nil
}

// textOf is a Matrix message as text for SIP: plain text (formatting degraded) and the
// sanitized HTML when there is any. Files are sent as a line naming them.
func (b *Bridge) textOf(ctx context.Context, evt *event.Event) (plain, html string, err error) {
	c := evt.Content.AsMessage()
	if c.NewContent != nil && c.RelatesTo != nil && c.RelatesTo.Type == event.RelReplace {
		c = c.NewContent
		plain = "Correction: "
	}
	switch c.MsgType {
	case event.MsgImage, event.MsgFile, event.MsgAudio, event.MsgVideo:
		line, err := b.fileLine(ctx, evt.ID, c)
		return plain + line, "", err
	}
	if evt.Type == event.EventSticker {
		return plain + "[sticker] " + c.Body, "", nil
	}
	text := stripReplyFallback(c.Body)
	if c.Format == event.FormatHTML && c.FormattedBody != "" {
		html = sipmsg.SanitizeHTML(c.FormattedBody)
		text = sipmsg.HTMLToPlain(c.FormattedBody)
	}
	if c.MsgType == event.MsgEmote {
		name := b.displayName(ctx, evt.Sender)
		return "* " + name + " " + text, "", nil
	}
	return plain + text, html, nil
}

// stripReplyFallback drops the "> " quote lines a reply's plain body starts with.
func stripReplyFallback(body string) string {
	if !strings.HasPrefix(body, "> ") {
		return body
	}
	lines := strings.Split(body, "\n")
	i := 0
	for i < len(lines) && strings.HasPrefix(lines[i], "> ") {
		i++
	}
	if i < len(lines) && lines[i] == "" {
		i++
	}
	return strings.Join(lines[i:], "\n")
}

// fileLine is a file sent from Matrix as text: its name, size and, when the bridge serves
// links (media.go), a link to it; otherwise a note that it waits in Matrix.
func (b *Bridge) fileLine(ctx context.Context, evt id.EventID, c *event.MessageEventContent) (string, error) {
	name := c.FileName
	if name == "" {
		name = c.Body
	}
	size := ""
	if c.Info != nil && c.Info.Size > 0 {
		size = fmt.Sprintf(", %d KiB", (c.Info.Size+1023)/1024)
	}
	link, err := b.linkFor(ctx, evt, c)
	if err != nil {
		return "", err
	}
	if link == "" {
		return fmt.Sprintf("[file: %s%s; open the chat in Matrix to see it]", name, size), nil
	}
	return fmt.Sprintf("[file: %s%s] %s", name, size, link), nil
}

// cachedName is a Matrix user's display name as fetched at a time.
type cachedName struct {
	name string
	at   time.Time
}

// displayName is a Matrix user's display name, or the localpart; fetched at most every
// ten minutes per user (it names the sender of every MESSAGE).
func (b *Bridge) displayName(ctx context.Context, user id.UserID) string {
	if c, ok := b.names.Load(user); ok && time.Since(c.(cachedName).at) < 10*time.Minute {
		return c.(cachedName).name
	}
	name, _, err := b.host.Bot().Profile(ctx, user)
	if err != nil || name == "" {
		name = user.Localpart()
	}
	if err == nil {
		b.names.Store(user, cachedName{name: name, at: time.Now()})
	}
	return name
}

// HandleEphemeral implements appservice.EphemeralHandler: a Matrix user's typing and read
// receipts in DMs go to the SIP user (best effort).
func (b *Bridge) HandleEphemeral(ctx context.Context, evt *event.Event) error {
	switch evt.Type {
	case event.EphemeralEventTyping:
		b.typingToSIP(ctx, evt)
	case event.EphemeralEventReceipt:
		b.receiptsToSIP(ctx, evt)
	case event.EphemeralEventPresence:
		b.presenceToSIP(ctx, evt)
	}
	return nil
}

// typingToSIP sends isComposing (RFC 3994) when the DM owner starts or stops typing.
func (b *Bridge) typingToSIP(ctx context.Context, evt *event.Event) {
	chat, err := b.host.Store().PortalByRoom(ctx, evt.RoomID)
	if err != nil {
		return
	}
	user, peer, ok := parseDMChat(chat)
	if !ok || !b.domains.Allows(peer.Host) {
		return
	}
	typing := false
	if t := evt.Content.AsTyping(); t != nil {
		for _, u := range t.UserIDs {
			typing = typing || u == user
		}
	}
	if old, ok := b.typing.Load(chat); (ok && old.(bool) == typing) || (!ok && !typing) {
		return
	}
	b.typing.Store(chat, typing)
	from, err := b.mapper.UserAOR(user.String())
	if err != nil {
		return
	}
	ct, body := sipmsg.ComposingBody(typing, 60)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.sendNotification(sctx, from, peer, ct, body); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("isComposing not delivered")
	}
}

// receiptsToSIP sends IMDN display notifications for the messages a DM owner read, when
// their senders asked for them.
func (b *Bridge) receiptsToSIP(ctx context.Context, evt *event.Event) {
	receipts := evt.Content.AsReceipt()
	if receipts == nil {
		return
	}
	for eventID, byType := range *receipts {
		for _, users := range byType {
			for user := range users {
				b.displayed(ctx, eventID, user)
			}
		}
	}
}

func (b *Bridge) displayed(ctx context.Context, eventID id.EventID, reader id.UserID) {
	key, err := b.host.Store().MessageByEvent(ctx, eventID)
	if err != nil {
		return
	}
	raw, err := b.host.Store().GetKV(ctx, "imdn-in:"+key)
	if err != nil {
		return
	}
	var d disposition
	if json.Unmarshal([]byte(raw), &d) != nil || !d.Display || d.User != reader {
		return
	}
	peer, err := sipuri.ParseAOR(d.Peer)
	if err != nil {
		return
	}
	if err := b.sendIMDN(ctx, d.User, peer, d.MessageID, "displayed"); err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not send a display notification")
		return
	}
	_ = b.host.Store().DeleteKV(ctx, "imdn-in:"+key)
}
