package xmpp

import (
	"context"
	"errors"
	"strings"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// addDMPeer remembers that user has a DM with peer, who then sees the user's presence.
func (b *Bridge) addDMPeer(ctx context.Context, user id.UserID, peer jid.JID) error {
	return b.updateJSON(ctx, "dmpeers:"+user.String(), func(v map[string]string) { v[peer.Bare().String()] = "1" })
}

// presenceToXMPP sends a Matrix user's presence from their puppet to the XMPP users they
// have DMs with: online is available, unavailable (idle) is "away", offline is
// unavailable. Repeats of the same state are not sent again.
func (b *Bridge) presenceToXMPP(ctx context.Context, evt *event.Event) error {
	if !*b.cfg.Presence || b.isGhost(evt.Sender.String()) {
		return nil
	}
	p := evt.Content.AsPresence()
	puppet, err := b.mapper.PuppetJID(evt.Sender)
	if err != nil {
		return nil
	}
	out := &xmsg.Presence{From: puppet, Status: p.StatusMessage}
	switch p.Presence {
	case event.PresenceOffline:
		out.Type = "unavailable"
	case event.PresenceUnavailable:
		out.Show = "away"
	}
	state := out.Type + "|" + out.Show + "|" + out.Status
	if prev, loaded := b.presence.Swap(evt.Sender, state); loaded && prev == state {
		return nil
	}
	peers, err := b.loadJSON(ctx, "dmpeers:"+evt.Sender.String())
	if err != nil {
		return err
	}
	var errs []error
	for peer := range peers {
		to, err := jid.Parse(peer)
		if err != nil {
			continue
		}
		out.To = to
		raw, err := out.Marshal()
		if err == nil {
			if out.Type == "" {
				raw = withCaps(raw)
			}
			err = b.send(ctx, raw)
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		b.presence.Delete(evt.Sender) // sent again next time
		return err
	}
	return nil
}

// answerProbe answers a presence probe to a puppet with the Matrix user's last known
// presence (available when none is known yet).
func (b *Bridge) answerProbe(ctx context.Context, p *xmsg.Presence) error {
	out := &xmsg.Presence{From: p.To.Bare(), To: p.From.Bare()}
	if user, err := b.mapper.UserIDForPuppet(p.To); err == nil {
		if v, ok := b.presence.Load(user); ok {
			typ, rest, _ := strings.Cut(v.(string), "|")
			show, status, _ := strings.Cut(rest, "|")
			out.Type, out.Show, out.Status = typ, show, status
		}
	}
	raw, err := out.Marshal()
	if err != nil {
		return err
	}
	if out.Type == "" {
		raw = withCaps(raw)
	}
	return b.send(ctx, raw)
}
