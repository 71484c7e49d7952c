package email

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"

	"maunium.net/go/mautrix/event"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/email/mailparse"
)

// threadState is who a conversation is with, kept under "thread:<root key>".
//
// A reply from the room goes to Recipients only, never to an address a later mail brings
// along: anyone who knows a Message-ID can write into a thread, and must not receive the
// staff's next answer by doing so. An address that is not Known is shown as new in the
// thread, and becomes a recipient when a room user says so (!email add).
type threadState struct {
	// Recipients get the room's replies: the Reply-To (else From) of the mail that opened
	// the conversation, or the To and Cc of a mail the room opened it with, and those
	// added by command.
	Recipients []string `json:"recipients"`
	// Known are the addresses that take part without a notice: the recipients and the
	// From of the mail that opened the conversation.
	Known []string `json:"known"`
}

func threadStateKey(rootKey string) string { return "thread:" + rootKey }

// sameAddress compares addresses, the domain case-insensitively.
func sameAddress(a, b string) bool {
	ai, bi := strings.LastIndexByte(a, '@'), strings.LastIndexByte(b, '@')
	if ai < 0 || bi < 0 {
		return strings.EqualFold(a, b)
	}
	return a[:ai] == b[:bi] && strings.EqualFold(a[ai:], b[bi:])
}

func hasAddress(list []string, a string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return sameAddress(x, a) })
}

func addAddress(list []string, a string) []string {
	if a == "" || hasAddress(list, a) {
		return list
	}
	return append(list, a)
}

// newThreadState is the state of a conversation opened by a mail with this meta.
func newThreadState(mb *MailboxConfig, meta mailMeta) threadState {
	var st threadState
	if sameAddress(meta.From, mb.Address) {
		// A mail the room sent: its ReplyTo holds its recipients.
		for _, a := range meta.ReplyTo {
			st.Recipients = addAddress(st.Recipients, a)
		}
		st.Known = slices.Clone(st.Recipients)
		return st
	}
	for _, a := range meta.ReplyTo {
		st.Recipients = addAddress(st.Recipients, a)
	}
	if len(st.Recipients) == 0 {
		st.Recipients = []string{meta.From}
	}
	st.Known = addAddress(slices.Clone(st.Recipients), meta.From)
	return st
}

// threadState returns a conversation's state; for one opened before the state was kept,
// it is derived from the mail that opened it.
func (b *Bridge) threadState(ctx context.Context, mb *MailboxConfig, rootKey string) (threadState, error) {
	var st threadState
	err := b.getJSON(ctx, threadStateKey(rootKey), &st)
	if err == nil || !errors.Is(err, appservice.ErrNotFound) {
		return st, err
	}
	var root mailMeta
	if err := b.getJSON(ctx, "mail:"+rootKey, &root); err != nil {
		return st, err
	}
	return newThreadState(mb, root), nil
}

// newcomers are the addresses of a mail in a conversation (From and Reply-To) that the
// conversation does not know; the mailbox's own address is always known.
func newcomers(mb *MailboxConfig, st threadState, m *mailparse.Mail) []string {
	var out []string
	for _, a := range append([]mailparse.Address{m.From}, m.ReplyTo...) {
		if a.Email == "" || sameAddress(a.Email, mb.Address) || hasAddress(st.Known, a.Email) {
			continue
		}
		out = addAddress(out, a.Email)
	}
	return out
}

// newcomerNotice is the bot's notice about addresses new in a conversation.
func newcomerNotice(st threadState, addrs []string) string {
	return fmt.Sprintf("⚠️ New in this conversation: %s. Replies from this thread still go only to %s. "+
		"To include a new address, send in this thread: !email add %s",
		strings.Join(addrs, ", "), strings.Join(st.Recipients, ", "), addrs[0])
}

// emailCommand runs "!email add|remove|recipients" in a conversation's thread and returns
// the answer for the room.
func (b *Bridge) emailCommand(ctx context.Context, mb *MailboxConfig, rootKey string, body string) (string, error) {
	fields := strings.Fields(strings.TrimPrefix(body, "!email"))
	usage := "use !email add <address>, !email remove <address> or !email recipients in a mail conversation's thread"
	if len(fields) == 0 {
		return "", appservice.RoomError{Msg: usage, Permanent: true}
	}
	st, err := b.threadState(ctx, mb, rootKey)
	if err != nil {
		return "", err
	}
	switch {
	case fields[0] == "recipients" && len(fields) == 1:
	case (fields[0] == "add" || fields[0] == "remove") && len(fields) == 2:
		a, err := mail.ParseAddress(fields[1])
		if err != nil || a.Name != "" || sameAddress(a.Address, mb.Address) {
			return "", roomError{what: "invalid !email command", msg: fmt.Sprintf("%q is not an email address of a correspondent", fields[1]), permanent: true}
		}
		if fields[0] == "add" {
			st.Recipients = addAddress(st.Recipients, a.Address)
			st.Known = addAddress(st.Known, a.Address)
		} else {
			st.Recipients = slices.DeleteFunc(st.Recipients, func(x string) bool { return sameAddress(x, a.Address) })
		}
		if err := b.putJSON(ctx, threadStateKey(rootKey), st); err != nil {
			return "", err
		}
	default:
		return "", appservice.RoomError{Msg: usage, Permanent: true}
	}
	if len(st.Recipients) == 0 {
		return "✅ Replies from this thread go to nobody now; add a recipient with !email add <address>.", nil
	}
	return "✅ Replies from this thread go to: " + strings.Join(st.Recipients, ", "), nil
}

// commandAnswer posts the answer to a command event in its thread, once per event.
func (b *Bridge) commandAnswer(ctx context.Context, evt *event.Event, text string) error {
	rel := evt.Content.AsMessage().RelatesTo
	content := &event.MessageEventContent{MsgType: event.MsgNotice, Body: text,
		RelatesTo: &event.RelatesTo{Type: event.RelThread, EventID: rel.EventID, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: evt.ID}}}
	return b.host.Enqueue(ctx, appservice.Message{RoomID: evt.RoomID, Sender: b.host.BotUserID(), RemoteID: "cmd:" + evt.ID.String(), Content: content})
}
