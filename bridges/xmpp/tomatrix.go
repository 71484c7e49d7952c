package xmpp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/richtext"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/stanza"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// inbound is one XMPP message on its way to a Matrix room.
type inbound struct {
	msg       *xmsg.Message
	raw       []byte    // the stanza, as checked by package stanza
	chat      string    // chat key
	room      id.RoomID // the portal
	sender    jid.JID   // bare JID (1:1) or occupant JID (MUC)
	ghost     id.UserID // who speaks in Matrix
	groupchat bool      // MUC message
	key       string    // message key (RemoteID)
	msgID     string    // origin-id, else id
	noFetch   bool      // queued behind too many others: links are not downloaded
}

// handleMessage routes one inbound message stanza.
func (b *Bridge) handleMessage(ctx context.Context, st *stanza.Stanza) error {
	m, err := xmsg.ParseMessage(st.Raw)
	if err != nil {
		return rejected{err}
	}
	switch m.Type {
	case "error":
		b.handleMessageError(ctx, m)
		return nil
	case "groupchat":
		return b.fromMUC(ctx, m, st.Raw)
	default:
		return b.fromDirect(ctx, m, st.Raw)
	}
}

// hasContent reports whether m carries something that needs a room (not only a chat state
// or a marker).
func hasContent(m *xmsg.Message) bool {
	return m.Body != "" || len(m.OOB) > 0 || m.Reactions != nil || m.Retract != ""
}

// fromDirect bridges a 1:1 message from an XMPP user to a Matrix user's puppet JID.
func (b *Bridge) fromDirect(ctx context.Context, m *xmsg.Message, raw []byte) error {
	user, err := b.mapper.UserIDForPuppet(m.To)
	if err != nil {
		return refusal{"cancel", "item-not-found", "There is no Matrix user at this address."}
	}
	if m.From.Localpart() == "" && m.From.Domainpart() == "" {
		return rejected{errors.New("message has no sender")}
	}
	if b.isMUCDomain(ctx, m.From) {
		return refusal{"cancel", "feature-not-implemented", "Private messages from group chat occupants are not bridged to Matrix."}
	}
	peer := m.From.Bare()
	ghost, err := b.mapper.GhostUserID(peer)
	if err != nil {
		return rejected{err}
	}
	chat := dmChat(user, peer)
	room, err := b.host.Store().PortalByKey(ctx, chat)
	if err == nil && b.dmGone(ctx, chat, room) {
		err = appservice.ErrNotFound // the user left: a new DM
	}
	if errors.Is(err, appservice.ErrNotFound) {
		if !hasContent(m) {
			return nil // a chat state or marker for a chat that does not exist in Matrix
		}
		room, err = b.createDM(ctx, user, peer, ghost)
	}
	if err != nil {
		return err
	}
	in := &inbound{msg: m, raw: raw, chat: chat, room: room, sender: peer, ghost: ghost}
	if err := b.toMatrixInOrder(ctx, in); err != nil {
		return err
	}
	// The receipt says "durably queued for Matrix"; the sender may resend without it.
	if m.RequestReceipt && m.ID != "" && hasContent(m) {
		return b.sendReceipt(ctx, m)
	}
	return nil
}

func (b *Bridge) sendReceipt(ctx context.Context, m *xmsg.Message) error {
	r := &xmsg.Message{ID: "rcpt-" + m.ID, Type: m.Type, From: m.To, To: m.From, Received: m.ID}
	raw, err := r.Marshal()
	if err != nil {
		return err
	}
	return b.send(ctx, raw)
}

// toMatrix bridges the parts of an inbound message, in this order: read marker, chat
// state, retraction, reactions, correction, new message. It downloads the message's
// links: on the component's ordered path it is only called for messages without any
// (see toMatrixInOrder).
func (b *Bridge) toMatrix(ctx context.Context, in *inbound) error {
	m := in.msg
	in.msgID = m.OriginID
	if in.msgID == "" {
		in.msgID = m.ID
	}
	if in.msgID == "" {
		// No id: the message cannot be deduplicated against a resend; key it by content.
		sum := sha256.Sum256([]byte(m.Body + "\x00" + m.Delay.String()))
		in.msgID = "noid-" + hex.EncodeToString(sum[:8])
	}
	in.key = remoteKey(in.chat, in.sender, in.msgID)
	ghost, err := b.host.Ghost(in.ghost.Localpart())
	if err != nil {
		return err
	}
	if m.Displayed != "" {
		if _, evt, err := b.eventOfXMPP(ctx, in.chat, in.sender, m.Displayed); err == nil {
			if err := ghost.MarkRead(ctx, in.room, evt); err != nil {
				zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not mark the room read")
			}
		}
	}
	if m.ChatState != "" && m.Body == "" {
		if err := ghost.Typing(ctx, in.room, m.ChatState == "composing", 30*time.Second); err != nil {
			zerolog.Ctx(ctx).Debug().Err(err).Msg("Could not set typing")
		}
	}
	switch {
	case m.Retract != "":
		return b.retractToMatrix(ctx, in, ghost)
	case m.Reactions != nil:
		return b.reactionsToMatrix(ctx, in)
	case m.Body == "" && len(m.OOB) == 0:
		return nil
	}
	if m.ChatState != "" {
		_ = ghost.Typing(ctx, in.room, false, 0)
	}
	content, err := b.messageContent(ctx, in)
	if err != nil {
		return err
	}
	if err := fitMatrix(content, in.groupchat); err != nil {
		return err
	}
	if m.Replace != "" {
		if _, orig, err := b.eventOfXMPP(ctx, in.chat, in.sender, m.Replace); err == nil && b.sameSender(ctx, orig, in.sender) {
			newContent := *content
			newContent.RelatesTo = nil
			content.Body = "* " + content.Body
			if content.FormattedBody != "" {
				content.FormattedBody = "* " + content.FormattedBody
			}
			content.NewContent = &newContent
			content.RelatesTo = &event.RelatesTo{Type: event.RelReplace, EventID: orig}
		}
	}
	if content.Body != "" {
		if err := b.enqueue(ctx, in, in.key, content); err != nil {
			return err
		}
	}
	if err := b.attachmentsToMatrix(ctx, in, content.Body == ""); err != nil {
		return err
	}
	return b.putRef(ctx, in.key, ref{Chat: in.chat, ID: in.msgID, SID: b.roomStanzaID(in), From: in.sender.String(), Full: m.From.String(), Room: in.room})
}

// maxMatrixText bounds the text of a message for Matrix, whose events are at most 64 KiB
// in all.
const maxMatrixText = 48 << 10

// fitMatrix refuses a 1:1 message too large for a Matrix event (before any receipt, so the
// sender knows at once); a group chat message is cut instead, with a note, because an
// error to a MUC occupant makes the room drop our puppet.
func fitMatrix(c *event.MessageEventContent, groupchat bool) error {
	if len(c.Body)+len(c.FormattedBody) <= maxMatrixText {
		return nil
	}
	if !groupchat {
		return refusal{"modify", "policy-violation", "The message is too large for Matrix."}
	}
	const note = "\n[cut: the message is too large for Matrix]"
	body := []rune(c.Body)
	for len(string(body)) > maxMatrixText-len(note) {
		body = body[:len(body)*9/10]
	}
	c.Body, c.Format, c.FormattedBody = string(body)+note, "", ""
	return nil
}

// roomStanzaID is the MUC archive's id of a group chat message.
func (b *Bridge) roomStanzaID(in *inbound) string {
	if !in.groupchat {
		return ""
	}
	return in.msg.StanzaIDBy(in.sender.Bare())
}

func (b *Bridge) enqueue(ctx context.Context, in *inbound, key string, content any) error {
	return b.host.Enqueue(ctx, appservice.Message{
		RoomID: in.room, Sender: in.ghost, RemoteID: key, Content: content, Timestamp: in.msg.Delay,
	})
}

// messageContent is the Matrix content of the message's text.
func (b *Bridge) messageContent(ctx context.Context, in *inbound) (*event.MessageEventContent, error) {
	m := in.msg
	body, xhtml := m.Body, m.XHTML
	content := &event.MessageEventContent{MsgType: event.MsgText}
	if m.Reply != nil {
		stripped := m.StripFallback(xmsg.NSReply)
		if stripped != body {
			body, xhtml = stripped, "" // the XHTML copy holds the quote too
		}
		if _, evt, err := b.eventOfXMPP(ctx, in.chat, m.Reply.To, m.Reply.ID); err == nil {
			content.RelatesTo = &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: evt}}
		}
	}
	if len(m.OOB) > 0 && body == m.OOB[0].URL {
		body = "" // the link alone: the attachment carries it
	}
	plain, formatted := richtext.ToMatrix(body, xhtml)
	content.Body = plain
	if formatted != "" {
		content.Format = event.FormatHTML
		content.FormattedBody = formatted
	}
	if m.Type == "headline" || m.Type == "normal" && m.From.Localpart() == "" {
		content.MsgType = event.MsgNotice
	}
	if content.Body == "" && len(m.OOB) > 0 {
		// Only an attachment: its own event carries it; this one stays empty and is skipped.
		return content, nil
	}
	return content, nil
}

// sameSender reports whether the Matrix event evt was bridged from sender (corrections and
// retractions are only accepted from the author).
func (b *Bridge) sameSender(ctx context.Context, evt id.EventID, sender jid.JID) bool {
	_, r, err := b.refOfEvent(ctx, evt)
	return err == nil && r.From == sender.String()
}

// retractToMatrix redacts the retracted message (XEP-0424) as its author's ghost.
func (b *Bridge) retractToMatrix(ctx context.Context, in *inbound, ghost *appservice.Intent) error {
	_, evt, err := b.eventOfXMPP(ctx, in.chat, in.sender, in.msg.Retract)
	if errors.Is(err, appservice.ErrNotFound) {
		return nil // nothing bridged to retract
	} else if err != nil {
		return err
	}
	if !b.sameSender(ctx, evt, in.sender) {
		return refusal{"cancel", "forbidden", "Only the author can retract a message."}
	}
	if err := ghost.Redact(ctx, in.room, evt, "retracted in XMPP", "retract-"+in.msgID); err != nil {
		return fmt.Errorf("xmpp: redact %s: %w", evt, err)
	}
	return nil
}

// handleMessageError turns a bounced message into a failure report on its Matrix event.
func (b *Bridge) handleMessageError(ctx context.Context, m *xmsg.Message) {
	if m.ID == "" || m.Error == nil {
		return
	}
	var chat string
	if b.isMUCPortal(ctx, m.From.Bare()) {
		chat = mucChat(m.From.Bare())
	} else if user, err := b.mapper.UserIDForPuppet(m.To); err == nil {
		chat = dmChat(user, m.From.Bare())
	} else {
		return
	}
	room, evt, err := b.host.Store().MessageByRemote(ctx, ownKey(chat, m.ID))
	if err != nil {
		// A bounce may come before the server's confirmation, which the map records.
		r, rerr := b.getRef(ctx, ownKey(chat, m.ID))
		if rerr != nil || r.Event == "" {
			return // not one of ours, or a receipt or chat state that bounced
		}
		room, evt = r.Room, r.Event
	}
	reason := m.From.Bare().String() + " refused it (" + m.Error.Condition
	if m.Error.Text != "" {
		reason += ": " + m.Error.Text
	}
	reason += ")"
	if err := b.host.ReportFailure(ctx, room, evt, reason); err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("Could not report a bounced message")
	}
}
