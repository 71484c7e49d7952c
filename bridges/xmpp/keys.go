package xmpp

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"maunium.net/go/mautrix/id"
	"mellium.im/xmpp/jid"

	"github.com/switchboard-matrix/switchboard/appservice"
)

// Keys in the module's store. A chat is "dm:<matrix user>|<bare jid>" or "muc:<room jid>";
// a message is "<chat>|<kind>:<id>":
//   - "m:<stanza id>" for a Matrix event sent to XMPP (stanza id derived from the event ID);
//   - "x:<sender>:<id>" for an XMPP message, keyed by its sender (bare JID, or occupant JID
//     in a MUC) and its origin-id, or its id attribute when it has none.
//
// Every bridged message has a message-map row (key ↔ event ID) and a "ref:<key>" entry
// telling how XMPP refers to it (its id, the MUC's stanza-id, its sender). A MUC's
// stanza-id resolves through "sid:<chat>|<stanza-id>" to the message key.

func dmChat(user id.UserID, peer jid.JID) string {
	return "dm:" + user.String() + "|" + peer.Bare().String()
}
func mucChat(room jid.JID) string { return "muc:" + room.Bare().String() }

func ownKey(chat, stanzaID string) string { return chat + "|m:" + stanzaID }
func remoteKey(chat string, sender jid.JID, msgID string) string {
	return chat + "|x:" + url.QueryEscape(sender.String()) + ":" + url.QueryEscape(msgID)
}

// stanzaIDFor is the stable stanza id (and origin-id) of a Matrix event sent to XMPP.
func stanzaIDFor(evt id.EventID, part string) string {
	sum := sha256.Sum256([]byte(evt.String() + "\x00" + part))
	return "mx" + hex.EncodeToString(sum[:12])
}

// ref is how XMPP refers to a bridged message.
type ref struct {
	Chat string    `json:"chat"`
	ID   string    `json:"id"`             // id attribute / origin-id
	SID  string    `json:"sid,omitempty"`  // the MUC's stanza-id
	From string    `json:"from"`           // sender: bare JID (1:1) or occupant JID (MUC)
	Full string    `json:"full,omitempty"` // the sender's full JID (for errors, which bare JIDs drop)
	Room id.RoomID `json:"room"`
	// Event is the Matrix event of a message sent to XMPP, known before the message map
	// has it (which records the server's acceptance).
	Event id.EventID `json:"event,omitempty"`
}

// xmppID is the id XMPP uses to point at the message in its chat: the MUC's stanza-id in
// group chats (XEP-0444, XEP-0461), the message id in 1:1 chats.
func (r ref) xmppID(groupchat bool) string {
	if groupchat && r.SID != "" {
		return r.SID
	}
	return r.ID
}

func (b *Bridge) putRef(ctx context.Context, key string, r ref) error {
	raw, _ := json.Marshal(r)
	if err := b.host.Store().PutKV(ctx, "ref:"+key, string(raw)); err != nil {
		return err
	}
	if r.SID != "" {
		return b.host.Store().PutKV(ctx, "sid:"+r.Chat+"|"+r.SID, key)
	}
	return nil
}

func (b *Bridge) getRef(ctx context.Context, key string) (ref, error) {
	var r ref
	raw, err := b.host.Store().GetKV(ctx, "ref:"+key)
	if err != nil {
		return r, err
	}
	if raw == "" {
		return r, appservice.ErrNotFound
	}
	return r, json.Unmarshal([]byte(raw), &r)
}

// refOfEvent returns how XMPP refers to a bridged Matrix event.
func (b *Bridge) refOfEvent(ctx context.Context, evt id.EventID) (string, ref, error) {
	key, err := b.host.Store().MessageByEvent(ctx, evt)
	if err != nil {
		return "", ref{}, err
	}
	r, err := b.getRef(ctx, key)
	return key, r, err
}

// eventOfXMPP resolves an id that an XMPP message points at (XEP-0308, 0424, 0444, 0461)
// to the bridged Matrix event: a MUC stanza-id, one of our stanza ids, or the sender's id.
// A message that is queued for Matrix but not sent yet is waited for, up to refWait.
func (b *Bridge) eventOfXMPP(ctx context.Context, chat string, sender jid.JID, xmppID string) (string, id.EventID, error) {
	st := b.host.Store()
	keys := []string{ownKey(chat, xmppID), remoteKey(chat, sender, xmppID)}
	if key, err := st.GetKV(ctx, "sid:"+chat+"|"+xmppID); err == nil && key != "" {
		keys = append([]string{key}, keys...)
	}
	var queued string
	for _, key := range keys {
		_, evt, err := st.MessageByRemote(ctx, key)
		if err == nil {
			return key, evt, nil
		}
		if !errors.Is(err, appservice.ErrNotFound) {
			return "", "", err
		}
		if queued == "" {
			if _, err := b.getRef(ctx, key); err == nil {
				queued = key
			}
		}
	}
	if queued != "" {
		wait, cancel := context.WithTimeout(ctx, refWait)
		defer cancel()
		for wait.Err() == nil {
			if _, evt, err := st.MessageByRemote(wait, queued); err == nil {
				return queued, evt, nil
			}
			select {
			case <-wait.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return "", "", fmt.Errorf("xmpp: message %q: %w", xmppID, appservice.ErrNotFound)
}

// refWait bounds the wait for a referenced message still queued for Matrix.
const refWait = 10 * time.Second

func idUser(s string) id.UserID { return id.UserID(s) }

// chatPeer splits a dm chat key.
func parseDMChat(chat string) (id.UserID, jid.JID, bool) {
	rest, ok := strings.CutPrefix(chat, "dm:")
	if !ok {
		return "", jid.JID{}, false
	}
	user, peer, ok := strings.Cut(rest, "|")
	if !ok {
		return "", jid.JID{}, false
	}
	j, err := jid.Parse(peer)
	if err != nil {
		return "", jid.JID{}, false
	}
	return id.UserID(user), j, true
}

// recent is a bounded set of recently seen keys.
type recent struct {
	mu    sync.Mutex
	max   int
	order *list.List
	keys  map[string]*list.Element
}

func (r *recent) init(max int) {
	r.max, r.order, r.keys = max, list.New(), map[string]*list.Element{}
}

// add records key and reports whether it was new.
func (r *recent) add(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.keys[key]; ok {
		return false
	}
	r.keys[key] = r.order.PushBack(key)
	if r.order.Len() > r.max {
		old := r.order.Remove(r.order.Front()).(string)
		delete(r.keys, old)
	}
	return true
}

// forget removes key (its handling failed and must be tried again).
func (r *recent) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.keys[key]; ok {
		r.order.Remove(e)
		delete(r.keys, key)
	}
}
