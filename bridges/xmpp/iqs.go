package xmpp

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix/id"

	"github.com/switchboard-matrix/switchboard/bridges/xmpp/disco"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/iq"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/stanza"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/vcard"
	"github.com/switchboard-matrix/switchboard/bridges/xmpp/xmsg"
)

// capsNode is the XEP-0115 node of the bridge's entities.
const capsNode = "https://github.com/switchboard-matrix/switchboard"

// features are what the component and the puppets support (XEP-0030).
var features = []string{
	disco.NSInfo, disco.NSItems,
	"urn:xmpp:ping",
	xmsg.NSReceipts, xmsg.NSMarkers, xmsg.NSChatStates,
	xmsg.NSCorrect, xmsg.NSRetract, xmsg.NSReactions, xmsg.NSReply, xmsg.NSFallback,
	xmsg.NSSID, xmsg.NSOOB, xmsg.NSXHTMLIM, "vcard-temp",
}

// componentInfo is the component's own disco#info; puppetInfo a Matrix user's.
func componentInfo(node string) disco.Info {
	return disco.Info{Node: node, Identities: []disco.Identity{{Category: "gateway", Type: "matrix", Name: "Matrix bridge (Switchboard)"}}, Features: features}
}

func puppetInfo(node string) disco.Info {
	return disco.Info{Node: node, Identities: []disco.Identity{{Category: "client", Type: "bot", Name: "Matrix user"}}, Features: features}
}

// withCaps adds the XEP-0115 caps element to a marshalled presence.
func withCaps(raw []byte) []byte {
	c := disco.CapsElement(capsNode, puppetInfo(""))
	if bytes.HasSuffix(raw, []byte("/>")) {
		return append(append(raw[:len(raw)-2:len(raw)-2], '>'), append(c, []byte("</presence>")...)...)
	}
	i := bytes.LastIndex(raw, []byte("</presence>"))
	if i < 0 {
		return raw
	}
	out := append([]byte{}, raw[:i]...)
	out = append(out, c...)
	return append(out, raw[i:]...)
}

// handleIQ answers queries to the component and the puppets (disco, vCard) and hands
// answers to our own queries to the tracker.
func (b *Bridge) handleIQ(ctx context.Context, st *stanza.Stanza) error {
	q, err := iq.Parse(st.Raw)
	if err != nil {
		return rejected{err}
	}
	if q.Type == "result" || q.Type == "error" {
		b.iqs.Deliver(q)
		return nil
	}
	toPuppet := q.To.Localpart() != ""
	if toPuppet {
		if _, err := b.mapper.UserIDForPuppet(q.To); err != nil {
			return b.send(ctx, iq.ErrorReply(q, "cancel", "item-not-found", "There is no Matrix user at this address."))
		}
	}
	var answer []byte
	switch {
	case q.Type == "get" && q.Payload.Space == disco.NSInfo:
		node := nodeOf(q.Inner)
		info := componentInfo(node)
		if toPuppet {
			info = puppetInfo(node)
		}
		answer = iq.Result(q, info.Marshal())
	case q.Type == "get" && q.Payload.Space == disco.NSItems:
		answer = iq.Result(q, disco.MarshalItems(nodeOf(q.Inner), nil))
	case q.Type == "get" && q.Payload.Space == "vcard-temp" && toPuppet:
		user, _ := b.mapper.UserIDForPuppet(q.To)
		answer = iq.Result(q, b.puppetCard(ctx, user).Marshal())
	default:
		answer = iq.ErrorReply(q, "cancel", "service-unavailable", "")
	}
	return b.send(ctx, answer)
}

// maxAvatarBytes bounds a Matrix avatar put in a puppet's vCard.
const maxAvatarBytes = 1 << 20

// puppetCard is the vCard of a Matrix user's puppet: their display name and avatar. The
// avatar's bytes are kept per media URI, so a vCard query downloads each avatar once.
func (b *Bridge) puppetCard(ctx context.Context, user id.UserID) vcard.Card {
	card := vcard.Card{FullName: user.String(), Nick: user.Localpart()}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	name, avatar, err := b.host.Bot().Profile(ctx, user)
	if err != nil {
		return card
	}
	if name != "" {
		card.FullName, card.Nick = name, name
	}
	if avatar.IsEmpty() {
		return card
	}
	if cached, ok := b.avatars.Load(avatar); ok {
		data := cached.([]byte)
		card.Photo, card.PhotoType = data, http.DetectContentType(data)
		return card
	}
	data, err := b.host.Bot().DownloadMedia(ctx, avatar, maxAvatarBytes)
	if err != nil {
		zerolog.Ctx(ctx).Debug().Err(err).Msg("No avatar for a puppet's vCard")
		return card
	}
	b.avatars.Store(avatar, data)
	card.Photo, card.PhotoType = data, http.DetectContentType(data)
	return card
}

// nodeOf reads the node attribute of a disco query.
func nodeOf(inner []byte) string {
	info, err := disco.ParseInfo(inner)
	if err == nil {
		return info.Node
	}
	if node, _, err := disco.ParseItems(inner); err == nil {
		return node
	}
	return ""
}
