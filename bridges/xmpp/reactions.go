package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"slices"

	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/appservice"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// XEP-0444 sends the full set of a sender's reactions to a message each time; Matrix has
// one event per reaction. Each side's current set is kept in the store:
//   - "rx:<chat>|<sender>|<target event>": a Matrix user's reactions, emoji → reaction
//     event ID, and "rxev:<reaction event>" → that set's key, for redactions;
//   - "xr:<chat>|<sender>|<target event>": an XMPP user's reactions, emoji → the ghost's
//     reaction event ID.

type reactionSet map[string]id.EventID

func (b *Bridge) loadSet(ctx context.Context, key string) (reactionSet, error) {
	raw, err := b.host.Store().GetKV(ctx, key)
	if errors.Is(err, appservice.ErrNotFound) || raw == "" {
		return reactionSet{}, nil
	} else if err != nil {
		return nil, err
	}
	set := reactionSet{}
	return set, json.Unmarshal([]byte(raw), &set)
}

func (b *Bridge) saveSet(ctx context.Context, key string, set reactionSet) error {
	raw, _ := json.Marshal(set)
	return b.host.Store().PutKV(ctx, key, string(raw))
}

func (s reactionSet) emojis() []string {
	out := make([]string, 0, len(s))
	for e := range s {
		out = append(out, e)
	}
	slices.Sort(out)
	return out
}

// reactionToXMPP adds a Matrix reaction to the sender's set and sends the set.
func (b *Bridge) reactionToXMPP(ctx context.Context, oc *outChat, evt *event.Event) error {
	rel := evt.Content.AsReaction().RelatesTo
	if rel.Type != event.RelAnnotation || rel.Key == "" {
		return nil
	}
	_, target, err := b.refOfEvent(ctx, rel.EventID)
	if errors.Is(err, appservice.ErrNotFound) {
		return nil // not a bridged message
	} else if err != nil {
		return err
	}
	setKey := "rx:" + oc.key + "|" + evt.Sender.String() + "|" + rel.EventID.String()
	set, err := b.loadSet(ctx, setKey)
	if err != nil {
		return err
	}
	set[rel.Key] = evt.ID
	if err := b.saveSet(ctx, setKey, set); err != nil {
		return err
	}
	if err := b.host.Store().PutKV(ctx, "rxev:"+evt.ID.String(), setKey); err != nil {
		return err
	}
	return b.sendReactions(ctx, oc, evt.ID, target.xmppID(oc.groupchat), set)
}

// unreactToXMPP handles the redaction of a Matrix reaction; handled is false when target
// is not a reaction.
func (b *Bridge) unreactToXMPP(ctx context.Context, oc *outChat, evt *event.Event, target id.EventID) (bool, error) {
	setKey, err := b.host.Store().GetKV(ctx, "rxev:"+target.String())
	if errors.Is(err, appservice.ErrNotFound) || setKey == "" {
		return false, nil
	} else if err != nil {
		return true, err
	}
	set, err := b.loadSet(ctx, setKey)
	if err != nil {
		return true, err
	}
	for e, r := range set {
		if r == target {
			delete(set, e)
		}
	}
	if err := b.saveSet(ctx, setKey, set); err != nil {
		return true, err
	}
	msgEvent := id.EventID(setKey[lastBar(setKey)+1:])
	_, ref, err := b.refOfEvent(ctx, msgEvent)
	if err != nil {
		return true, err
	}
	return true, b.sendReactions(ctx, oc, evt.ID, ref.xmppID(oc.groupchat), set)
}

func lastBar(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '|' {
			return i
		}
	}
	return -1
}

func (b *Bridge) sendReactions(ctx context.Context, oc *outChat, cause id.EventID, target string, set reactionSet) error {
	sid := stanzaIDFor(cause, "")
	m := &xmsg.Message{ID: sid, OriginID: sid, Type: oc.typ(), From: oc.from, To: oc.to,
		Reactions: &xmsg.Reactions{ID: target, Emojis: set.emojis()}}
	raw, err := m.Marshal()
	if err != nil {
		return err
	}
	return b.send(ctx, raw)
}

// reactionsToMatrix turns an XEP-0444 set into single Matrix reactions: new emojis are
// sent as reactions of the sender's ghost, missing ones are redacted.
func (b *Bridge) reactionsToMatrix(ctx context.Context, in *inbound) error {
	_, target, err := b.eventOfXMPP(ctx, in.chat, in.sender, in.msg.Reactions.ID)
	if errors.Is(err, appservice.ErrNotFound) {
		return nil // a reaction to something that was never bridged
	} else if err != nil {
		return err
	}
	setKey := "xr:" + in.chat + "|" + in.sender.String() + "|" + target.String()
	set, err := b.loadSet(ctx, setKey)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, e := range in.msg.Reactions.Emojis {
		want[e] = true
	}
	ghost, err := b.host.Ghost(in.ghost.Localpart())
	if err != nil {
		return err
	}
	for _, e := range set.emojis() {
		if want[e] {
			continue
		}
		if err := ghost.Redact(ctx, in.room, set[e], "", "unreact-"+in.key+"-"+set[e].String()); err != nil {
			return err
		}
		delete(set, e)
	}
	for _, e := range in.msg.Reactions.Emojis {
		if _, ok := set[e]; ok {
			continue
		}
		content := &event.ReactionEventContent{RelatesTo: event.RelatesTo{Type: event.RelAnnotation, EventID: target, Key: e}}
		evt, err := b.host.Send(ctx, appservice.Message{RoomID: in.room, Sender: in.ghost, RemoteID: in.key + "|" + e,
			Type: event.EventReaction, Content: content, Timestamp: in.msg.Delay})
		if err != nil {
			return err
		}
		set[e] = evt
		if err := b.saveSet(ctx, setKey, set); err != nil {
			return err
		}
	}
	return b.saveSet(ctx, setKey, set)
}
