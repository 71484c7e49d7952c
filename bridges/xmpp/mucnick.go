package xmpp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// changeNick follows a Matrix member's new display name in a MUC portal with a nick change
// of their puppet (XEP-0045 7.6: available presence to the new occupant JID; the room
// announces it with status 303), not with a leave and a join. When the nick and its
// variant are taken, the puppet keeps its old nick. A puppet not in the room joins under
// the new nick.
func (b *Bridge) changeNick(ctx context.Context, chat string, room jid.JID, user id.UserID, nick string) error {
	b.muc.mu.Lock()
	old, joined := b.muc.puppets[chat+"|"+user.String()]
	b.muc.mu.Unlock()
	if !joined {
		_, err := b.ensureJoined(ctx, chat, room, user)
		return err
	}
	for _, n := range []string{nick, nick + " (Matrix)"} {
		if n == old.Resourcepart() {
			return nil
		}
		occ, err := room.WithResource(n)
		if err != nil {
			continue // not a valid nick in XMPP
		}
		err = b.nickAs(ctx, chat, old, occ, user)
		var se *xmsg.StanzaError
		if err == nil || !errors.As(err, &se) || se.Condition != "conflict" {
			return err
		}
	}
	zerolog.Ctx(ctx).Info().Str("muc", room.String()).Msg("The new nick is taken in the MUC; the puppet keeps its nick")
	return nil
}

// nickAs asks the room to rename the puppet at old to occ and waits for the room's
// self-presence from occ.
func (b *Bridge) nickAs(ctx context.Context, chat string, old, occ jid.JID, user id.UserID) error {
	puppet, err := b.mapper.PuppetJID(user)
	if err != nil {
		return err
	}
	full, _ := puppet.WithResource(puppetResource)
	wait := make(chan error, 1)
	b.muc.mu.Lock()
	b.muc.waiters[occ.String()] = wait
	b.muc.occupants[occ.String()] = user
	b.muc.mu.Unlock()
	defer func() {
		b.muc.mu.Lock()
		delete(b.muc.waiters, occ.String())
		b.muc.mu.Unlock()
	}()
	raw, err := (&xmsg.Presence{From: full, To: occ}).Marshal()
	if err != nil {
		return err
	}
	if err := b.send(ctx, withCaps(raw)); err != nil {
		return err
	}
	t := time.NewTimer(joinTimeout)
	defer t.Stop()
	select {
	case err = <-wait:
	case <-t.C:
		err = fmt.Errorf("xmpp: %s did not confirm the nick change within %s", occ.Bare(), joinTimeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	b.muc.mu.Lock()
	defer b.muc.mu.Unlock()
	if err != nil {
		delete(b.muc.occupants, occ.String())
		return err
	}
	delete(b.muc.occupants, old.String())
	b.muc.puppets[chat+"|"+user.String()] = occ
	return nil
}
