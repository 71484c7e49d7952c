package appservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/internal/store"
)

// Keys of the core's outbox rows about a lost message: "lost:<module>:<remote ID>" for the
// notice, "lost-status:…" for the failure status on the Matrix event that caused the
// message, and "bot:<key>" for a core row reposted by the bot after its first sender could
// not post it. Keyed by the lost row, so that giving up twice (after a crash) posts once.
const (
	lostNoticePrefix = "lost:"
	lostStatusPrefix = "lost-status:"
	botRepostPrefix  = "bot:"
)

// reportLost queues what the room learns when the outbox gives up on row after attempts
// attempts with err: a notice naming what was lost in general terms (kind, size, time; never
// the content) and why (the homeserver's error code), and, when the message answered a
// Matrix event, a com.beeper.message_send_status failure on that event. A failed report of
// the core's own (a failure report or such a notice) is posted once more by the bot when
// another user had posted it, and otherwise only logged: reports about reports would not
// end.
func (c *Core) reportLost(ctx context.Context, row store.OutboxMessage, attempts int, err error) error {
	bot := c.botUserID()
	if row.Module == coreModuleID {
		if row.Sender == bot.String() || strings.HasPrefix(row.RemoteID, botRepostPrefix) {
			return nil
		}
		var content map[string]any
		if err := json.Unmarshal(row.Content, &content); err != nil {
			return fmt.Errorf("appservice: failed to decode report %s: %w", row.RemoteID, err)
		}
		delete(content, txnMarkerKey)
		return c.enqueue(ctx, coreModuleID, Message{
			RoomID: id.RoomID(row.RoomID), Sender: bot, RemoteID: botRepostPrefix + row.RemoteID,
			Type: event.Type{Type: row.EventType, Class: event.MessageEventType}, Content: content,
		})
	}
	code, reason := lostReason(err, attempts)
	// The sender of the lost message can post in the room unless the homeserver said
	// otherwise; then the module's failure sender or the bot.
	sender := id.UserID(row.Sender)
	if code == mautrix.MForbidden.ErrCode {
		sender = ""
		if m := c.modules[row.Module]; m != nil {
			sender = c.failureSender(ctx, m, id.RoomID(row.RoomID))
		}
		if sender == "" {
			sender = bot
		}
	}
	what := describeLost(row)
	if sender.String() != row.Sender {
		what += " from " + row.Sender
	}
	if code != "" {
		reason += " (" + code + ")"
	}
	key := row.Module + ":" + row.RemoteID
	notice := event.MessageEventContent{
		MsgType:  event.MsgNotice,
		Body:     "⚠️ " + upperFirst(what) + " could not be posted in this room and is missing here: " + reason + ".",
		Mentions: &event.Mentions{},
	}
	var errs []error
	if row.CausedBy != "" {
		notice.RelatesTo = &event.RelatesTo{InReplyTo: &event.InReplyTo{EventID: id.EventID(row.CausedBy)}}
		status := map[string]any{
			"network": row.Module,
			"m.relates_to": map[string]any{
				"rel_type": "m.reference", "event_id": row.CausedBy,
			},
			"status":  "FAIL_PERMANENT",
			"reason":  "m_foreign_network_error",
			"error":   "the answer could not be posted: " + reason,
			"message": "The answer could not be posted: " + reason + ".",
		}
		errs = append(errs, c.enqueue(ctx, coreModuleID, Message{
			RoomID: id.RoomID(row.RoomID), Sender: sender, RemoteID: lostStatusPrefix + key,
			Type: event.BeeperMessageStatus, Content: status,
		}))
	}
	errs = append(errs, c.enqueue(ctx, coreModuleID, Message{
		RoomID: id.RoomID(row.RoomID), Sender: sender, RemoteID: lostNoticePrefix + key, Content: &notice,
	}))
	return errors.Join(errs...)
}

func (c *Core) botUserID() id.UserID { return id.NewUserID(c.reg.SenderLocalpart, c.opts.Domain) }

// lostReason is the homeserver's error code (empty when it did not answer with one) and a
// short reason for people.
func lostReason(err error, attempts int) (code, reason string) {
	var httpErr mautrix.HTTPError
	if errors.As(err, &httpErr) && httpErr.RespError != nil {
		code = httpErr.RespError.ErrCode
	}
	// Dendrite answers an event over 64 KiB with 413 and M_BAD_JSON.
	tooLarge := httpErr.Response != nil && httpErr.Response.StatusCode == http.StatusRequestEntityTooLarge
	if code == mautrix.MTooLarge.ErrCode || tooLarge {
		return code, "the homeserver refuses events this large"
	}
	switch code {
	case mautrix.MForbidden.ErrCode:
		return code, "the sender may not post in this room"
	case mautrix.MBadJSON.ErrCode, mautrix.MNotJSON.ErrCode, "M_INVALID_PARAM":
		return code, "the homeserver refused its content"
	case mautrix.MLimitExceeded.ErrCode:
		return code, fmt.Sprintf("the homeserver kept refusing it as too many requests (%d attempts)", attempts)
	case "":
		return "", fmt.Sprintf("the homeserver did not accept it after %d attempts", attempts)
	}
	return code, fmt.Sprintf("the homeserver refused it (%d attempts)", attempts)
}

// describeLost names a lost message in general terms: its kind, its size and when it was
// written, never its content.
func describeLost(row store.OutboxMessage) string {
	var content struct {
		MsgType   string `json:"msgtype"`
		RelatesTo struct {
			RelType string `json:"rel_type"`
		} `json:"m.relates_to"`
	}
	_ = json.Unmarshal(row.Content, &content)
	kind := "a message"
	switch row.EventType {
	case event.EventMessage.Type:
		switch {
		case content.RelatesTo.RelType == string(event.RelReplace):
			kind = "an edit of a message"
		case content.MsgType == string(event.MsgImage):
			kind = "an image"
		case content.MsgType == string(event.MsgFile):
			kind = "a file"
		case content.MsgType == string(event.MsgVideo):
			kind = "a video"
		case content.MsgType == string(event.MsgAudio):
			kind = "an audio message"
		case content.MsgType == string(event.MsgLocation):
			kind = "a location"
		}
	case event.EventReaction.Type:
		kind = "a reaction"
	case event.EventSticker.Type:
		kind = "a sticker"
	case event.EventRedaction.Type:
		kind = "a deletion"
	default:
		kind = "an event of type " + row.EventType
	}
	what := fmt.Sprintf("%s (%s, %s", kind, row.Module, formatSize(len(row.Content)))
	if row.TS > 0 {
		what += ", written " + time.UnixMilli(row.TS).UTC().Format("2006-01-02 15:04 MST")
	}
	return what + ")"
}

func formatSize(n int) string {
	if n < 1024 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d KiB", (n+1023)/1024)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
