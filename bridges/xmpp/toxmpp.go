package xmpp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/richtext"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// outChat is where a Matrix event in a portal goes in XMPP.
type outChat struct {
	key       string
	groupchat bool
	from      jid.JID // the sender's puppet: bare (1:1) or with our resource (MUC)
	to        jid.JID // the peer's bare JID or the room
	sender    string  // how the chat's refs name the sender (puppet bare or occupant JID)
}

func (c outChat) typ() string {
	if c.groupchat {
		return "groupchat"
	}
	return "chat"
}

// fromMatrix routes a Matrix event to XMPP.
func (b *Bridge) fromMatrix(ctx context.Context, evt *event.Event) error {
	chat, err := b.host.Store().PortalByRoom(ctx, evt.RoomID)
	if errors.Is(err, appservice.ErrNotFound) {
		if evt.Type == event.StateMember {
			return b.inviteToGhost(ctx, evt)
		}
		return nil
	} else if err != nil {
		return err
	}
	if evt.Type == event.StateMember {
		return b.memberToXMPP(ctx, chat, evt)
	}
	if evt.Type == event.StateTopic {
		return b.topicToXMPP(ctx, chat, evt)
	}
	oc, err := b.outChat(ctx, chat, evt.Sender)
	if err != nil || oc == nil {
		return err
	}
	switch evt.Type {
	case event.EventMessage, event.EventSticker:
		return b.messageToXMPP(ctx, oc, evt)
	case event.EventReaction:
		return b.reactionToXMPP(ctx, oc, evt)
	case event.EventRedaction:
		return b.redactionToXMPP(ctx, oc, evt)
	}
	return nil
}

// outChat addresses sender's messages in the chat; nil when the sender's messages are not
// bridged (a third user in a DM).
func (b *Bridge) outChat(ctx context.Context, chat string, sender id.UserID) (*outChat, error) {
	puppet, err := b.mapper.PuppetJID(sender)
	if err != nil {
		return nil, appservice.ErrPermanent
	}
	if user, peer, ok := parseDMChat(chat); ok {
		if user != sender {
			return nil, nil
		}
		return &outChat{key: chat, from: puppet, to: peer, sender: puppet.String()}, nil
	}
	room, err := jid.Parse(strings.TrimPrefix(chat, "muc:"))
	if err != nil {
		return nil, fmt.Errorf("xmpp: portal key %q: %w", chat, err)
	}
	occupant, err := b.ensureJoined(ctx, chat, room, sender)
	if err != nil {
		return nil, err
	}
	full, _ := puppet.WithResource(puppetResource)
	return &outChat{key: chat, groupchat: true, from: full, to: room, sender: occupant.String()}, nil
}

// messageToXMPP sends a Matrix message (text, notice, emote, file) as a stanza whose id and
// origin-id derive from the event ID: a redelivery after a crash resends the same stanza.
func (b *Bridge) messageToXMPP(ctx context.Context, oc *outChat, evt *event.Event) error {
	content := evt.Content.AsMessage()
	sid := stanzaIDFor(evt.ID, "")
	key := ownKey(oc.key, sid)
	if done, err := b.accepted(ctx, key); done || err != nil {
		return err
	}
	m := &xmsg.Message{ID: sid, OriginID: sid, Type: oc.typ(), From: oc.from, To: oc.to}
	if !oc.groupchat {
		m.RequestReceipt, m.Markable = true, true
	}
	if content.RelatesTo != nil && content.RelatesTo.Type == event.RelReplace && content.NewContent != nil {
		_, orig, err := b.refOfEvent(ctx, content.RelatesTo.EventID)
		if err == nil && orig.From == oc.sender {
			m.Replace = orig.ID
			content = content.NewContent
		} else {
			content.Body = strings.TrimPrefix(content.Body, "* ")
		}
	}
	body, formatted := richtext.StripMatrixReply(content.Body, content.FormattedBody)
	if content.RelatesTo != nil && content.RelatesTo.InReplyTo != nil {
		if _, r, err := b.refOfEvent(ctx, content.RelatesTo.InReplyTo.EventID); err == nil {
			to, _ := jid.Parse(r.From)
			m.Reply = &xmsg.Reply{To: to, ID: r.xmppID(oc.groupchat)}
		}
	}
	switch content.MsgType {
	case event.MsgImage, event.MsgFile, event.MsgAudio, event.MsgVideo:
		if err := b.attachmentToXMPP(ctx, m, evt, content); err != nil {
			return err
		}
	default:
		if evt.Type == event.EventSticker {
			if err := b.attachmentToXMPP(ctx, m, evt, content); err != nil {
				return err
			}
			break
		}
		plain, xhtml := richtext.FromMatrix(body, string(content.Format), formatted)
		if content.MsgType == event.MsgEmote {
			plain, xhtml = "/me "+plain, ""
		}
		m.Body, m.XHTML = plain, xhtml
	}
	if m.Body == "" && len(m.OOB) == 0 {
		return nil
	}
	// The ref goes first: the room's reflection of the message and a bounce are
	// recognised by it, and may come before the server's confirmation.
	if err := b.putRef(ctx, key, ref{Chat: oc.key, ID: sid, From: oc.sender, Room: evt.RoomID, Event: evt.ID}); err != nil {
		return err
	}
	raw, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("%w: %v", appservice.ErrPermanent, err)
	}
	return b.sendOnce(ctx, key, evt.RoomID, evt.ID, raw)
}

// accepted reports whether the stanza of a Matrix event, recorded under key, was accepted
// by the server before (the event is delivered again after a crash).
func (b *Bridge) accepted(ctx context.Context, key string) (bool, error) {
	_, _, err := b.host.Store().MessageByRemote(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, appservice.ErrNotFound):
		return false, nil
	}
	return false, err
}

// sendOnce sends the stanza of a Matrix event and records its acceptance the moment the
// server confirmed it: one transaction, the message-map entry key → event, which
// accepted finds when the event is delivered again. A crash doubles the stanza only
// between its write and that commit, about the server's round trip; recording it before
// the confirmation would lose the stanza when the stream breaks after the write.
func (b *Bridge) sendOnce(ctx context.Context, key string, room id.RoomID, evt id.EventID, raw []byte) error {
	start := time.Now()
	if err := b.send(ctx, raw); err != nil {
		return err
	}
	confirmed := time.Now()
	if err := b.host.Store().PutMessage(context.WithoutCancel(ctx), key, room, evt); err != nil {
		return fmt.Errorf("xmpp: record the acceptance of %s: %w", evt, err)
	}
	// The record's latency is the window in which a crash repeats the stanza.
	zerolog.Ctx(ctx).Debug().Stringer("event", evt).Dur("write_confirm", confirmed.Sub(start)).
		Dur("confirm_record", time.Since(confirmed)).Msg("stanza accepted and recorded")
	return nil
}

// redactionToXMPP retracts (XEP-0424) a Matrix user's own bridged message, or takes back
// a reaction.
func (b *Bridge) redactionToXMPP(ctx context.Context, oc *outChat, evt *event.Event) error {
	target := evt.Redacts
	if target == "" {
		target = evt.Content.AsRedaction().Redacts
	}
	zerolog.Ctx(ctx).Debug().Stringer("target", target).Msg("Matrix redaction")
	if handled, err := b.unreactToXMPP(ctx, oc, evt, target); handled || err != nil {
		return err
	}
	_, r, err := b.refOfEvent(ctx, target)
	if errors.Is(err, appservice.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if r.From != oc.sender {
		return nil // moderation of others' messages is not bridged
	}
	sid := stanzaIDFor(evt.ID, "")
	key := ownKey(oc.key, sid)
	if done, err := b.accepted(ctx, key); done || err != nil {
		return err
	}
	m := &xmsg.Message{ID: sid, OriginID: sid, Type: oc.typ(), From: oc.from, To: oc.to,
		Retract: r.xmppID(false), Body: "This person retracted a previous message, but it's unsupported by your client.",
		Fallbacks: []xmsg.Fallback{{For: xmsg.NSRetract}}}
	raw, err := m.Marshal()
	if err != nil {
		return err
	}
	return b.sendOnce(ctx, key, evt.RoomID, evt.ID, raw)
}
