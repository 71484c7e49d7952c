package appservice

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// fenced reports whether this process must not act: it leads a high-availability group
// (Options.Leading) and its lead is not valid now. It waits until the lead is valid again
// (a check of the lock session that was late) and returns false, or until ctx ends (the
// daemon exits when the lead is lost) and returns true; the caller then records nothing,
// so the work stays in the journal or the outbox for the next leader.
func (c *Core) fenced(ctx context.Context) bool {
	if c.opts.Leading == nil || c.opts.Leading() {
		return false
	}
	zerolog.Ctx(ctx).Warn().Msg("The lead is not confirmed: work waits")
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return true
		case <-t.C:
			if c.opts.Leading() {
				return false
			}
		}
	}
}

// Announce posts an operator's notice from the bot into roomID (a takeover by a new leader,
// say), once per key: the outbox sends it like any message, and a second Announce with
// the same key sends nothing.
func (c *Core) Announce(ctx context.Context, roomID id.RoomID, key, text string) error {
	return c.enqueue(ctx, coreModuleID, Message{
		RoomID: roomID, Sender: id.NewUserID(c.reg.SenderLocalpart, c.opts.Domain), RemoteID: "announce:" + key,
		Content: &event.MessageEventContent{MsgType: event.MsgNotice, Body: text},
	})
}
