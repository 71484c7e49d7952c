package email

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// Inline images the virus scanner refused. They are neither shown nor posted as files: the
// bot's notice stands for each, in the mail's thread. Which images were refused is
// recorded ("inline-refused:<key>") before the mail's first event, so that a run that
// completes the mail after a crash treats the same images the same way, whatever the
// scanner says then (an image refused because clamd stayed away must not be shown in a
// text already posted without it, nor move the mail's files, which are counted by index).

func inlineRefusedKey(key string) string { return "inline-refused:" + key }

// refusedImage is an inline image the scanner refused.
type refusedImage struct {
	ContentID string `json:"cid"`
	Name      string `json:"name"`
	Reason    string `json:"reason"`
}

// inlineRefusals is what an earlier run of the mail recorded: content ID → refusal.
func (m *mailbox) inlineRefusals(ctx context.Context, key string) (map[string]refusedImage, error) {
	var list []refusedImage
	if err := m.b.getJSON(ctx, inlineRefusedKey(key), &list); err != nil && !errors.Is(err, appservice.ErrNotFound) {
		return nil, err
	}
	out := make(map[string]refusedImage, len(list))
	for _, r := range list {
		out[r.ContentID] = r
	}
	return out, nil
}

// recordInlineRefusals records the refused images of a run that found some.
func (m *mailbox) recordInlineRefusals(ctx context.Context, key string, refused []refusedImage, before map[string]refusedImage) error {
	if len(refused) == 0 || len(refused) == len(before) {
		return nil
	}
	return m.b.putJSON(ctx, inlineRefusedKey(key), refused)
}

// postInlineRefusals posts the bot's notice for each refused image, in the thread of
// root, keyed by the image's content ID.
func (m *mailbox) postInlineRefusals(ctx context.Context, run *postRun, root id.EventID, from string, refused []refusedImage) error {
	for _, r := range refused {
		sum := sha256.Sum256([]byte(r.ContentID))
		content := &event.MessageEventContent{MsgType: event.MsgNotice,
			Body: fmt.Sprintf("🛡️ The image %q from %s was not bridged: %s.", r.Name, from, r.Reason)}
		if root != "" {
			content.RelatesTo = &event.RelatesTo{Type: event.RelThread, EventID: root, IsFallingBack: true, InReplyTo: &event.InReplyTo{EventID: root}}
		}
		msg := appservice.Message{RoomID: m.room, Sender: m.b.host.BotUserID(), RemoteID: run.key + "|inline-refused|" + hex.EncodeToString(sum[:8]), Content: content}
		if err := run.enqueue(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}
