package xmpp

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

var _ appservice.SendFailureHandler = (*Bridge)(nil)

// HandleSendFailure implements appservice.SendFailureHandler: an XMPP message that was
// queued for Matrix (and acknowledged with a receipt) but could not be sent after the
// retries is answered with a stanza error, so that its sender knows. Group chat messages
// get no error: a MUC treats errors to an occupant as a sign that the occupant is gone.
func (b *Bridge) HandleSendFailure(ctx context.Context, remoteID string, roomID id.RoomID, err error) {
	log := zerolog.Ctx(ctx)
	chat, sender, msgID, ok := parseRemoteKey(remoteID)
	if !ok {
		return // not a message from XMPP (a failure report or a reaction's key)
	}
	user, peer, isDM := parseDMChat(chat)
	if !isDM {
		log.Warn().Stringer("room_id", roomID).Msg("A group chat message could not be sent to Matrix; the occupant is not told")
		return
	}
	puppet, perr := b.mapper.PuppetJID(user)
	if perr != nil {
		return
	}
	// An error to a bare JID is dropped by the server (RFC 6121 8.5.2.1.1): it goes to the
	// resource that sent the message.
	to := peer
	if r, err := b.getRef(ctx, remoteKey(chat, sender, msgID)); err == nil && r.Full != "" {
		if full, err := jid.Parse(r.Full); err == nil {
			to = full
		}
	}
	se := &xmsg.StanzaError{Type: "wait", Condition: "remote-server-timeout", Text: "The message could not be delivered to Matrix."}
	if refusedForGood(err) {
		se = &xmsg.StanzaError{Type: "modify", Condition: "not-acceptable", Text: "Matrix refused the message."}
	}
	m := &xmsg.Message{ID: msgID, Type: "error", From: puppet, To: to, Error: se}
	raw, merr := m.Marshal()
	if merr == nil {
		merr = b.send(ctx, raw)
	}
	if merr != nil {
		log.Error().Err(merr).Msg("Could not tell an XMPP sender that their message did not reach Matrix")
	}
}

// refusedForGood reports whether the homeserver refused a message for what it is (too
// large, malformed) rather than for now.
func refusedForGood(err error) bool {
	var httpErr mautrix.HTTPError
	if !errors.As(err, &httpErr) {
		return false
	}
	if httpErr.Response != nil && httpErr.Response.StatusCode == http.StatusRequestEntityTooLarge {
		return true
	}
	if httpErr.RespError == nil {
		return false
	}
	switch httpErr.RespError.ErrCode {
	case mautrix.MTooLarge.ErrCode, mautrix.MBadJSON.ErrCode, mautrix.MNotJSON.ErrCode:
		return true
	}
	return false
}

// parseRemoteKey splits a message key made by remoteKey; extra parts after the message id
// (attachments, reactions) are ignored.
func parseRemoteKey(key string) (chat string, sender jid.JID, msgID string, ok bool) {
	i := strings.LastIndex(key, "|x:")
	if i < 0 {
		return "", jid.JID{}, "", false
	}
	chat, rest := key[:i], key[i+3:]
	if j := strings.IndexByte(rest, '|'); j >= 0 {
		rest = rest[:j]
	}
	s, m, found := strings.Cut(rest, ":")
	if !found {
		return "", jid.JID{}, "", false
	}
	s, err1 := url.QueryUnescape(s)
	m, err2 := url.QueryUnescape(m)
	j, err3 := jid.Parse(s)
	if err1 != nil || err2 != nil || err3 != nil {
		return "", jid.JID{}, "", false
	}
	return chat, j, m, true
}

var _ appservice.FailureSender = (*Bridge)(nil)

// FailureSender implements appservice.FailureSender: in a DM the XMPP user's ghost reports
// failures (the bot is not in the room); in group chats the bot, which made the room.
func (b *Bridge) FailureSender(ctx context.Context, roomID id.RoomID) id.UserID {
	chat, err := b.host.Store().PortalByRoom(ctx, roomID)
	if err != nil {
		return ""
	}
	if _, peer, ok := parseDMChat(chat); ok {
		if ghost, err := b.mapper.GhostUserID(peer); err == nil {
			return ghost
		}
	}
	return ""
}
